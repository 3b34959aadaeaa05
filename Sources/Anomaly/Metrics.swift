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

/// Pooled pixels of many images for several scoring methods at once: the labels are kept once (1 byte
/// per kept pixel), each method's scores as Float32, ignored pixels dropped on the way in.
public final class PixelPool {
    public let methods: [String]
    private var positive: [UInt8] = []
    private var scores: [[Float]]

    public init(methods: [String]) {
        self.methods = methods
        scores = Array(repeating: [], count: methods.count)
    }

    /// Pixels kept so far.
    public var count: Int { positive.count }

    /// Makes room for `pixels` more at once (the clip's length is known up front): growing by appends would
    /// leave up to as much again unused.
    public func reserve(_ pixels: Int) {
        positive.reserveCapacity(positive.count + pixels)
        for m in scores.indices { scores[m].reserveCapacity(scores[m].count + pixels) }
    }

    /// Adds one image: its labels (0 = in-distribution, 2 = anomaly, anything else ignored) and one
    /// score map per method, in `methods` order, each the size of `labels`.
    public func add(labels: [UInt8], scores maps: [[Float]]) {
        precondition(maps.count == methods.count, "one score map per method")
        for map in maps { precondition(map.count == labels.count, "score map and labels differ in size") }
        var kept: [Int] = []
        kept.reserveCapacity(labels.count)
        for (i, label) in labels.enumerated() where label == GroundTruth.inDistribution || label == GroundTruth.anomaly {
            kept.append(i)
            positive.append(label == GroundTruth.anomaly ? 1 : 0)
        }
        for (m, map) in maps.enumerated() {
            map.withUnsafeBufferPointer { p in
                for i in kept { scores[m].append(p[i]) }
            }
        }
    }

    /// The metrics of every method.
    public func metrics() -> [String: DetectionMetrics] {
        var result: [String: DetectionMetrics] = [:]
        for (m, name) in methods.enumerated() {
            result[name] = DetectionMetrics.compute(scores: scores[m], positive: positive)
        }
        return result
    }
}

extension DetectionMetrics {
    /// Maps a float to an unsigned integer with the same order (-0 and +0 equal).
    @inline(__always)
    static func orderedBits(_ value: Float) -> UInt32 {
        let bits = (value == 0 ? Float(0) : value).bitPattern
        return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
    }

    /// Metrics of `scores` (higher = more anomalous) against `positive` (1 = anomaly, 0 = not).
    public static func compute(scores: [Float], positive: [UInt8]) -> DetectionMetrics {
        precondition(scores.count == positive.count)
        // Sort (score, label) pairs packed in one integer; ties keep together whatever their labels.
        var keys = [UInt64](repeating: 0, count: scores.count)
        scores.withUnsafeBufferPointer { s in
            positive.withUnsafeBufferPointer { p in
                keys.withUnsafeMutableBufferPointer { k in
                    for i in 0..<k.count { k[i] = UInt64(orderedBits(s[i])) << 1 | UInt64(p[i] & 1) }
                }
            }
        }
        keys.sort()
        let totalPositives = positive.reduce(0) { $0 + Int($1 & 1) }
        let totalNegatives = positive.count - totalPositives
        guard totalPositives > 0, totalNegatives > 0 else {
            return DetectionMetrics(ap: .nan, fpr95: .nan, auroc: .nan, positives: totalPositives, negatives: totalNegatives)
        }
        let P = Double(totalPositives), N = Double(totalNegatives)
        var tp = 0, fp = 0, lastTP = 0
        var lastTPR = 0.0, lastFPR = 0.0
        var ap = 0.0, auroc = 0.0
        var fpr95: Double?
        keys.withUnsafeBufferPointer { k in
            var i = k.count - 1
            while i >= 0 {
                let threshold = k[i] >> 1
                // Every pixel at this score goes in together.
                while i >= 0 && k[i] >> 1 == threshold {
                    if k[i] & 1 == 1 { tp += 1 } else { fp += 1 }
                    i -= 1
                }
                let tpr = Double(tp) / P, fpr = Double(fp) / N
                ap += Double(tp - lastTP) / P * (Double(tp) / Double(tp + fp))
                auroc += (fpr - lastFPR) * (tpr + lastTPR) / 2
                if fpr95 == nil && tpr >= 0.95 { fpr95 = fpr }
                lastTP = tp
                lastTPR = tpr
                lastFPR = fpr
            }
        }
        return DetectionMetrics(ap: ap, fpr95: fpr95 ?? 1, auroc: auroc, positives: totalPositives, negatives: totalNegatives)
    }
}
