import Foundation
import Pipeline

/// One line of the events file per frame (schema version 1, documented in the README's "The monitor").
public struct FrameEvent: Codable, Sendable, Equatable {
    /// The events schema; a reader should check it before reading on.
    public static let schemaVersion = 1

    public struct KMeansInfo: Codable, Sendable, Equatable {
        public var iterations: Int
        public var warm: Bool
        public var reseeded: Bool
        public var inertia: Double
    }

    public struct Region: Codable, Sendable, Equatable {
        public var id: Int
        public var box: [Int]
        public var area: Int
        public var score: Double
    }

    public struct Cluster: Codable, Sendable, Equatable {
        public var confidence: Double
        public var ood: Bool
        public var cells: Int
    }

    public var version = FrameEvent.schemaVersion
    public var event = "frame"
    public var frame: Int
    public var t: Double
    public var anomaly_fraction: Double
    public var kmeans: KMeansInfo
    public var regions: [Region]
    /// The first clustering's clusters: smoothed confidence, decision, size in grid cells.
    public var clusters: [Cluster]
    /// Decoded to written, in milliseconds (a timing field: differs from run to run).
    public var latency_ms: Double?
    /// Frames a live reader skipped up to this one.
    public var dropped: Int

    public init(_ done: MonitoredFrame) {
        dropped = done.frame.droppedBefore
        frame = done.frame.index
        t = (done.frame.time * 1e6).rounded() / 1e6
        anomaly_fraction = done.anomalyFraction
        let k = done.kmeans
        kmeans = KMeansInfo(iterations: k.iterations, warm: k.warm, reseeded: k.reseeded, inertia: k.inertia)
        let primary = done.analysis.clusterings[0]
        var sizes = [Int](repeating: 0, count: primary.confidence.count)
        for label in primary.kmeans.labels { sizes[Int(label)] += 1 }
        clusters = primary.confidence.indices.map {
            Cluster(confidence: primary.confidence[$0].isFinite ? (primary.confidence[$0] * 1000).rounded() / 1000 : 0,
                    ood: primary.outOfDistribution[$0], cells: sizes[$0])
        }
        regions = done.regions.map {
            Region(id: $0.id, box: $0.region.box, area: $0.region.area, score: (-$0.region.score * 1000).rounded() / 1000)
        }
        latency_ms = (done.arrival.secondsSince * 1e4).rounded() / 10
    }
}

/// The line written where the source came back after a break.
public struct ReconnectEvent: Codable, Sendable, Equatable {
    public var version = FrameEvent.schemaVersion
    public var event = "reconnect"
    public var frame: Int
    public var gap_s: Double

    public init(frame: Int, gap: Double) {
        self.frame = frame
        gap_s = (gap * 1000).rounded() / 1000
    }
}

/// Appends JSON lines to a file, one whole line per `write(2)`: nothing is buffered in the process, so a
/// kill at any moment leaves every line before it whole. An actor: the sink and a stop may both reach it.
public actor EventLog {
    private let file: AppendFile
    public nonisolated let path: String
    private let encoder: JSONEncoder

    public init(path: String, appending: Bool = false) throws(JobError) {
        self.path = path
        file = try AppendFile(path: path, what: "events file", appending: appending)
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    public func append<Line: Encodable>(_ line: Line) throws(JobError) {
        let data: Data
        do {
            data = try encoder.encode(line)
        } catch {
            throw JobError("cannot encode an event for '\(path)': \(error)")
        }
        try file.write(data + Data("\n".utf8))
    }

    public func close() throws(JobError) {
        try file.sync()
    }
}
