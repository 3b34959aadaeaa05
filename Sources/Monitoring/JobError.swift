import Foundation
import VideoIO

/// A job that cannot go on, in one line that names the file or input and the cause.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The system error behind it, when there was one (`ENOSPC`, ...).
    public var errno: Int32?
    public init(_ description: String, errno: Int32? = nil) {
        self.description = description
        self.errno = errno
    }

    /// Whether `error` is a full disk (or quota): nothing more can be written there, so a batch stops.
    public static func isDiskFull(_ error: any Error) -> Bool {
        let full: Set<Int32> = [ENOSPC, EDQUOT]
        if let error = error as? JobError, let number = error.errno { return full.contains(number) }
        if let error = error as? VideoIOError, let code = error.code { return full.contains(-code) }
        return false
    }
}

/// A file written with `write(2)` and nothing buffered in the process: what `write` returned is with the
/// kernel, so a kill does not lose it. Each write also checks the file still has a name: a removed file
/// (or a removed output folder) takes writes without error, which would lose them silently.
final class AppendFile: Sendable {
    let path: String
    let what: String
    private let descriptor: Int32

    /// `appending`: keep what the file holds and write after it (O_APPEND); otherwise start it empty.
    init(path: String, what: String, appending: Bool = false) throws(JobError) {
        self.path = path
        self.what = what
        let opened = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (appending ? O_APPEND : O_TRUNC), 0o644)
        guard opened >= 0 else {
            let number = errno
            throw JobError("cannot create \(what) '\(path)': \(describeErrno(number))", errno: number)
        }
        descriptor = opened
    }

    deinit { _ = Glibc.close(descriptor) }

    func write(_ data: Data) throws(JobError) {
        let start = lseek(descriptor, 0, SEEK_END)  // the end: with O_APPEND the offset is 0 until a first write
        if let failure = writeAll(descriptor, data) {
            // A line cut short (a full disk) is taken back, so the file still parses line by line.
            if start >= 0 { _ = ftruncate(descriptor, start) }
            throw JobError("cannot write \(what) '\(path)': \(describeErrno(failure))", errno: failure)
        }
        var status = stat()
        if fstat(descriptor, &status) == 0 && status.st_nlink == 0 {
            throw JobError("cannot write \(what) '\(path)': it was removed while being written (or its folder was)",
                           errno: ENOENT)
        }
    }

    /// Waits until what was written is on the disk (a delayed write error shows here); the descriptor itself
    /// closes with the object.
    func sync() throws(JobError) {
        if fsync(descriptor) != 0 && errno != EINVAL {
            let number = errno
            throw JobError("cannot write \(what) '\(path)': \(describeErrno(number))", errno: number)
        }
    }
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
