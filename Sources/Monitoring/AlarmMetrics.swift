import Anomaly

/// How the binary decision behaves per frame, on exactly the mask `run` writes, against per-frame ground
/// truth at frame size (0 = in distribution, 2 = anomaly, anything else void).
///
/// - hit: a frame with an object where a flagged pixel touches the object grown by `touchMargin` pixels;
/// - clean alarm: a frame without an object with any flagged pixel;
/// - stray alarm: a frame with an object that has a flagged connected region (4-connected) touching no object;
/// - first hit: frames from the object's first appearance to the first hit;
/// - pixel precision, recall and F1 of the mask, pooled over all frames (void pixels left out).
public struct AlarmMetrics: Sendable, Equatable, Codable {
    /// The object is grown by this many pixels (a square neighbourhood) before "touching" is decided.
    public static let touchMargin = 8

    public var frames = 0
    public var objectFrames = 0
    public var cleanFrames = 0
    public var hits = 0
    public var cleanAlarms = 0
    public var strayAlarms = 0
    /// Frame index of the object's first appearance and of the first hit.
    public var firstObjectFrame: Int?
    public var firstHitFrame: Int?
    public var truePositives = 0
    public var falsePositives = 0
    public var falseNegatives = 0

    public init() {}

    public var hitRate: Double { objectFrames > 0 ? Double(hits) / Double(objectFrames) : .nan }
    public var cleanAlarmRate: Double { cleanFrames > 0 ? Double(cleanAlarms) / Double(cleanFrames) : .nan }
    public var strayAlarmRate: Double { objectFrames > 0 ? Double(strayAlarms) / Double(objectFrames) : .nan }
    /// Frames from the first appearance to the first hit; nil when the object never got hit.
    public var firstHitDelay: Int? { firstHitFrame.flatMap { hit in firstObjectFrame.map { hit - $0 } } }
    public var precision: Double {
        truePositives + falsePositives > 0 ? Double(truePositives) / Double(truePositives + falsePositives) : .nan
    }
    public var recall: Double {
        truePositives + falseNegatives > 0 ? Double(truePositives) / Double(truePositives + falseNegatives) : .nan
    }
    public var f1: Double {
        let p = precision, r = recall
        return p + r > 0 ? 2 * p * r / (p + r) : (p.isNaN || r.isNaN ? .nan : 0)
    }

    /// Adds one frame: its flagged mask and its labels (nil: a clean frame), both `width` x `height`.
    public mutating func add(frame index: Int, flagged: [Bool], labels: [UInt8]?, width: Int, height: Int) {
        precondition(flagged.count == width * height && (labels == nil || labels!.count == flagged.count))
        frames += 1
        let object = labels.map { $0.map { $0 == GroundTruth.anomaly } } ?? []
        let hasObject = object.contains(true)
        if let labels {
            for i in 0..<labels.count where labels[i] == GroundTruth.anomaly || labels[i] == GroundTruth.inDistribution {
                switch (flagged[i], labels[i] == GroundTruth.anomaly) {
                case (true, true): truePositives += 1
                case (true, false): falsePositives += 1
                case (false, true): falseNegatives += 1
                case (false, false): break
                }
            }
        } else {
            falsePositives += flagged.lazy.filter { $0 }.count
        }
        guard hasObject else {
            cleanFrames += 1
            if flagged.contains(true) { cleanAlarms += 1 }
            return
        }
        objectFrames += 1
        if firstObjectFrame == nil { firstObjectFrame = index }
        let near = BinaryMask.grow(object, width: width, height: height, by: Self.touchMargin)
        var hit = false, stray = false
        for region in BinaryMask.components(flagged, width: width, height: height) {
            if region.contains(where: { near[$0] }) { hit = true } else { stray = true }
        }
        if hit {
            hits += 1
            if firstHitFrame == nil { firstHitFrame = index }
        }
        if stray { strayAlarms += 1 }
    }

    /// The union of two tallies (clips pooled).
    public mutating func merge(_ other: AlarmMetrics) {
        frames += other.frames
        objectFrames += other.objectFrames
        cleanFrames += other.cleanFrames
        hits += other.hits
        cleanAlarms += other.cleanAlarms
        strayAlarms += other.strayAlarms
        truePositives += other.truePositives
        falsePositives += other.falsePositives
        falseNegatives += other.falseNegatives
        firstObjectFrame = nil
        firstHitFrame = nil
    }
}
