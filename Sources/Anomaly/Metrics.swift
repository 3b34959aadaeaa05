import Foundation

/// Pixel-level detection metrics, computed exactly as scikit-learn does: anomaly is the positive class,
/// equal scores form one threshold, AP is the step-wise sum of precision over recall increments
/// (`average_precision_score`), FPR95 is the false-positive rate at the first threshold reaching 95 %
/// recall (`roc_curve(drop_intermediate=False)`), AUROC the trapezoidal area under the ROC curve.
public struct DetectionMetrics: Sendable, Equatable, Codable {
    public var ap: Double
    public var fpr95: Double
    public var auroc: Double
    public var positives: Int
    public var negatives: Int

    enum CodingKeys: String, CodingKey {
        case ap = "AP", fpr95 = "FPR95", auroc = "AUROC", positives, negatives
    }
}

/// Label values of the ground truth masks.
public enum GroundTruth {
    public static let inDistribution: UInt8 = 0
    public static let anomaly: UInt8 = 2
}

/// Pooled pixels of many images for several scoring methods at once, in bounded memory and exactly: each
/// kept pixel is one 64-bit key per method (its score's order-preserving bits and its label), ignored pixels
/// dropped on the way in. Keys gather in memory up to `chunkPixels` per method; a full chunk is sorted and
/// written as one run to a temporary file per method (unlinked as soon as it is opened, so nothing is left
/// behind however the process ends). `metrics()` merges the runs, so the thresholds are walked in the same
/// order as one sort of every pixel would give: the same figures as scikit-learn, on any number of frames.
public final class PixelPool {
    public let methods: [String]
    /// Keys kept in memory per method before they are sorted and spilled.
    public let chunkPixels: Int
    private let spillDirectory: URL
    /// The current chunk per method: the complement of each key, so ascending order is descending score.
    private var chunk: [[UInt64]]
    private var spills: [SpillFile?]
    public private(set) var positives = 0
    public private(set) var negatives = 0

    /// `chunkPixels`: 2 M pixels per method by default (16 MB each); `spillDirectory`: the temporary folder.
    public init(methods: [String], chunkPixels: Int = 1 << 21, spillDirectory: URL? = nil) {
        precondition(chunkPixels > 0)
        self.methods = methods
        self.chunkPixels = chunkPixels
        self.spillDirectory = spillDirectory ?? FileManager.default.temporaryDirectory
        chunk = Array(repeating: [], count: methods.count)
        spills = Array(repeating: nil, count: methods.count)
    }

    /// Pixels kept so far.
    public var count: Int { positives + negatives }

    /// Bytes written to the temporary files so far (0 while everything fits in one chunk).
    public var spilledBytes: Int { spills.reduce(0) { $0 + ($1?.bytes ?? 0) } }

    /// Adds one image: its labels (0 = in-distribution, 2 = anomaly, anything else ignored) and one
    /// score map per method, in `methods` order, each the size of `labels`. Throws when a full chunk
    /// cannot be written to its temporary file (a full disk).
    public func add(labels: [UInt8], scores maps: [[Float]]) throws(PixelPoolError) {
        precondition(maps.count == methods.count, "one score map per method")
        for map in maps { precondition(map.count == labels.count, "score map and labels differ in size") }
        var start = 0
        while start < labels.count {
            // As many pixels as the chunk has room for, then spill and go on.
            let room = chunkPixels - chunk[0].count
            let end = min(labels.count, start + room)
            for m in maps.indices {
                if chunk[m].capacity == 0 { chunk[m].reserveCapacity(min(chunkPixels, max(labels.count, 1 << 16))) }
                let map = maps[m]
                for i in start..<end {
                    let label = labels[i]
                    guard label == GroundTruth.inDistribution || label == GroundTruth.anomaly else { continue }
                    chunk[m].append(~DetectionMetrics.key(map[i], anomaly: label == GroundTruth.anomaly))
                }
            }
            for i in start..<end {
                if labels[i] == GroundTruth.anomaly { positives += 1 } else if labels[i] == GroundTruth.inDistribution { negatives += 1 }
            }
            start = end
            if chunk[0].count >= chunkPixels { try spill() }
        }
    }

    /// Sorts each method's chunk and appends it to the method's file as one run.
    private func spill() throws(PixelPoolError) {
        for m in methods.indices where !chunk[m].isEmpty {
            chunk[m].sort()
            if spills[m] == nil { spills[m] = try SpillFile(directory: spillDirectory) }
            try spills[m]!.append(run: chunk[m])
            chunk[m].removeAll(keepingCapacity: true)
        }
    }

    /// The metrics of every method.
    public func metrics() throws(PixelPoolError) -> [String: DetectionMetrics] {
        var result: [String: DetectionMetrics] = [:]
        for (m, name) in methods.enumerated() {
            chunk[m].sort()
            var cursors = [RunCursor(keys: chunk[m])]
            if let file = spills[m] {
                // Each run is read a block at a time; the blocks together stay near 32 MB however many runs there are.
                let block = min(1 << 14, max(512, (32 << 20) / 8 / max(1, file.runs.count)))
                cursors += file.runs.map { RunCursor(file: file, run: $0, block: block) }
            }
            var merge = try RunMerge(cursors)
            result[name] = try DetectionMetrics.walk(positives: positives, negatives: negatives) { () throws(PixelPoolError) in
                try merge.next().map { ~$0 }
            }
        }
        return result
    }
}

/// A temporary file that cannot be written (a full disk) or read back.
public struct PixelPoolError: Error, CustomStringConvertible {
    /// What failed, naming the folder.
    public let problem: String
    /// The system error behind it (`ENOSPC` for a full disk), when there was one.
    public let errno: Int32?
    /// Foundation's words when there is no system error.
    let detail: String?

    init(_ problem: String, errno: Int32? = nil, detail: String? = nil) {
        self.problem = problem
        self.errno = errno
        self.detail = detail
    }

    /// One line, the system error named by `name` (the callers' convention: "No space left on device (ENOSPC)").
    public func describe(naming name: (Int32) -> String) -> String {
        let cause = errno.map(name) ?? detail
        return problem + (cause.map { ": " + $0 } ?? "") + " (set TMPDIR to a folder with room)"
    }

    public var description: String { describe { String(cString: strerror($0)) } }
}

/// One method's sorted runs on disk, appended one after another.
final class SpillFile {
    private let handle: FileHandle
    private(set) var runs: [(offset: UInt64, count: Int)] = []
    private(set) var bytes = 0
    let path: String

    init(directory: URL) throws(PixelPoolError) {
        path = directory.appendingPathComponent("roadwatch-pixels-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)").path
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forUpdatingAtPath: path) else {
            throw PixelPoolError("cannot create the evaluation's temporary file in '\(directory.path)'")
        }
        self.handle = handle
        // Gone from the folder at once; the open handle keeps it until the pool is freed or the process ends.
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit { try? handle.close() }

    func append(run keys: [UInt64]) throws(PixelPoolError) {
        let data = keys.withUnsafeBytes { Data($0) }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } catch {
            throw Self.failure("cannot write the evaluation's temporary file in '\(URL(fileURLWithPath: path).deletingLastPathComponent().path)'", error)
        }
        runs.append((UInt64(bytes), keys.count))
        bytes += data.count
    }

    /// `problem` with the system error behind Foundation's `error` (ENOSPC for a full disk), else its words.
    static func failure(_ problem: String, _ error: any Error) -> PixelPoolError {
        let ns = error as NSError
        let posix = ns.domain == NSPOSIXErrorDomain ? ns : ns.userInfo[NSUnderlyingErrorKey] as? NSError
        if let posix, posix.domain == NSPOSIXErrorDomain { return PixelPoolError(problem, errno: Int32(posix.code)) }
        return PixelPoolError(problem, detail: ns.localizedDescription)
    }

    /// Up to `count` keys of a run from `offset`.
    func read(offset: UInt64, count: Int) throws(PixelPoolError) -> [UInt64] {
        do {
            try handle.seek(toOffset: offset)
            guard let data = try handle.read(upToCount: count * 8), data.count == count * 8 else {
                throw PixelPoolError("the evaluation's temporary file ended early")
            }
            return [UInt64](unsafeUninitializedCapacity: count) { buffer, initialized in
                _ = data.copyBytes(to: buffer)
                initialized = count
            }
        } catch let error as PixelPoolError {
            throw error
        } catch {
            throw Self.failure("cannot read the evaluation's temporary file", error)
        }
    }
}

/// Reads one sorted run a block at a time (or walks one in memory).
struct RunCursor {
    private var buffer: [UInt64]
    private var position = 0
    private let file: SpillFile?
    private var offset: UInt64 = 0
    private var remaining = 0
    /// Keys read from the file at a time.
    private let block: Int

    init(keys: [UInt64]) {
        buffer = keys
        file = nil
        block = 0
    }

    init(file: SpillFile, run: (offset: UInt64, count: Int), block: Int) {
        buffer = []
        self.file = file
        offset = run.offset
        remaining = run.count
        self.block = block
    }

    /// The next key, or nil at the run's end.
    mutating func next() throws(PixelPoolError) -> UInt64? {
        if position == buffer.count {
            guard let file, remaining > 0 else { return nil }
            let n = min(block, remaining)
            buffer = try file.read(offset: offset, count: n)
            offset += UInt64(n * 8)
            remaining -= n
            position = 0
        }
        defer { position += 1 }
        return buffer[position]
    }
}

/// The ascending merge of sorted runs (a binary heap on each run's next key).
struct RunMerge {
    private var cursors: [RunCursor]
    private var heap: [(key: UInt64, run: Int)] = []

    init(_ cursors: [RunCursor]) throws(PixelPoolError) {
        self.cursors = cursors
        for i in self.cursors.indices {
            if let key = try self.cursors[i].next() { push((key, i)) }
        }
    }

    mutating func next() throws(PixelPoolError) -> UInt64? {
        guard let top = heap.first else { return nil }
        if let key = try cursors[top.run].next() {
            heap[0] = (key, top.run)
            siftDown(0)
        } else {
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                siftDown(0)
            }
        }
        return top.key
    }

    private mutating func push(_ entry: (key: UInt64, run: Int)) {
        heap.append(entry)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].key < heap[parent].key else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < heap.count && heap[l].key < heap[smallest].key { smallest = l }
            if r < heap.count && heap[r].key < heap[smallest].key { smallest = r }
            if smallest == i { return }
            heap.swapAt(i, smallest)
            i = smallest
        }
    }
}

extension DetectionMetrics {
    /// Maps a float to an unsigned integer with the same order (-0 and +0 equal).
    @inline(__always)
    static func orderedBits(_ value: Float) -> UInt32 {
        let bits = (value == 0 ? Float(0) : value).bitPattern
        return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
    }

    /// A pixel's sort key: the score's order-preserving bits, then the label (1 = anomaly).
    @inline(__always)
    static func key(_ score: Float, anomaly: Bool) -> UInt64 {
        UInt64(orderedBits(score)) << 1 | (anomaly ? 1 : 0)
    }

    /// Metrics of `scores` (higher = more anomalous) against `positive` (1 = anomaly, 0 = not).
    public static func compute(scores: [Float], positive: [UInt8]) -> DetectionMetrics {
        precondition(scores.count == positive.count)
        // Sort (score, label) pairs packed in one integer, highest first; ties keep together whatever their labels.
        var keys = [UInt64](repeating: 0, count: scores.count)
        for i in keys.indices { keys[i] = ~key(scores[i], anomaly: positive[i] & 1 == 1) }
        keys.sort()
        let totalPositives = positive.reduce(0) { $0 + Int($1 & 1) }
        var next = 0
        return walk(positives: totalPositives, negatives: positive.count - totalPositives) { () -> UInt64? in
            guard next < keys.count else { return nil }
            defer { next += 1 }
            return ~keys[next]
        }
    }

    /// The metrics from every pixel's key, handed over from the highest score to the lowest (`nextKey` nil at
    /// the end): pixels of one score form one threshold; AP sums precision over recall steps, FPR95 is the
    /// false-positive rate at the first threshold reaching 95 % recall, AUROC the trapezoids under the curve.
    static func walk<E: Error>(positives totalPositives: Int, negatives totalNegatives: Int,
                               nextKey: () throws(E) -> UInt64?) throws(E) -> DetectionMetrics {
        guard totalPositives > 0, totalNegatives > 0 else {
            return DetectionMetrics(ap: .nan, fpr95: .nan, auroc: .nan, positives: totalPositives, negatives: totalNegatives)
        }
        let P = Double(totalPositives), N = Double(totalNegatives)
        var tp = 0, fp = 0, lastTP = 0
        var lastTPR = 0.0, lastFPR = 0.0
        var ap = 0.0, auroc = 0.0
        var fpr95: Double?
        var pending = try nextKey()
        while let first = pending {
            let threshold = first >> 1
            // Every pixel at this score goes in together.
            while let key = pending, key >> 1 == threshold {
                if key & 1 == 1 { tp += 1 } else { fp += 1 }
                pending = try nextKey()
            }
            let tpr = Double(tp) / P, fpr = Double(fp) / N
            ap += Double(tp - lastTP) / P * (Double(tp) / Double(tp + fp))
            auroc += (fpr - lastFPR) * (tpr + lastTPR) / 2
            if fpr95 == nil && tpr >= 0.95 { fpr95 = fpr }
            lastTP = tp
            lastTPR = tpr
            lastFPR = fpr
        }
        return DetectionMetrics(ap: ap, fpr95: fpr95 ?? 1, auroc: auroc, positives: totalPositives, negatives: totalNegatives)
    }
}
