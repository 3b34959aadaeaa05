import Anomaly

/// What one run did: the monitor fills in the frames, times and decisions; the job that fed it adds the
/// source's side (frames read and dropped, reconnects) and the files written. Written as `--summary-json`
/// and as batch's `NAME.summary.json`, with snake-case keys.
public struct RunSummary: Sendable, Codable, Equatable {
    public var input = ""
    public var outputs: [String] = []
    /// Frames decoded (processed + dropped).
    public var framesIn = 0
    /// Frames through every stage and handed to the sink.
    public var framesProcessed = 0
    /// Frames a live reader replaced by a newer one before the pipeline took them.
    public var framesDropped = 0
    public var reconnects = 0
    public var seconds = 0.0
    /// Mean seconds per frame of each stage, in `StageTimings.names` order.
    public var stageSeconds: [Double] = []
    /// Lloyd iterations of the first (cold) frame and the mean over warm-started frames.
    public var firstIterations = 0
    public var meanWarmIterations = 0.0
    public var reseeds = 0
    /// Frames with at least one flagged pixel.
    public var anomalyFrames = 0
    /// Distinct region tracks seen.
    public var regionTracks = 0
    public var interrupted = false
    /// Events started (with an event list; nil without one).
    public var events: Int?
    public var method: MethodSettings
    /// Decoded-to-sink latencies of the processed frames, a fixed-size histogram (not written; its percentiles are).
    public var latencies = LatencyHistogram()
    /// The process's peak resident memory when the run ended (set by `run`, whose process is the run alone).
    public var peakMemoryMB: Double?

    public init(method: MethodSettings) { self.method = method }

    public var frames: Int { framesProcessed }
    public var framesPerSecond: Double { seconds > 0 ? Double(framesProcessed) / seconds : 0 }

    /// The latency percentile `p` (0-100) in seconds, nearest rank, within the histogram's 0.1%.
    public func latency(percentile p: Double) -> Double { latencies.percentile(p) }

    private enum Keys: String, CodingKey {
        case peak_rss_mb
        case input, outputs, frames_in, frames_processed, frames_dropped, reconnects, seconds, fps, stage_ms, kmeans,
             anomaly_frames, regions, interrupted, method, latency_ms, events
    }

    private struct Latency: Codable { var p50, p99, max: Double }
    private struct KMeansFigures: Codable { var first_iterations: Int; var warm_iterations: Double; var reseeds: Int }

    private static func round(_ x: Double, _ digits: Double) -> Double { (x * digits).rounded() / digits }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(input, forKey: .input)
        try c.encode(outputs, forKey: .outputs)
        try c.encode(framesIn, forKey: .frames_in)
        try c.encode(framesProcessed, forKey: .frames_processed)
        try c.encode(framesDropped, forKey: .frames_dropped)
        try c.encode(reconnects, forKey: .reconnects)
        try c.encode(Self.round(seconds, 1000), forKey: .seconds)
        try c.encode(Self.round(framesPerSecond, 100), forKey: .fps)
        var stages: [String: Double] = [:]
        for (name, value) in zip(StageTimings.names, stageSeconds) { stages[name] = Self.round(value * 1000, 10) }
        try c.encode(stages, forKey: .stage_ms)
        try c.encode(KMeansFigures(first_iterations: firstIterations, warm_iterations: Self.round(meanWarmIterations, 100),
                                   reseeds: reseeds), forKey: .kmeans)
        try c.encode(anomalyFrames, forKey: .anomaly_frames)
        try c.encode(regionTracks, forKey: .regions)
        try c.encode(interrupted, forKey: .interrupted)
        try c.encodeIfPresent(events, forKey: .events)
        try c.encode(method, forKey: .method)
        try c.encodeIfPresent(peakMemoryMB.map { Self.round($0, 10) }, forKey: .peak_rss_mb)
        try c.encode(Latency(p50: Self.round(latency(percentile: 50) * 1000, 10), p99: Self.round(latency(percentile: 99) * 1000, 10),
                             max: Self.round(latency(percentile: 100) * 1000, 10)), forKey: .latency_ms)
    }

    /// Reads a written summary back (batch's report); latencies come back as their three percentiles.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        method = try c.decode(MethodSettings.self, forKey: .method)
        input = try c.decode(String.self, forKey: .input)
        outputs = try c.decode([String].self, forKey: .outputs)
        framesIn = try c.decode(Int.self, forKey: .frames_in)
        framesProcessed = try c.decode(Int.self, forKey: .frames_processed)
        framesDropped = try c.decode(Int.self, forKey: .frames_dropped)
        reconnects = try c.decode(Int.self, forKey: .reconnects)
        seconds = try c.decode(Double.self, forKey: .seconds)
        let stages = try c.decode([String: Double].self, forKey: .stage_ms)
        stageSeconds = StageTimings.names.map { (stages[$0] ?? 0) / 1000 }
        let kmeans = try c.decode(KMeansFigures.self, forKey: .kmeans)
        firstIterations = kmeans.first_iterations
        meanWarmIterations = kmeans.warm_iterations
        reseeds = kmeans.reseeds
        anomalyFrames = try c.decode(Int.self, forKey: .anomaly_frames)
        regionTracks = try c.decode(Int.self, forKey: .regions)
        interrupted = try c.decode(Bool.self, forKey: .interrupted)
        events = try c.decodeIfPresent(Int.self, forKey: .events)
        peakMemoryMB = try c.decodeIfPresent(Double.self, forKey: .peak_rss_mb)
        let latency = try c.decode(Latency.self, forKey: .latency_ms)
        latencies = LatencyHistogram([latency.p50, latency.p99, latency.max].map { $0 / 1000 })
    }
}
