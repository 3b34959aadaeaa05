import Foundation
import ONNX

/// A model a user added with `roadwatch models add`: an ONNX file, its definition, and where to fetch it
/// again. Kept as `entry.json` in the model's own folder beside the file (and its external data files).
public struct UserModelEntry: Codable, Sendable, Equatable {
    public var name: String
    /// The `.onnx` file's name inside the model's folder.
    public var file: String
    /// SHA-256 of that file, lowercase hex: checked before every use.
    public var sha256: String
    /// Where the file can be downloaded again (https://, file:// or a path); nil when it was only copied in.
    public var url: String?
    /// External data files the graph reads, copied beside it.
    public var externalFiles: [String]
    public var summary: String?
    public var definition: ONNXDefinition

    public init(name: String, file: String, sha256: String, url: String?, externalFiles: [String], summary: String?,
                definition: ONNXDefinition) {
        self.name = name
        self.file = file
        self.sha256 = sha256
        self.url = url
        self.externalFiles = externalFiles
        self.summary = summary
        self.definition = definition
    }

    /// The entry as a registry descriptor (for `ModelStore`'s fetch-and-verify).
    var descriptor: ModelDescriptor {
        ModelDescriptor(name: name, architecture: .onnx, summary: summary ?? "ONNX model \(file)", fileName: file,
                        url: url ?? "", sha256: sha256, bundled: false, defaultSize: (1024, 512),
                        normalization: Normalization(order: .rgb, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scaling: .divideFirst),
                        classNames: [], palette: [], inDistributionClasses: 0,
                        licence: "as its publisher says: weights carry their training data's terms")
    }
}

/// The models users added, one folder each under `ROADWATCH_MODELS`, else `$XDG_DATA_HOME/roadwatch/models`,
/// else `~/.local/share/roadwatch/models`.
public struct UserModels: Sendable {
    public var directory: URL

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let explicit = environment["ROADWATCH_MODELS"], !explicit.isEmpty {
            directory = URL(fileURLWithPath: explicit)
        } else if let data = environment["XDG_DATA_HOME"], !data.isEmpty {
            directory = URL(fileURLWithPath: data).appendingPathComponent("roadwatch/models")
        } else {
            let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
            directory = home.appendingPathComponent(".local/share/roadwatch/models")
        }
    }

    public init(directory: URL) { self.directory = directory }

    public func folder(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// A name users can give: letters, digits, `.`, `_`, `-`, not a built-in model's, not a file's.
    public static func check(name: String) throws {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._-"))
        guard let first = name.unicodeScalars.first, CharacterSet.alphanumerics.contains(first),
              name.unicodeScalars.allSatisfy({ allowed.contains($0) && $0.isASCII }), name.count <= 64 else {
            throw ModelStoreError("model name '\(name)': use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)")
        }
        guard ModelRegistry.named(name) == nil else { throw ModelStoreError("'\(name)' is a built-in model's name; choose another") }
        for suffix in [".onnx", ".pth", ".safetensors", ".json"] where name.lowercased().hasSuffix(suffix) {
            throw ModelStoreError("model name '\(name)' ends in \(suffix), which reads as a file; choose a name without it")
        }
    }

    /// The entry named `name`; nil when there is none.
    public func entry(_ name: String) throws -> UserModelEntry? {
        let file = folder(name).appendingPathComponent("entry.json")
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        do {
            return try JSONDecoder().decode(UserModelEntry.self, from: data)
        } catch {
            throw ModelStoreError("model entry '\(file.path)' does not parse: \(error)")
        }
    }

    /// Every added model's name, sorted.
    public func names() -> [String] {
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return folders.filter { FileManager.default.fileExists(atPath: folder($0).appendingPathComponent("entry.json").path) }.sorted()
    }

    /// Adds (or with `replace`, replaces) `name`: checks the file loads as a segmentation network with
    /// `definition`, checks `sha256` when given, copies the file and its external data into the model's
    /// folder (through a hidden folder renamed at the end, so a failed add leaves nothing behind).
    @discardableResult
    public func add(name: String, onnx: URL, definition: ONNXDefinition, url: String?, sha256 expected: String?,
                    summary: String?, replace: Bool) throws -> UserModelEntry {
        try Self.check(name: name)
        if !replace, try entry(name) != nil {
            throw ModelStoreError("model '\(name)' is already added (\(folder(name).path)); give --force to replace it")
        }
        guard FileManager.default.fileExists(atPath: onnx.path) else { throw ModelStoreError("model file '\(onnx.path)' does not exist") }
        let digest = try ModelStore.sha256(of: onnx)
        if let expected, digest != expected.lowercased() {
            throw ModelStoreError("'\(onnx.path)' has SHA-256 \(digest), not the \(expected) given: not added")
        }
        // Loading is the check: operators, shapes, logits and features as the definition names them.
        let loaded = try ModelLoader.loadONNX(onnx, definition: definition, name: name)
        let graph = (loaded.network as! ONNXSegmentation).graph
        let entry = UserModelEntry(name: name, file: onnx.lastPathComponent, sha256: digest, url: url,
                                   externalFiles: graph.externalFiles, summary: summary, definition: definition)
        let fm = FileManager.default
        let staging = directory.appendingPathComponent(".\(name).\(UUID().uuidString.prefix(8)).adding")
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: true)
            defer { try? fm.removeItem(at: staging) }
            try fm.copyItem(at: onnx, to: staging.appendingPathComponent(entry.file))
            for extra in entry.externalFiles {
                let target = staging.appendingPathComponent(extra)
                try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try fm.copyItem(at: onnx.deletingLastPathComponent().appendingPathComponent(extra), to: target)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(entry).write(to: staging.appendingPathComponent("entry.json"))
            if fm.fileExists(atPath: folder(name).path) { try fm.removeItem(at: folder(name)) }
            try fm.moveItem(at: staging, to: folder(name))
        } catch {
            throw ModelStoreError("cannot add model '\(name)' under \(directory.path): \(error.localizedDescription)")
        }
        return entry
    }

    public func remove(_ name: String) throws {
        guard try entry(name) != nil else { throw ModelStoreError("no added model named '\(name)'") }
        do {
            try FileManager.default.removeItem(at: folder(name))
        } catch {
            throw ModelStoreError("cannot remove model '\(name)': \(error.localizedDescription)")
        }
    }

    /// The entry's file, verified by its SHA-256; fetched again from its URL (into its folder) when it is
    /// missing or does not match.
    public func file(for entry: UserModelEntry, progress: (@Sendable (String) -> Void)? = nil) async throws -> URL {
        let local = folder(entry.name).appendingPathComponent(entry.file)
        if FileManager.default.fileExists(atPath: local.path) {
            if (try? ModelStore.verify(local, sha256: entry.sha256, name: entry.name)) != nil { return local }
            guard entry.url != nil else {
                try ModelStore.verify(local, sha256: entry.sha256, name: entry.name)  // throws the mismatch
                return local
            }
            progress?("\(entry.name): \(local.path) fails its SHA-256 check; fetching it again")
        }
        guard let url = entry.url, !url.isEmpty else {
            throw ModelStoreError("model '\(entry.name)': \(local.path) is missing and the entry has no URL to fetch it from; add it again")
        }
        // The store keeps <directory>/<name>/<file>: exactly this folder. A mirror does not apply to user models.
        let store = ModelStore(cacheDirectory: directory, mirror: nil)
        return try await store.fetch(entry.descriptor, progress: progress)
    }
}
