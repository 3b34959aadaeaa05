import ArgumentParser
import Foundation
import Models

/// `roadwatch models`: what models there are, and fetching and checking them.
struct Models: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, fetch and verify segmentation models.",
        discussion: """
            The default model ships inside roadwatch. Others are downloaded on first use into \
            $XDG_CACHE_HOME/roadwatch (else ~/.cache/roadwatch) and checked against their SHA-256 before use. \
            ROADWATCH_MODEL_MIRROR names a folder or base URL holding <name>/<file> for machines without internet.
            """,
        subcommands: [List.self, Fetch.self, Verify.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the models roadwatch knows and where each is.")

        func run() throws {
            let store = ModelStore()
            for model in ModelRegistry.all {
                let place: String
                if let bundled = store.bundledFile(model) {
                    place = "bundled (\(bundled.path))"
                } else if FileManager.default.fileExists(atPath: store.cachedFile(model).path) {
                    place = "cached (\(store.cachedFile(model).path))"
                } else {
                    place = "downloaded on first use"
                }
                let marker = model.name == ModelRegistry.defaultName ? "*" : " "
                print("\(marker) \(model.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(model.summary); \(model.defaultSize.width)x\(model.defaultSize.height); \(place)")
            }
            print("  (* default; \(ModelRegistry.all.first!.licence))")
        }
    }

    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download a model into the cache and verify it.")

        @Argument(help: "Model name.")
        var name: String

        func run() async throws {
            guard let model = ModelRegistry.named(name) else {
                throw ValidationError("unknown model '\(name)' (known: \(ModelRegistry.all.map(\.name).joined(separator: ", ")))")
            }
            let file = try await ModelStore().file(for: model, progress: { Console.info($0) })
            print("\(model.name): \(file.path) (SHA-256 verified)")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the SHA-256 of every bundled and cached model.")

        func run() throws {
            let store = ModelStore()
            var failures = 0
            for model in ModelRegistry.all {
                let file = store.bundledFile(model) ?? store.cachedFile(model)
                guard FileManager.default.fileExists(atPath: file.path) else {
                    print("\(model.name): not downloaded")
                    continue
                }
                do {
                    try ModelStore.verify(file, sha256: model.sha256, name: model.name)
                    print("\(model.name): ok (\(file.path))")
                } catch {
                    failures += 1
                    print("\(model.name): FAILED: \(error)")
                }
            }
            if failures > 0 { throw RoadwatchError("\(failures) model file(s) failed verification") }
        }
    }
}
