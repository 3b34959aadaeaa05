import Foundation
import Testing
import TestKit

@Suite("roadwatch models, through the binary")
struct ModelsCommandTests {
    @Test("list, fetch from the mirror, verify, and a tampered cache file caught by verify")
    func listFetchVerify() throws {
        let scratch = try ScratchDirectory("models")
        let environment = ["ROADWATCH_MODEL_MIRROR": Shared.path("models"), "XDG_CACHE_HOME": scratch.path("cache"),
                           "ROADWATCH_MODELS": scratch.path("added")]

        let before = try RoadwatchBinary.run(["models", "list"], environment: environment)
        #expect(before.status == 0)
        #expect(before.stdout.contains("espnetv2-cityscapes") && before.stdout.contains("bundled"))
        #expect(before.stdout.contains("espnet-cityscapes") && before.stdout.contains("downloaded on first use"))

        let fetch = try RoadwatchBinary.run(["models", "fetch", "espnet-cityscapes"], environment: environment)
        #expect(fetch.status == 0, "\(fetch.stderr)")
        let cached = scratch.path("cache/roadwatch/espnet-cityscapes/espnet_p_2_q_8.pth")
        #expect(FileManager.default.fileExists(atPath: cached))

        let verify = try RoadwatchBinary.run(["models", "verify"], environment: environment)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.components(separatedBy: ": ok").count == 3)

        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: cached))
        try handle.seek(toOffset: 1000)
        try handle.write(contentsOf: Data([0xAB, 0xCD]))
        try handle.close()
        let tampered = try RoadwatchBinary.run(["models", "verify"], environment: environment)
        #expect(tampered.status != 0)
        #expect(tampered.stdout.contains("espnet-cityscapes: FAILED"))

        let unknown = try RoadwatchBinary.run(["models", "fetch", "nonexistent"], environment: environment)
        #expect((1..<128).contains(unknown.status) && unknown.stderrLines.count == 1)
    }
}

extension ModelsCommandTests {
    static let fixtures = Shared.repositoryRoot.appendingPathComponent("Tests/ONNXTests/Fixtures")

    /// `models add` registers an ONNX network under a name; every command's --model takes it, its SHA-256 is
    /// checked, a URL fetches it again, and what cannot be used is refused in one line leaving nothing behind.
    @Test("models add NAME --onnx FILE: --model NAME works like the file; SHA-256, URL, force, remove")
    func addONNX() throws {
        let scratch = try ScratchDirectory("models-add")
        let environment = ["ROADWATCH_MODELS": scratch.path("added"), "XDG_CACHE_HOME": scratch.path("cache")]
        func roadwatch(_ arguments: [String]) throws -> RoadwatchBinary.Outcome {
            try RoadwatchBinary.run(arguments, timeout: 300, environment: environment)
        }
        let onnx = Self.fixtures.appendingPathComponent("espnet-512x256.onnx").path
        let image = Shared.path("data/road_anomaly_dev/frames/animals01_Guiguinto_railway_station_Calves.jpg")

        let added = try roadwatch(["models", "add", "street", "--onnx", onnx, "--summary", "ESPNet exported", "--url", "file://" + onnx])
        #expect(added.status == 0, "\(added.stderr)")
        #expect(FileManager.default.fileExists(atPath: scratch.path("added/street/espnet-512x256.onnx")))
        let list = try roadwatch(["models", "list"])
        #expect(list.stdout.contains("street") && list.stdout.contains("ESPNet exported"), "\(list.stdout)")

        // The named model and the file give the same class map; the definition beside the file came along.
        let byName = try roadwatch(["segment", image, "--model", "street", "--size", "512x256", "--class-map", scratch.path("a.png")])
        let byFile = try roadwatch(["segment", image, "--model", onnx, "--size", "512x256", "--class-map", scratch.path("b.png")])
        #expect(byName.status == 0 && byFile.status == 0, "\(byName.stderr)\(byFile.stderr)")
        #expect(FileManager.default.contents(atPath: scratch.path("a.png")) == FileManager.default.contents(atPath: scratch.path("b.png")))
        #expect(byName.stdout.contains("street at 512x256"), "\(byName.stdout)")

        // Refusals: one line each, non-zero, and no folder left behind.
        for (arguments, problem) in [
            (["models", "add", "street", "--onnx", onnx], "already added"),
            (["models", "add", "other", "--onnx", onnx, "--sha256", String(repeating: "0", count: 64)], "not added"),
            (["models", "add", "other", "--onnx", onnx, "--features", "no-such-value"], "no value named 'no-such-value'"),
            (["models", "add", "espnetv2-cityscapes", "--onnx", onnx], "built-in"),
            (["models", "add", "../up", "--onnx", onnx], "use letters, digits"),
            (["models", "add", "other", "--onnx", scratch.path("missing.onnx")], "does not exist"),
            (["segment", image, "--model", "nobody", "--class-map", scratch.path("c.png")], "unknown model 'nobody'"),
        ] {
            let refused = try roadwatch(arguments)
            #expect(refused.status != 0 && refused.stderrLines.count == 1 && refused.stderr.contains(problem),
                    "\(arguments): \(refused.stderr)")
        }
        let folders = try FileManager.default.contentsOfDirectory(atPath: scratch.path("added"))
        #expect(folders == ["street"], "\(folders)")

        // A damaged copy is caught by verify, and fetched again from the URL on next use.
        try Data("damaged".utf8).write(to: URL(fileURLWithPath: scratch.path("added/street/espnet-512x256.onnx")))
        let verify = try roadwatch(["models", "verify"])
        #expect(verify.status != 0 && verify.stdout.contains("street: FAILED"), "\(verify.stdout)")
        let again = try roadwatch(["segment", image, "--model", "street", "--size", "512x256", "--class-map", scratch.path("d.png")])
        #expect(again.status == 0 && again.stderr.contains("fetching"), "\(again.stderr)")
        #expect(FileManager.default.contents(atPath: scratch.path("d.png")) == FileManager.default.contents(atPath: scratch.path("b.png")))

        // External data files are copied along: ESPNetv2 with its weights beside the graph.
        let source = try ScratchDirectory("models-add-v2")
        for name in ["espnetv2-512x256.onnx", "espnetv2-512x256.json"] {
            try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent(name), to: source.url.appendingPathComponent(name))
        }
        try FileManager.default.copyItem(atPath: Shared.path("models/espnetv2-cityscapes/espnetv2_s_2.0_city_1024x512.safetensors"),
                                         toPath: source.path("espnetv2_s_2.0_city_1024x512.safetensors"))
        let v2 = try roadwatch(["models", "add", "v2", "--onnx", source.path("espnetv2-512x256.onnx")])
        #expect(v2.status == 0, "\(v2.stderr)")
        try FileManager.default.removeItem(at: source.url)
        let ran = try roadwatch(["segment", image, "--model", "v2", "--class-map", scratch.path("e.png")])
        #expect(ran.status == 0 && ran.stdout.contains("v2 at 512x256"), "\(ran.stderr)")

        let removed = try roadwatch(["models", "remove", "street"])
        #expect(removed.status == 0 && !FileManager.default.fileExists(atPath: scratch.path("added/street")))
        let gone = try roadwatch(["models", "remove", "street"])
        #expect(gone.status != 0 && gone.stderrLines.count == 1)
    }
}
