import Foundation

/// Keeps a camera's folder within its limits: recordings, clips and snapshots older than `maxAge`
/// seconds go, then the oldest of them until the total is under `maxBytes`. Hidden files (being written)
/// and the newest recording (it may be open) are never touched.
public struct Retention: Sendable, Equatable {
    public var maxAge: Double?
    public var maxBytes: Int64?

    public init(maxAge: Double?, maxBytes: Int64?) {
        self.maxAge = maxAge
        self.maxBytes = maxBytes
    }

    public var isEmpty: Bool { maxAge == nil && maxBytes == nil }

    struct Entry {
        var path: String
        var bytes: Int64
        var modified: Double
    }

    /// The files the rules cover under `folder`, oldest first.
    static func entries(in folder: String) -> [Entry] {
        var entries: [Entry] = []
        for sub in ["recordings", "clips", "snapshots"] {
            let dir = folder + "/" + sub
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            var here: [Entry] = []
            for name in names where !name.hasPrefix(".") {
                var info = stat()
                let path = dir + "/" + name
                guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
                let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) * 1e-9
                here.append(Entry(path: path, bytes: Int64(info.st_size), modified: modified))
            }
            if sub == "recordings", let newest = here.max(by: { $0.modified < $1.modified }) {
                here.removeAll { $0.path == newest.path }
            }
            entries += here
        }
        return entries.sorted { $0.modified < $1.modified || ($0.modified == $1.modified && $0.path < $1.path) }
    }

    /// Removes what the rules say must go; returns the removed paths.
    @discardableResult
    public func sweep(_ folder: String, now: Double = Date().timeIntervalSince1970) -> [String] {
        guard !isEmpty else { return [] }
        var entries = Self.entries(in: folder)
        var removed: [String] = []
        if let maxAge {
            for entry in entries where now - entry.modified > maxAge && unlink(entry.path) == 0 { removed.append(entry.path) }
            entries.removeAll { removed.contains($0.path) }
        }
        if let maxBytes {
            // The newest recording counts towards the total even though it is never removed.
            let open = Self.openRecordingBytes(folder)
            var total = entries.reduce(open) { $0 + $1.bytes }
            for entry in entries where total > maxBytes {
                if unlink(entry.path) == 0 {
                    removed.append(entry.path)
                    total -= entry.bytes
                }
            }
        }
        return removed
    }

    static func openRecordingBytes(_ folder: String) -> Int64 {
        let dir = folder + "/recordings"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return 0 }
        var newest: (Double, Int64)?
        for name in names where !name.hasPrefix(".") {
            var info = stat()
            guard stat(dir + "/" + name, &info) == 0 else { continue }
            let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) * 1e-9
            if newest == nil || modified > newest!.0 { newest = (modified, Int64(info.st_size)) }
        }
        return newest?.1 ?? 0
    }
}
