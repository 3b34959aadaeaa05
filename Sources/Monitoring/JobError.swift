import Foundation

/// A job that cannot go on, in one line that names the file or input and the cause.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Checks made before any work, so a bad output path fails in one line before the model loads.
public enum OutputChecks {
    /// Fails when `path` cannot be created or written; `what` names it in the message ("output", "events file").
    public static func writable(_ path: String, what: String) throws(JobError) {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard !isDirectory.boolValue else { throw JobError("\(what) '\(path)' is a directory") }
            guard FileManager.default.isWritableFile(atPath: path) else { throw JobError("\(what) '\(path)' is not writable") }
            return
        }
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JobError("cannot write \(what) '\(path)': folder '\(folder)' does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            throw JobError("cannot write \(what) '\(path)': folder '\(folder)' is not writable")
        }
    }

    /// Creates a folder (and its parents), or fails naming it.
    public static func makeFolder(_ path: String, what: String) throws(JobError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw JobError("cannot create \(what) '\(path)': \(error.localizedDescription)")
        }
    }

    /// Whether two paths name the same file once normalised and symlinks resolved.
    public static func same(_ a: String, _ b: String) -> Bool {
        URL(fileURLWithPath: a).standardizedFileURL.resolvingSymlinksInPath()
            == URL(fileURLWithPath: b).standardizedFileURL.resolvingSymlinksInPath()
    }
}

/// JSON files as roadwatch writes them: sorted keys, pretty, written atomically.
public enum JSONFile {
    public static func write<T: Encodable>(_ value: T, to path: String) throws(JobError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try encoder.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw JobError("cannot write '\(path)': \(error.localizedDescription)")
        }
    }

    public static func read<T: Decodable>(_ type: T.Type, from path: String) throws(JobError) -> T {
        guard let data = FileManager.default.contents(atPath: path) else { throw JobError("cannot read '\(path)'") }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw JobError("'\(path)' is not a roadwatch \(T.self): \(error.localizedDescription)")
        }
    }
}
