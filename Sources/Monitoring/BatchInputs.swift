import Foundation

/// One input of a batch and the relative name its outputs take under the output folder.
public struct BatchItem: Sendable, Equatable {
    /// A path or URL, as the monitor opens it.
    public var input: String
    /// Relative path of the outputs without extension (`car1/2026-03-01_1200`); unique within a batch.
    public var key: String

    public init(input: String, key: String) {
        self.input = input
        self.key = key
    }
}

/// Turns batch arguments — files, folders, manifests, URLs — into a sorted list of items.
public enum BatchInputs {
    public static let videoExtensions: Set<String> = [
        "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "flv", "mpg", "mpeg", "3gp", "wmv", "h264", "264",
        "hevc", "h265",
    ]
    /// A file with one of these extensions lists inputs, one path or URL per line (`#` starts a comment).
    public static let manifestExtensions: Set<String> = ["txt", "list", "lst", "manifest"]

    public static func isURL(_ text: String) -> Bool { text.contains("://") }

    /// Every input, sorted by key; fails on an input that does not exist or two inputs that would share outputs.
    public static func collect(_ arguments: [String]) throws -> [BatchItem] {
        var items: [BatchItem] = []
        for argument in arguments {
            items += try expand(argument, manifestFolder: nil, fromManifest: nil)
        }
        items.sort { $0.key < $1.key }
        var seen: [String: String] = [:]
        var unique: [BatchItem] = []
        for item in items {
            if let other = seen[item.key] {
                if other == item.input { continue }  // the same file named twice
                throw JobError("inputs '\(other)' and '\(item.input)' would both write outputs named '\(item.key)': rename one or run them in separate batches")
            }
            seen[item.key] = item.input
            unique.append(item)
        }
        return unique
    }

    private static func expand(_ argument: String, manifestFolder: String?, fromManifest: String?) throws -> [BatchItem] {
        if isURL(argument) { return [BatchItem(input: argument, key: keyForURL(argument))] }
        var path = argument
        if let manifestFolder, !path.hasPrefix("/") { path = manifestFolder + "/" + path }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            let origin = fromManifest.map { " (listed in \($0))" } ?? ""
            throw JobError("input '\(argument)'\(origin) does not exist")
        }
        if isDirectory.boolValue { return try folder(path) }
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        if fromManifest == nil && manifestExtensions.contains(ext) { return try manifest(path) }
        // A file named directly or in a manifest: keyed by the path as written (made relative and clean).
        return [BatchItem(input: path, key: stem(cleanRelative(argument)))]
    }

    /// Video files (or links to them) under `root`, recursively, hidden entries skipped; keyed by their path inside `root`.
    private static func folder(_ root: String) throws -> [BatchItem] {
        let rootURL = URL(fileURLWithPath: root).standardizedFileURL
        guard let walker = FileManager.default.enumerator(at: rootURL, includingPropertiesForKeys: [.isRegularFileKey],
                                                           options: [.skipsHiddenFiles]) else {
            throw JobError("cannot read folder '\(root)'")
        }
        var items: [BatchItem] = []
        let prefix = rootURL.path.hasSuffix("/") ? rootURL.path : rootURL.path + "/"
        for case let url as URL in walker {
            guard videoExtensions.contains(url.pathExtension.lowercased()),
                  // A link to a video counts as the video (folders of links to an archive are common).
                  (try? url.resolvingSymlinksInPath().resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true
            else { continue }
            let full = url.standardizedFileURL.path
            let relative = full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : url.lastPathComponent
            items.append(BatchItem(input: full, key: stem(relative)))
        }
        return items
    }

    private static func manifest(_ path: String) throws -> [BatchItem] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw JobError("cannot read manifest '\(path)' as UTF-8 text")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var items: [BatchItem] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let entry = line.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty || entry.hasPrefix("#") { continue }
            items += try expand(entry, manifestFolder: folder, fromManifest: path)
        }
        return items
    }

    /// `a/./b/../c.mp4` → `a/c.mp4`; absolute paths lose their leading slash; `..` that climbs out becomes `_up`.
    static func cleanRelative(_ path: String) -> String {
        var parts: [String] = []
        for part in path.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": if let last = parts.last, last != "_up" { parts.removeLast() } else { parts.append("_up") }
            default: parts.append(String(part))
            }
        }
        return parts.joined(separator: "/")
    }

    static func stem(_ relative: String) -> String {
        let url = URL(fileURLWithPath: relative)
        guard !url.pathExtension.isEmpty else { return relative }
        return String(relative.dropLast(url.pathExtension.count + 1))
    }

    /// `rtsp://cam7.local:554/live/main` → `rtsp/cam7.local_554/live/main`.
    static func keyForURL(_ url: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_./"))
        let mapped = url.replacingOccurrences(of: "://", with: "/").unicodeScalars.map {
            allowed.contains($0) ? Character($0) : "_"
        }
        return stem(cleanRelative(String(mapped)))
    }
}

/// Which part of the sorted inputs this process takes.
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    public var description: String { "\(index)/\(count)" }

    public func contains(position: Int) -> Bool { position % count == index }

    /// `--shard I/N`, or the scheduler's environment: a Slurm job array (`SLURM_ARRAY_TASK_ID` counted from
    /// `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_COUNT` or `--shards`) or a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX` with `--shards`). `nil`: the whole list.
    public static func select(option: String?, shards: Int?, environment: [String: String]) throws -> Shard? {
        if let option {
            let parts = option.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (0..<n).contains(i) else {
                throw JobError("--shard must be I/N with 0 <= I < N, e.g. 0/4, got '\(option)'")
            }
            return Shard(index: i, count: n)
        }
        if let id = environment["SLURM_ARRAY_TASK_ID"].flatMap({ Int($0) }) {
            let first = environment["SLURM_ARRAY_TASK_MIN"].flatMap { Int($0) } ?? 0
            guard let n = shards ?? environment["SLURM_ARRAY_TASK_COUNT"].flatMap({ Int($0) }), n >= 1 else {
                throw JobError("SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT: give --shards N")
            }
            guard (0..<n).contains(id - first) else {
                throw JobError("Slurm array task \(id) is outside \(first)...\(first + n - 1): the array and --shards disagree")
            }
            return Shard(index: id - first, count: n)
        }
        if let index = environment["JOB_COMPLETION_INDEX"].flatMap({ Int($0) }) {
            guard let n = shards, n >= 1 else {
                throw JobError("JOB_COMPLETION_INDEX is set: give --shards N, the Job's completions")
            }
            guard (0..<n).contains(index) else {
                throw JobError("JOB_COMPLETION_INDEX \(index) is not below --shards \(n)")
            }
            return Shard(index: index, count: n)
        }
        if shards != nil {
            throw JobError("--shards needs a scheduler index (SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX); use --shard I/N by hand")
        }
        return nil
    }
}
