import Foundation
import Tensors

/// How a cluster's confidence is summarised from its cells.
public enum ClusterStatistic: String, Sendable, Codable { case mean, median }

/// The continuous score map variants of the cluster method (METHOD.md).
public enum ScoreVariant: String, Sendable, CaseIterable, Codable {
    /// −m(p) plus a large bonus inside OoD clusters.
    case d1
    /// −s_j of the pixel's cluster, nearest-upsampled from the grid.
    case d2n
    /// −s_j of the pixel's cluster, bilinearly upsampled from the grid (the default).
    case d2b
    /// −m(p) inside OoD clusters, the minimum score elsewhere.
    case d3
}

/// The method's settings, every parameter with its one default (the ones chosen on the development images).
public struct MethodSettings: Sendable, Equatable, Codable {
    /// One clustering per entry; their grid scores are averaged (k4k8-median uses [4, 8]).
    public var clusterCounts: [Int]
    public var statistic: ClusterStatistic
    public var score: ScoreVariant
    /// A cluster is OoD when its confidence is below tau.
    public var tau: Double
    public var seed: UInt64
    public var maxIterations: Int
    public var tolerance: Double
    /// Weight of the newest frame in each cluster's moving average of confidence (1 = no smoothing).
    public var smoothing: Double
    /// How far above tau a flagged cluster's smoothed confidence must rise before it clears.
    public var hysteresis: Double
    /// A warm start is dropped for k-means++ when its first assignment's inertia per point exceeds this
    /// multiple of the running mean.
    public var sceneCutFactor: Double
    /// Weight of the newest frame in that running mean.
    public var sceneCutSmoothing: Double
    /// Regions smaller than this many frame pixels are not reported.
    public var minimumRegionArea: Int
    /// The rule that raises the alarm; the rest of this block tunes the change rule (`ChangeAlarm`).
    public var alarm: AlarmRule
    /// A cell alarms when its change score exceeds this.
    public var alarmThreshold: Double
    /// Clusters of the novelty memory.
    public var noveltyClusters: Int
    /// Weight of the novelty term against the confidence drop in the change score.
    public var noveltyWeight: Double
    /// Weight of the newest frame in the per-cell running statistics (once 1/(frames + 1) falls below it).
    public var statisticsWeight: Double
    /// Frames after a (re)start during which the statistics form and nothing alarms.
    public var warmUpFrames: Int
    /// Floors of the standard deviations of confidence (max-logit units) and novelty.
    public var confidenceFloor: Double
    public var noveltyFloor: Double
    /// Alarm regions with fewer grid cells are dropped.
    public var minimumAlarmCells: Int
    /// Seconds of video between the change rule's steps (its statistics, novelty and persistence count these).
    public var alarmInterval: Double
    /// The memory rule (`RoadMemory`, `ObstacleTracker`): a cell starts a track at this novelty (its distance
    /// to the nearest remembered normal vector over the stream's typical distance) ...
    public var noveltyThreshold: Double
    /// ... and a track keeps the cells at least this novel that touch it.
    public var noveltyHold: Double
    /// Normal-road vectors the memory holds per stream.
    public var memoryCapacity: Int
    /// Seconds from a stream's start during which the memory only learns.
    public var memoryWarmUp: Double
    /// Seconds a track may go unseen before it ends.
    public var trackFade: Double
    /// Only cells less novel than this (on the scale of `noveltyThreshold`) may enter the memory.
    public var memoryInsertBelow: Double
    /// Seconds a cell waits before it enters the memory (dropped if something new turns up meanwhile).
    public var memoryCommitDelay: Double
    /// The memory also learns the scenery beside the road (every cell, not only the drivable area's).
    public var memoryEverywhere: Bool

    public init(clusterCounts: [Int] = [4], statistic: ClusterStatistic = .mean, score: ScoreVariant = .d2b,
                tau: Double = 6.063, seed: UInt64 = 0, maxIterations: Int = 100, tolerance: Double = 1e-4,
                smoothing: Double = 0.5, hysteresis: Double = 0.5, sceneCutFactor: Double = 2,
                sceneCutSmoothing: Double = 0.2, minimumRegionArea: Int = 256, alarm: AlarmRule = .change,
                alarmThreshold: Double = 4.25, noveltyClusters: Int = 8, noveltyWeight: Double = 0.5,
                statisticsWeight: Double = 0.02, warmUpFrames: Int = 20, confidenceFloor: Double = 0.5,
                noveltyFloor: Double = 0.02, minimumAlarmCells: Int = 2, alarmInterval: Double = 0.08,
                noveltyThreshold: Double = 3, noveltyHold: Double = 2, memoryCapacity: Int = 1024,
                memoryWarmUp: Double = 1, trackFade: Double = 1, memoryInsertBelow: Double = 1,
                memoryCommitDelay: Double = 2, memoryEverywhere: Bool = false) {
        precondition(!clusterCounts.isEmpty && clusterCounts.allSatisfy { $0 >= 1 })
        self.clusterCounts = clusterCounts
        self.statistic = statistic
        self.score = score
        self.tau = tau
        self.seed = seed
        self.maxIterations = maxIterations
        self.tolerance = tolerance
        self.smoothing = smoothing
        self.hysteresis = hysteresis
        self.sceneCutFactor = sceneCutFactor
        self.sceneCutSmoothing = sceneCutSmoothing
        self.minimumRegionArea = minimumRegionArea
        self.alarm = alarm
        self.alarmThreshold = alarmThreshold
        self.noveltyClusters = noveltyClusters
        self.noveltyWeight = noveltyWeight
        self.statisticsWeight = statisticsWeight
        self.warmUpFrames = warmUpFrames
        self.confidenceFloor = confidenceFloor
        self.noveltyFloor = noveltyFloor
        self.minimumAlarmCells = minimumAlarmCells
        self.alarmInterval = alarmInterval
        self.noveltyThreshold = noveltyThreshold
        self.noveltyHold = noveltyHold
        self.memoryCapacity = memoryCapacity
        self.memoryWarmUp = memoryWarmUp
        self.trackFade = trackFade
        self.memoryInsertBelow = memoryInsertBelow
        self.memoryCommitDelay = memoryCommitDelay
        self.memoryEverywhere = memoryEverywhere
    }

    public static let `default` = MethodSettings()

    /// Snake-case keys, as every roadwatch JSON file writes them.
    private enum CodingKeys: String, CodingKey {
        case clusterCounts = "cluster_counts", statistic, score, tau, seed, maxIterations = "max_iterations", tolerance,
             smoothing, hysteresis, sceneCutFactor = "scene_cut_factor", sceneCutSmoothing = "scene_cut_smoothing",
             minimumRegionArea = "minimum_region_area", alarm, alarmThreshold = "alarm_threshold",
             noveltyClusters = "novelty_clusters", noveltyWeight = "novelty_weight", statisticsWeight = "statistics_weight",
             warmUpFrames = "warm_up_frames", confidenceFloor = "confidence_floor", noveltyFloor = "novelty_floor",
             minimumAlarmCells = "minimum_alarm_cells", alarmInterval = "alarm_interval",
             noveltyThreshold = "novelty_threshold", noveltyHold = "novelty_hold", memoryCapacity = "memory_capacity",
             memoryWarmUp = "memory_warm_up", trackFade = "track_fade", memoryInsertBelow = "memory_insert_below",
             memoryCommitDelay = "memory_commit_delay", memoryEverywhere = "memory_everywhere"
    }

    /// Names accepted by `--variant`.
    public static let variantNames = ScoreVariant.allCases.map(\.rawValue) + ["k4k8-median"]

    /// The settings of a named variant, keeping everything else from `base`; K from `base` except for k4k8.
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

    /// The name `variant(_:)` gives these settings back from.
    public var variantName: String {
        clusterCounts == [4, 8] && statistic == .median && score == .d2b ? "k4k8-median" : score.rawValue
    }

    /// Every setting's JSON key (as run summaries write them), sorted.
    public static let keys: [String] = {
        let object = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(MethodSettings.default))) as? [String: Any]
        return (object ?? [:]).keys.sorted()
    }()

    /// `base` with settings named by their JSON keys changed: each override is `key=value`, the value as JSON
    /// (a number, true/false, a string with or without quotes, a list in brackets).
    public static func overriding(_ base: MethodSettings, with overrides: [String]) throws(SettingsError) -> MethodSettings {
        guard !overrides.isEmpty else { return base }
        do {
            var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(base)) as? [String: Any] ?? [:]
            for item in overrides {
                guard let equals = item.firstIndex(of: "=") else {
                    throw SettingsError(description: "setting '\(item)' must be key=value")
                }
                let key = String(item[..<equals]), text = String(item[item.index(after: equals)...])
                guard object[key] != nil else {
                    throw SettingsError(description: "unknown setting '\(key)' (known: \(object.keys.sorted().joined(separator: ", ")))")
                }
                if let spec = table.first(where: { $0.key == key }), spec.type == "word",
                   !spec.accepts.components(separatedBy: ", ").contains(text) {
                    throw SettingsError(description: "\(key) must be one of \(spec.accepts), got '\(text)'")
                }
                let value = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)) ?? text
                if let spec = table.first(where: { $0.key == key }) {
                    let trimmed = text.trimmingCharacters(in: .whitespaces)
                    let isNumber = Double(trimmed) != nil
                    let isBool = trimmed == "true" || trimmed == "false"
                    if spec.type == "number" || spec.type == "integer", !isNumber {
                        throw SettingsError(description: "\(key) must be a number (\(spec.accepts)), got '\(text)'")
                    }
                    if spec.type == "integer", let n = Double(trimmed), n != n.rounded() {
                        throw SettingsError(description: "\(key) must be a whole number (\(spec.accepts)), got '\(text)'")
                    }
                    if spec.type == "boolean", !isBool {
                        throw SettingsError(description: "\(key) must be true or false, got '\(text)'")
                    }
                }
                object[key] = value
            }
            let settings = try JSONDecoder().decode(MethodSettings.self, from: JSONSerialization.data(withJSONObject: object))
            try settings.validate()
            return settings
        } catch let error as SettingsError {
            throw error
        } catch {
            throw SettingsError(description: "a setting has the wrong type: \(error)")
        }
    }

    /// The road memory's settings.
    public var roadMemory: RoadMemory.Settings {
        RoadMemory.Settings(capacity: memoryCapacity, warmUp: memoryWarmUp, commitDelay: memoryCommitDelay,
                            insertBelow: memoryInsertBelow, holdAbove: noveltyHold, seed: seed, learnsEverywhere: memoryEverywhere)
    }

    /// The obstacle tracker's settings.
    public var obstacleTracker: ObstacleTracker.Settings {
        ObstacleTracker.Settings(threshold: noveltyThreshold, hold: noveltyHold, minimumCells: minimumAlarmCells, fade: trackFade)
    }

    /// Checks every value against its range in `MethodSettings.table`, then the settings that bound each other;
    /// the message names the key.
    public func validate() throws(SettingsError) {
        for spec in Self.table where !spec.isValid(self) {
            throw SettingsError(description: "\(spec.key) must be \(spec.accepts), got \(spec.value(in: self))")
        }
        guard noveltyHold <= noveltyThreshold else {
            throw SettingsError(description: "novelty_hold must be at most novelty_threshold (\(SettingSpec.format(noveltyThreshold))), got \(SettingSpec.format(noveltyHold))")
        }
        guard memoryInsertBelow <= noveltyHold else {
            throw SettingsError(description: "memory_insert_below must be at most novelty_hold (\(SettingSpec.format(noveltyHold))), got \(SettingSpec.format(memoryInsertBelow))")
        }
    }
}

/// A method setting out of range.
public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String
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

/// K-Means on a frame's feature vectors, one warm-started clusterer per cluster count: the clustering
/// stage's state.
public struct FrameClusterer: Sendable {
    public let settings: MethodSettings
    private var clusterers: [WarmStartKMeans]

    public init(settings: MethodSettings = .default) {
        self.settings = settings
        clusterers = settings.clusterCounts.map {
            WarmStartKMeans(kmeans: KMeans(clusters: $0, maxIterations: settings.maxIterations,
                                           tolerance: settings.tolerance, seed: settings.seed),
                            sceneCutFactor: settings.sceneCutFactor, smoothing: settings.sceneCutSmoothing)
        }
    }

    /// Forgets the previous frame's centroids.
    public mutating func reset() {
        for i in clusterers.indices { clusterers[i].reset() }
    }

    /// Clusters one frame's (C, h, w) features. `warm` false seeds afresh regardless of the previous frame.
    public mutating func cluster(_ features: Tensor, warm: Bool = true) -> [KMeansResult] {
        cluster(points: FeatureVectors.normalized(features), warm: warm)
    }

    /// Clusters feature vectors already normalised (`FeatureVectors.normalized`).
    public mutating func cluster(points: PointSet, warm: Bool = true) -> [KMeansResult] {
        if !warm { reset() }
        return clusterers.indices.map { clusterers[$0].cluster(points) }
    }
}

/// Turns clusterings and the confidence grid into the frame's decision: cluster confidences, OoD flags,
/// the grid score. Stateless; `TemporalThreshold` adds smoothing over time.
public enum ClusterDecision {
    /// s_j of every cluster of every clustering.
    public static func confidences(_ clusterings: [KMeansResult], cellConfidence: [Float],
                                   settings: MethodSettings) -> [[Double]] {
        clusterings.enumerated().map { index, result in
            ClusterThreshold.clusterConfidence(labels: result.labels, cells: cellConfidence,
                                               k: settings.clusterCounts[index], statistic: settings.statistic)
        }
    }

    /// The decision on the raw confidences of this frame alone.
    public static func decide(_ clusterings: [KMeansResult], cellConfidence: [Float], gridWidth gw: Int, gridHeight gh: Int,
                              settings: MethodSettings) -> GridAnalysis {
        let confidence = confidences(clusterings, cellConfidence: cellConfidence, settings: settings)
        return decide(clusterings, confidence: confidence, primaryOOD: confidence[0].map { $0 < settings.tau },
                      cellConfidence: cellConfidence, gridWidth: gw, gridHeight: gh, settings: settings)
    }

    /// The decision from given confidences (one array per clustering) and the first clustering's flags.
    public static func decide(_ clusterings: [KMeansResult], confidence: [[Double]], primaryOOD: [Bool],
                              cellConfidence: [Float], gridWidth gw: Int, gridHeight gh: Int,
                              settings: MethodSettings) -> GridAnalysis {
        precondition(cellConfidence.count == gw * gh && !clusterings.isEmpty && confidence.count == clusterings.count)
        var summaries: [Clustering] = []
        var gridScore = [Float](repeating: 0, count: gw * gh)
        for (index, result) in clusterings.enumerated() {
            let values = confidence[index]
            let ood = index == 0 ? primaryOOD : values.map { $0 < settings.tau }
            for i in 0..<gridScore.count {
                let s = values[Int(result.labels[i])]
                gridScore[i] += Float(s.isFinite ? -s : -Double(settings.tau) - 100)
            }
            summaries.append(Clustering(kmeans: result, confidence: values, outOfDistribution: ood))
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

/// s_j and its statistics.
public enum ClusterThreshold {
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
