import VideoIO
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A model that cannot be found, fetched or trusted, told in one line.
public struct ModelStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Finds weight files: bundled inside roadwatch, in the cache, or downloaded on first use (from
/// `ROADWATCH_MODEL_MIRROR` when set, else the public source), always verified by SHA-256 before use.
public struct ModelStore: Sendable {
    /// Where downloaded weights live: `$XDG_CACHE_HOME/roadwatch`, else `~/.cache/roadwatch`.
    public var cacheDirectory: URL
    /// A folder or base URL holding `<model name>/<file>` (or `<file>`), tried instead of the public source.
    public var mirror: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            cacheDirectory = URL(fileURLWithPath: xdg).appendingPathComponent("roadwatch")
        } else {
            let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
            cacheDirectory = home.appendingPathComponent(".cache/roadwatch")
        }
        mirror = environment["ROADWATCH_MODEL_MIRROR"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public init(cacheDirectory: URL, mirror: String?) {
        self.cacheDirectory = cacheDirectory
        self.mirror = mirror
    }

    /// The bundled copy of a model, if roadwatch ships it and its resource folder is found.
    ///
    /// Looks for SwiftPM's resource bundle beside the executable (where `swift build` puts it; copy it along
    /// when installing the binary elsewhere), then in the source tree this was built from. Unlike
    /// `Bundle.module`, a missing bundle is an error to report, not a crash.
    public func bundledFile(_ model: ModelDescriptor) -> URL? {
        guard model.bundled else { return nil }
        let bundleName = "roadwatch_Models.resources"
        var folders: [URL] = []
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            folders.append(executable.deletingLastPathComponent().appendingPathComponent(bundleName))
        }
        folders.append(Bundle.main.bundleURL.appendingPathComponent(bundleName))
        folders.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(bundleName))
        folders.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources"))
        for folder in folders {
            let file = folder.appendingPathComponent(model.name).appendingPathComponent(model.fileName)
            if FileManager.default.fileExists(atPath: file.path) { return file }
        }
        return nil
    }

    /// Where a downloaded model is kept.
    public func cachedFile(_ model: ModelDescriptor) -> URL {
        cacheDirectory.appendingPathComponent(model.name).appendingPathComponent(model.fileName)
    }

    /// A verified local file for `model`: bundled, cached, or fetched now.
    public func file(for model: ModelDescriptor, progress: (@Sendable (String) -> Void)? = nil) async throws -> URL {
        if let bundled = bundledFile(model) {
            try Self.verify(bundled, sha256: model.sha256, name: model.name)
            return bundled
        }
        // A bundled model whose resources went missing is fetched like any other.
        let cached = cachedFile(model)
        if FileManager.default.fileExists(atPath: cached.path) {
            if (try? Self.verify(cached, sha256: model.sha256, name: model.name)) != nil { return cached }
            progress?("cached \(model.name) fails its SHA-256 check; fetching it again")
        }
        return try await fetch(model, progress: progress)
    }

    /// Downloads (or copies from the mirror) into the cache: a temporary file, verified, then renamed.
    @discardableResult
    public func fetch(_ model: ModelDescriptor, progress: (@Sendable (String) -> Void)? = nil) async throws -> URL {
        let destination = cachedFile(model)
        let folder = destination.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError("cannot create the model cache \(folder.path): \(error.localizedDescription)")
        }
        let temporary = folder.appendingPathComponent(".\(model.fileName).\(UUID().uuidString).part")
        defer { try? FileManager.default.removeItem(at: temporary) }
        var attempts: [String] = []
        for source in sources(for: model) {
            progress?("fetching \(model.name) from \(source)")
            do {
                try await copy(from: source, to: temporary)
                try Self.verify(temporary, sha256: model.sha256, name: model.name)
                _ = try? FileManager.default.removeItem(at: destination)
                try FileManager.default.moveItem(at: temporary, to: destination)
                return destination
            } catch {
                attempts.append("\(source): \(Self.oneLine(error))")
                try? FileManager.default.removeItem(at: temporary)
            }
        }
        throw ModelStoreError("cannot fetch model '\(model.name)': " + attempts.joined(separator: "; "))
    }

    /// An error in a few words: roadwatch's own as they describe themselves; Foundation's by their message, the
    /// underlying error's when the outer one has none ("Could not resolve host: github.com", not the NSError dump).
    static func oneLine(_ error: any Error) -> String {
        if let own = error as? ModelStoreError { return own.description }
        let ns = error as NSError
        let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError
        let message = ns.userInfo[NSLocalizedDescriptionKey] as? String
            ?? underlying?.userInfo[NSLocalizedDescriptionKey] as? String
            ?? ns.localizedDescription
        return message.replacingOccurrences(of: "\n", with: " ")
    }

    /// The mirror's candidates first (when set), then the public source.
    func sources(for model: ModelDescriptor) -> [String] {
        var result: [String] = []
        if let mirror {
            let base = mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror
            result += ["\(base)/\(model.name)/\(model.fileName)", "\(base)/\(model.fileName)"]
            return result  // a mirror is for machines without internet: do not reach past it
        }
        result.append(model.url)
        return result
    }

    private func copy(from source: String, to destination: URL) async throws {
        if source.hasPrefix("http://") || source.hasPrefix("https://") {
            guard let url = URL(string: source) else { throw ModelStoreError("bad URL") }
            let (downloaded, response) = try await URLSession.shared.download(from: url)
            if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
                try? FileManager.default.removeItem(at: downloaded)
                throw ModelStoreError("HTTP \(http.statusCode)")
            }
            try FileManager.default.moveItem(at: downloaded, to: destination)
        } else {
            let path = source.hasPrefix("file://") ? String(source.dropFirst(7)) : source
            guard FileManager.default.fileExists(atPath: path) else { throw ModelStoreError("not found") }
            try FileManager.default.copyItem(atPath: path, toPath: destination.path)
        }
    }

    /// SHA-256 of a file, lowercase hex.
    public static func sha256(of file: URL) throws -> String {
        do {
            return try SHA256Digest.hex(ofFile: file)
        } catch {
            throw ModelStoreError("cannot read \(file.path)")
        }
    }

    /// Throws unless `file` has the expected digest.
    public static func verify(_ file: URL, sha256 expected: String, name: String) throws {
        let actual = try sha256(of: file)
        guard actual == expected.lowercased() else {
            throw ModelStoreError("weights for '\(name)' at \(file.path) have SHA-256 \(actual), expected \(expected): not used")
        }
    }
}
