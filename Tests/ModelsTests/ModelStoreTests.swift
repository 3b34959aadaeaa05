import Foundation
import Testing
import TestKit
@testable import Models

@Suite("Model registry and store")
struct ModelStoreTests {
    @Test("the bundled default model is found and its digest checks out")
    func bundledDefault() throws {
        let store = ModelStore(cacheDirectory: URL(fileURLWithPath: "/nonexistent"), mirror: nil)
        let model = try #require(ModelRegistry.named(ModelRegistry.defaultName))
        let file = try #require(store.bundledFile(model))
        #expect(try ModelStore.sha256(of: file) == "a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8")
    }

    @Test("a model is fetched from the mirror into the cache, verified, and reused")
    func fetchFromMirror() async throws {
        let scratch = try ScratchDirectory("store")
        let store = ModelStore(cacheDirectory: scratch.url.appendingPathComponent("cache"), mirror: Shared.path("models"))
        let model = try #require(ModelRegistry.named("espnet-cityscapes"))
        let file = try await store.file(for: model)
        #expect(file == store.cachedFile(model))
        #expect(try ModelStore.sha256(of: file) == model.sha256)
        // No temporary files left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: file.deletingLastPathComponent().path)
        #expect(leftovers == [model.fileName])
        // A second call uses the cache even with the mirror gone.
        let offline = ModelStore(cacheDirectory: store.cacheDirectory, mirror: scratch.path("no-mirror"))
        #expect(try await offline.file(for: model) == file)
    }

    @Test("an unreachable source is one readable line, not Foundation's error dump")
    func unreachableSource() async throws {
        let scratch = try ScratchDirectory("unreachable")
        // Nothing listens on loopback port 9 here: the connection is refused at once.
        let store = ModelStore(cacheDirectory: scratch.url.appendingPathComponent("cache"), mirror: "http://127.0.0.1:9/models")
        let model = try #require(ModelRegistry.named("espnet-cityscapes"))
        await #expect {
            _ = try await store.file(for: model)
        } throws: { error in
            let line = "\(error)"
            return line.hasPrefix("cannot fetch model 'espnet-cityscapes': http://127.0.0.1:9/models/") && !line.contains("Error Domain")
                && !line.contains("UserInfo") && !line.contains("\n")
        }
    }

    @Test("weights whose digest differs are never used or cached")
    func refusesWrongDigest() async throws {
        let scratch = try ScratchDirectory("digest")
        let mirror = scratch.url.appendingPathComponent("mirror/espnet-cityscapes")
        try FileManager.default.createDirectory(at: mirror, withIntermediateDirectories: true)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: Shared.path("models/espnet-cityscapes/espnet_p_2_q_8.pth")))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: mirror.appendingPathComponent("espnet_p_2_q_8.pth"))
        let store = ModelStore(cacheDirectory: scratch.url.appendingPathComponent("cache"), mirror: scratch.path("mirror"))
        let model = try #require(ModelRegistry.named("espnet-cityscapes"))
        await #expect {
            _ = try await store.file(for: model)
        } throws: { error in
            "\(error)".contains("SHA-256") && "\(error)".contains("not used")
        }
        #expect(!FileManager.default.fileExists(atPath: store.cachedFile(model).path))
        // A tampered file already in the cache is not used either: it is fetched again (and fails here).
        try FileManager.default.createDirectory(at: store.cachedFile(model).deletingLastPathComponent(), withIntermediateDirectories: true)
        try bytes.write(to: store.cachedFile(model))
        await #expect(throws: ModelStoreError.self) { _ = try await store.file(for: model) }
    }

    @Test("loading by path recognises the architecture; unknown names and foreign files are refused")
    func loadByPath() async throws {
        let loaded = try await ModelLoader.load(Shared.path("models/espnet-cityscapes/espnet_cityscapes_p2q8.safetensors"))
        #expect(loaded.descriptor.architecture == .espnet)
        #expect(loaded.network.featureStride == 8)
        await #expect(throws: ModelStoreError.self) { _ = try await ModelLoader.load("no-such-model") }
        await #expect(throws: (any Error).self) {
            _ = try await ModelLoader.load(Shared.path("models/espnet-cityscapes/reference/ref_512x256.safetensors"))
        }
    }
}
