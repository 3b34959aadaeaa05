import Anomaly
import Models
import Tensors
import VideoIO

/// Seconds each stage spent on one frame.
public struct StageTimings: Sendable {
    public var backbone = 0.0
    public var decoder = 0.0
    public var clustering = 0.0
    public var thresholding = 0.0
    public var annotate = 0.0

    public static let names = ["backbone", "decoder", "clustering", "thresholding", "annotate"]
    public var values: [Double] { [backbone, decoder, clustering, thresholding, annotate] }
}

/// One frame on its way through the stages. Each stage fills in its part and drops what later stages do
/// not need; the value moves from stage to stage, owned by one stage at a time.
public struct FrameWork: @unchecked Sendable {
    public var frame: VideoFrame
    /// When the frame was decoded; latency is counted from here.
    public var arrival: ContinuousClock.Instant
    var encoded: BackboneOutput?
    var cellConfidence: [Float] = []
    var gridSize = (width: 0, height: 0)
    /// Argmax classes at the network size, when the overlay tints the segmentation.
    var classes: [UInt8]?
    var networkSize = (width: 0, height: 0)
    public var clusterings: [KMeansResult] = []
    public var analysis: GridAnalysis?
    public var regions: [TemporalThreshold.TrackedRegion] = []
    /// The anomaly mask at the frame's size.
    public var mask: [Bool]?
    /// The annotated frame, once drawn.
    public var annotated: RGBImage?
    public var timings = StageTimings()

    init(frame: VideoFrame) {
        self.frame = frame
        arrival = frame.decodedAt
    }
}

extension ContinuousClock.Instant {
    /// Seconds from this instant to now.
    public var secondsSince: Double {
        let d = ContinuousClock.now - self
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}

/// Runs `body` and returns its result with the seconds it took.
@inline(__always)
func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let result = try body()
    return (result, start.secondsSince)
}
