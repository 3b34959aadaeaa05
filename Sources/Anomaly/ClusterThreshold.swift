import Tensors

/// How a cluster's confidence is summarised from its cells.
public enum ClusterStatistic: String, Sendable { case mean, median }

/// The continuous score map variants of the cluster method (METHOD.md).
public enum ScoreVariant: String, Sendable, CaseIterable {
    /// −m(p) plus a large bonus inside OoD clusters.
    case d1
    /// −s_j of the pixel's cluster, nearest-upsampled from the grid.
    case d2n
    /// −s_j of the pixel's cluster, bilinearly upsampled from the grid (the default).
    case d2b
    /// −m(p) inside OoD clusters, the minimum score elsewhere.
    case d3
}

/// The method's settings; `default` is the one chosen on the development images.
public struct MethodSettings: Sendable, Equatable {
    /// One clustering per entry; their grid scores are averaged (k4k8-median uses [4, 8]).
    public var clusterCounts: [Int]
    public var statistic: ClusterStatistic
    public var score: ScoreVariant
    /// A cluster is OoD when its confidence is below tau.
    public var tau: Double
    public var seed: UInt64
    public var maxIterations: Int
    public var tolerance: Double

    public init(clusterCounts: [Int] = [4], statistic: ClusterStatistic = .mean, score: ScoreVariant = .d2b,
                tau: Double = 6.063, seed: UInt64 = 0, maxIterations: Int = 100, tolerance: Double = 1e-4) {
        precondition(!clusterCounts.isEmpty && clusterCounts.allSatisfy { $0 >= 1 })
        self.clusterCounts = clusterCounts
        self.statistic = statistic
        self.score = score
        self.tau = tau
        self.seed = seed
        self.maxIterations = maxIterations
        self.tolerance = tolerance
    }

    public static let `default` = MethodSettings()

    /// Names accepted by `--variant`.
    public static let variantNames = ScoreVariant.allCases.map(\.rawValue) + ["k4k8-median"]

    /// The settings of a named variant, keeping `tau` and `seed` from `base`; K from `base` except for k4k8.
    public static func variant(_ name: String, base: MethodSettings = .default) -> MethodSettings? {
        var settings = base
        if name == "k4k8-median" {
            settings.clusterCounts = [4, 8]
            settings.statistic = .median
            settings.score = .d2b
            return settings
        }
        guard let score = ScoreVariant(rawValue: name) else { return nil }
        settings.score = score
        return settings
    }
}

/// One clustering of one frame, summarised.
public struct Clustering: Sendable {
    public var kmeans: KMeansResult
    /// Confidence s_j of each cluster.
    public var confidence: [Double]
    /// Whether each cluster is out of distribution (confidence below tau).
    public var outOfDistribution: [Bool]
}

/// The method's result for one frame on the feature grid.
public struct GridAnalysis: Sendable {
    public var gridWidth: Int
    public var gridHeight: Int
    /// Mean max-logit of each grid cell (`m_s`).
    public var cellConfidence: [Float]
    public var clusterings: [Clustering]
    /// −s_j of each cell's cluster, averaged over the clusterings: higher = more anomalous.
    public var gridScore: [Float]
    /// Cells in an OoD cluster of the first clustering.
    public var oodCells: [Bool]

    /// Fraction of grid cells flagged.
    public var anomalyFraction: Double { Double(oodCells.filter { $0 }.count) / Double(max(1, oodCells.count)) }
}

/// K-Means on a frame's feature vectors, one warm-started clusterer per cluster count: the clustering stage.
public final class FrameClusterer: @unchecked Sendable {
    public let settings: MethodSettings
    private let clusterers: [WarmStartKMeans]

    public init(settings: MethodSettings = .default) {
        self.settings = settings
        clusterers = settings.clusterCounts.map {
            WarmStartKMeans(kmeans: KMeans(clusters: $0, maxIterations: settings.maxIterations,
                                           tolerance: settings.tolerance, seed: settings.seed))
        }
    }

    /// Forgets the previous frame's centroids.
    public func reset() { clusterers.forEach { $0.reset() } }

    /// Clusters one frame's (C, h, w) features. `warm` false seeds afresh regardless of the previous frame.
    public func cluster(_ features: Tensor, warm: Bool = true) -> [KMeansResult] {
        let points = FeatureVectors.normalized(features)
        return clusterers.map { clusterer in
            if !warm { clusterer.reset() }
            return clusterer.cluster(points)
        }
    }
}

/// Turns clusterings and the confidence grid into the frame's decision: cluster confidences, OoD flags,
/// the grid score. Stateless; `TemporalThreshold` adds smoothing over time.
public enum ClusterDecision {
    public static func decide(_ clusterings: [KMeansResult], cellConfidence: [Float], gridWidth gw: Int, gridHeight gh: Int,
                              settings: MethodSettings, confidenceOverride: [Double]? = nil,
                              oodOverride: [Bool]? = nil) -> GridAnalysis {
        precondition(cellConfidence.count == gw * gh && !clusterings.isEmpty)
        var summaries: [Clustering] = []
        var gridScore = [Float](repeating: 0, count: gw * gh)
        for (index, result) in clusterings.enumerated() {
            let k = settings.clusterCounts[index]
            var confidence = ClusterThreshold.clusterConfidence(labels: result.labels, cells: cellConfidence, k: k, statistic: settings.statistic)
            if index == 0, let confidenceOverride, confidenceOverride.count == k { confidence = confidenceOverride }
            var ood = confidence.map { $0 < settings.tau }
            if index == 0, let oodOverride, oodOverride.count == k { ood = oodOverride }
            for i in 0..<gridScore.count {
                let s = confidence[Int(result.labels[i])]
                gridScore[i] += Float(s.isFinite ? -s : -Double(settings.tau) - 100)
            }
            summaries.append(Clustering(kmeans: result, confidence: confidence, outOfDistribution: ood))
        }
        if clusterings.count > 1 {
            let scale = 1 / Float(clusterings.count)
            for i in 0..<gridScore.count { gridScore[i] *= scale }
        }
        let primary = summaries[0]
        let oodCells = primary.kmeans.labels.map { primary.outOfDistribution[Int($0)] }
        return GridAnalysis(gridWidth: gw, gridHeight: gh, cellConfidence: cellConfidence, clusterings: summaries,
                            gridScore: gridScore, oodCells: oodCells)
    }
}

/// Clustering and thresholding in one call, for still images and evaluation.
public final class ClusterThreshold: @unchecked Sendable {
    public let settings: MethodSettings
    private let clusterer: FrameClusterer

    public init(settings: MethodSettings = .default) {
        self.settings = settings
        clusterer = FrameClusterer(settings: settings)
    }

    public func reset() { clusterer.reset() }

    public func analyze(features: Tensor, cellConfidence: [Float], warm: Bool = true) -> GridAnalysis {
        let clusterings = clusterer.cluster(features, warm: warm)
        return ClusterDecision.decide(clusterings, cellConfidence: cellConfidence, gridWidth: features.width,
                                      gridHeight: features.height, settings: settings)
    }

    /// s_j: the mean (or median) of the cell confidences of each cluster; an empty cluster gets +infinity
    /// (never OoD).
    public static func clusterConfidence(labels: [Int32], cells: [Float], k: Int, statistic: ClusterStatistic) -> [Double] {
        var members = [[Float]](repeating: [], count: k)
        for (i, label) in labels.enumerated() { members[Int(label)].append(cells[i]) }
        return members.map { values in
            guard !values.isEmpty else { return .infinity }
            switch statistic {
            case .mean:
                return values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
            case .median:
                let sorted = values.sorted()
                let mid = sorted.count / 2
                return sorted.count % 2 == 1 ? Double(sorted[mid]) : (Double(sorted[mid - 1]) + Double(sorted[mid])) / 2
            }
        }
    }
}
