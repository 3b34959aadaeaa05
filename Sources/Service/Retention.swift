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

    /// The files the rules cover under `folder`, oldest first, and the size of the newest recording (it may
    /// be open: never removed, but it counts towards the total).
    static func entries(in folder: String) -> (removable: [Entry], openBytes: Int64) {
        var entries: [Entry] = []
        var openBytes: Int64 = 0
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
                openBytes = newest.bytes
                here.removeAll { $0.path == newest.path }
            }
            entries += here
        }
        return (entries.sorted { $0.modified < $1.modified || ($0.modified == $1.modified && $0.path < $1.path) }, openBytes)
    }

    /// Removes what the rules say must go; returns the removed paths.
    @discardableResult
    public func sweep(_ folder: String, now: Double = Date().timeIntervalSince1970) -> [String] {
        guard !isEmpty else { return [] }
        let (found, open) = Self.entries(in: folder)
        var entries = found
        var removed: [String] = []
        if let maxAge {
            for entry in entries where now - entry.modified > maxAge && unlink(entry.path) == 0 { removed.append(entry.path) }
            entries.removeAll { removed.contains($0.path) }
        }
        if let maxBytes {
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
}
