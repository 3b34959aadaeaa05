import Anomaly
import Models
import Tensors
import VideoIO

/// Seconds each stage spent on one frame.
public struct StageTimings: Sendable, Equatable {
    public var backbone = 0.0
    public var decoder = 0.0
    public var clustering = 0.0
    public var thresholding = 0.0
    public var annotate = 0.0

    public static let names = ["backbone", "decoder", "clustering", "thresholding", "annotate"]
    public init() {}
    public var values: [Double] { [backbone, decoder, clustering, thresholding, annotate] }
}

/// What travels with a frame through every stage: the frame, when it was decoded, and the stages' times.
public struct FrameTrace: Sendable {
    public var frame: VideoFrame
    /// When the frame was decoded; latency is counted from here.
    public var arrival: ContinuousClock.Instant
    public var timings = StageTimings()
    /// Clustering and the temporal threshold start afresh at this frame (a reconnect, or independent stills).
    public var startsAfresh: Bool

    init(frame: VideoFrame, independent: Bool) {
        self.frame = frame
        arrival = frame.decodedAt
        startsAfresh = independent || frame.gapBefore != nil
    }
}

/// The network's outputs of one frame, handed to the sink when `Monitor.Configuration.keepsTensors` is set:
/// evaluation computes the baselines from the logits and a cold K-Means from the features.
public struct KeptTensors: Sendable {
    /// Decoder logits (channels, H, W) at the network size.
    public var logits: Tensor
    /// Backbone features (C, h, w) that were clustered.
    public var features: Tensor
}

/// A frame the backbone has seen: its encoder maps, for the decoder.
public struct EncodedFrame: Sendable {
    public var trace: FrameTrace
    public var encoded: BackboneOutput
    public var networkSize: FrameSize
}

/// A frame the decoder has seen: the clustering features and the confidence grid.
public struct ScoredFrame: Sendable {
    public var trace: FrameTrace
    public var features: Tensor
    /// Mean max-logit of each feature-grid cell (`m_s`).
    public var cellConfidence: [Float]
    public var gridSize: FrameSize
    public var networkSize: FrameSize
    /// Argmax classes at the network size, when the overlay tints the segmentation.
    public var classes: [UInt8]?
    /// The drivable cells of the grid, for the change alarm.
    public var drivable: [Bool]?
    /// The network's outputs, when the configuration keeps them for the sink (evaluation).
    public var kept: KeptTensors?
}

/// A clustered frame: one K-Means result per cluster count.
public struct ClusteredFrame: Sendable {
    public var trace: FrameTrace
    public var clusterings: [KMeansResult]
    /// Each cell's novelty against the previous alarm tick (nil on a first tick and between ticks).
    public var novelty: [Float]?
    public var drivable: [Bool]?
    public var cellConfidence: [Float]
    public var gridSize: FrameSize
    public var networkSize: FrameSize
    public var classes: [UInt8]?
    public var kept: KeptTensors?
}

/// A decided frame: smoothed cluster decisions and tracked regions.
public struct DecidedFrame: Sendable {
    public var trace: FrameTrace
    public var analysis: GridAnalysis
    public var regions: [TemporalThreshold.TrackedRegion]
    /// The change rule's score of each grid cell at its latest decision (nil with the cluster rule).
    public var alarmScores: [Float]?
    public var networkSize: FrameSize
    public var classes: [UInt8]?
    public var kept: KeptTensors?
}

/// A frame through every stage, as sinks receive it: the decision, the mask at frame size, the annotated image.
public struct MonitoredFrame: Sendable {
    public var trace: FrameTrace
    /// The decision on the feature grid (its first clustering's K-Means result included).
    public var analysis: GridAnalysis
    public var regions: [TemporalThreshold.TrackedRegion]
    /// The change rule's score of each grid cell at its latest decision (nil with the cluster rule).
    public var alarmScores: [Float]?
    /// The anomaly mask at the frame's size, row-major.
    public var mask: [Bool]
    /// The frame with the overlay drawn (the frame itself when the overlay is off).
    public var annotated: RGBImage
    public var kept: KeptTensors?

    public var frame: VideoFrame { trace.frame }
    public var arrival: ContinuousClock.Instant { trace.arrival }
    public var timings: StageTimings { trace.timings }
    /// The first clustering's K-Means run.
    public var kmeans: KMeansResult { analysis.clusterings[0].kmeans }
    /// Whether any pixel is flagged.
    public var isAnomalous: Bool { mask.contains(true) }
    /// Fraction of the frame's pixels flagged.
    public var anomalyFraction: Double { Double(mask.lazy.filter { $0 }.count) / Double(max(1, mask.count)) }
}

extension ContinuousClock.Instant {
    /// Seconds from this instant to now.
    public var secondsSince: Double {
        let d = ContinuousClock.now - self
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}

/// Runs a stage's work on a frame, counted as a busy core (`ComputeThreads.occupy`: its loops take the cores the
/// other stages leave free), and returns its result with the seconds it took.
@inline(__always)
func stageWork<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let value = try ComputeThreads.occupy(body)
    return (value, start.secondsSince)
}
