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

/// Clusters a frame's features and thresholds the clusters by the decoder's confidence. Keeps one
/// warm-started K-Means per cluster count, so call it for consecutive frames of one stream.
public final class ClusterThreshold: @unchecked Sendable {
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

    /// Analyses one frame. `warm` false clusters from k-means++ regardless of the previous frame
    /// (still images); true carries centroids over.
    public func analyze(features: Tensor, cellConfidence: [Float], warm: Bool = true) -> GridAnalysis {
        let gw = features.width, gh = features.height
        precondition(cellConfidence.count == gw * gh, "confidence grid does not match the feature grid")
        let points = FeatureVectors.normalized(features)
        var clusterings: [Clustering] = []
        var gridScore = [Float](repeating: 0, count: gw * gh)
        for clusterer in clusterers {
            if !warm { clusterer.reset() }
            let result = clusterer.cluster(points)
            let k = clusterer.kmeans.clusters
            let confidence = Self.clusterConfidence(labels: result.labels, cells: cellConfidence, k: k, statistic: settings.statistic)
            let ood = confidence.map { $0 < settings.tau }
            for i in 0..<gridScore.count { gridScore[i] += Float(-confidence[Int(result.labels[i])]) }
            clusterings.append(Clustering(kmeans: result, confidence: confidence, outOfDistribution: ood))
        }
        if clusterers.count > 1 {
            let scale = 1 / Float(clusterers.count)
            for i in 0..<gridScore.count { gridScore[i] *= scale }
        }
        let primary = clusterings[0]
        let oodCells = primary.kmeans.labels.map { primary.outOfDistribution[Int($0)] }
        return GridAnalysis(gridWidth: gw, gridHeight: gh, cellConfidence: cellConfidence, clusterings: clusterings,
                            gridScore: gridScore, oodCells: oodCells)
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
