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
            ROADWATCH_MODEL_MIRROR names a folder or base URL holding <name>/<file> for machines without internet. \
            'models add' registers an ONNX segmentation network under a name of your choice, kept in \
            $ROADWATCH_MODELS (else $XDG_DATA_HOME/roadwatch/models, else ~/.local/share/roadwatch/models); \
            every command's --model then takes that name.
            """,
        subcommands: [List.self, Fetch.self, Verify.self, Add.self, Remove.self]
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
            let users = UserModels()
            for name in users.names() {
                guard let entry = try? users.entry(name) else {
                    print("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0)) (entry does not parse: \(users.folder(name).path))")
                    continue
                }
                let file = users.folder(name).appendingPathComponent(entry.file)
                let place = FileManager.default.fileExists(atPath: file.path) ? "added (\(file.path))" : "added, file missing\(entry.url == nil ? "" : "; fetched on first use")"
                print("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(entry.summary ?? "ONNX model \(entry.file)"); \(place)")
            }
            print("  (* default; \(ModelRegistry.all.first!.licence))")
        }
    }

    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download a model into the cache and verify it.")

        @Argument(help: "Model name.")
        var name: String

        func run() async throws {
            let users = UserModels()
            if ModelRegistry.named(name) == nil, let entry = try users.entry(name) {
                let file = try await users.file(for: entry, progress: { Console.info($0) })
                print("\(entry.name): \(file.path) (SHA-256 verified)")
                return
            }
            guard let model = ModelRegistry.named(name) else {
                throw ValidationError("unknown model '\(name)' (known: \((ModelRegistry.all.map(\.name) + users.names()).joined(separator: ", ")))")
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
            let users = UserModels()
            for name in users.names() {
                do {
                    guard let entry = try users.entry(name) else { continue }
                    let file = users.folder(name).appendingPathComponent(entry.file)
                    guard FileManager.default.fileExists(atPath: file.path) else {
                        print("\(name): not downloaded")
                        continue
                    }
                    try ModelStore.verify(file, sha256: entry.sha256, name: name)
                    print("\(name): ok (\(file.path))")
                } catch {
                    failures += 1
                    print("\(name): FAILED: \(error)")
                }
            }
            if failures > 0 { throw RoadwatchError("\(failures) model file(s) failed verification") }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an ONNX segmentation network under a name.",
            discussion: """
                Checks the file loads and runs at its default size (operators, logits and features as the \
                definition names them), records its SHA-256, and copies it (with any external data files) into \
                the models folder. The definition is FILE.json beside the file unless --definition names one; \
                --logits and --features override its output names. With --url, a missing or damaged copy is \
                fetched again from there and checked against the SHA-256.
                """)

        @Argument(help: "The name to use with --model.")
        var name: String
        @Option(help: "The ONNX file.")
        var onnx: String
        @Option(help: "Model definition JSON (input normalisation, size multiple, default size, logits, features, classes).")
        var definition: String?
        @Option(help: "Name of the logits output (1 x C x h x w).")
        var logits: String?
        @Option(help: "Name of the value whose map is clustered (1 x C x h x w).")
        var features: String?
        @Option(help: "Where the file can be downloaded again.")
        var url: String?
        @Option(help: "Expected SHA-256 of the file (refused if it differs).")
        var sha256: String?
        @Option(help: "One line describing the model (shown by 'models list').")
        var summary: String?
        @Flag(help: "Replace a model already added under this name.")
        var force = false

        func run() throws {
            let file = URL(fileURLWithPath: onnx)
            var parsed: ONNXDefinition
            if let definition {
                guard let data = FileManager.default.contents(atPath: definition) else {
                    throw RoadwatchError("cannot read model definition '\(definition)'")
                }
                do { parsed = try JSONDecoder().decode(ONNXDefinition.self, from: data) } catch {
                    throw RoadwatchError("model definition '\(definition)' does not parse: \(error)")
                }
            } else {
                parsed = try ONNXDefinition.beside(file)
            }
            if let logits { parsed.logits = logits }
            if let features { parsed.features = features }
            let users = UserModels()
            let entry = try users.add(name: name, onnx: file, definition: parsed, url: url, sha256: sha256, summary: summary, replace: force)
            print("\(entry.name): added (\(users.folder(entry.name).path), SHA-256 \(entry.sha256)); use --model \(entry.name)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a model added with 'models add'.")

        @Argument(help: "Model name.")
        var name: String

        func run() throws {
            try UserModels().remove(name)
            print("\(name): removed")
        }
    }
}
