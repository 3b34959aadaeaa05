import Foundation

/// One method setting, declared once: its key (the JSON key, the YAML key, `--set KEY=`), what it holds, its
/// unit, the values it accepts and one line of help. `MethodSettings.validate()` checks every range from here,
/// and `roadwatch config reference` prints this table.
public struct SettingSpec: Sendable {
    public let key: String
    public let type: String
    public let unit: String
    /// The accepted values in words, as the error message and the reference say them.
    public let accepts: String
    public let help: String
    /// The value a settings value has, as the reference prints it.
    let render: @Sendable (MethodSettings) -> String
    let isValid: @Sendable (MethodSettings) -> Bool

    /// A real number accepted when `valid` holds.
    static func number(_ key: String, _ path: KeyPath<MethodSettings, Double> & Sendable, unit: String = "", accepts: String,
                       _ help: String, valid: @escaping @Sendable (Double) -> Bool) -> SettingSpec {
        SettingSpec(key: key, type: "number", unit: unit, accepts: accepts, help: help,
                    render: { Self.format($0[keyPath: path]) }, isValid: { s in s[keyPath: path].isFinite && valid(s[keyPath: path]) })
    }

    /// An integer within `range`.
    static func integer(_ key: String, _ path: KeyPath<MethodSettings, Int> & Sendable, unit: String = "", _ range: ClosedRange<Int>,
                        _ help: String) -> SettingSpec {
        SettingSpec(key: key, type: "integer", unit: unit, accepts: range.upperBound == .max ? "≥ \(range.lowerBound)" : "\(range.lowerBound)…\(range.upperBound)",
                    help: help, render: { "\($0[keyPath: path])" }, isValid: { range.contains($0[keyPath: path]) })
    }

    /// One of a closed set of words.
    static func choice<T: RawRepresentable & Sendable>(_ key: String, _ path: KeyPath<MethodSettings, T> & Sendable, _ cases: [String],
                                                        _ help: String) -> SettingSpec where T.RawValue == String {
        SettingSpec(key: key, type: "word", unit: "", accepts: cases.joined(separator: ", "), help: help,
                    render: { $0[keyPath: path].rawValue }, isValid: { _ in true })
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e9 ? String(Int(value)) : String(value)
    }

    /// The current value, as the reference prints it.
    public func value(in settings: MethodSettings) -> String { render(settings) }
}

extension MethodSettings {
    /// Every method and alarm setting, in the order the reference lists them.
    public static let table: [SettingSpec] = [
        SettingSpec(key: "cluster_counts", type: "list of integers", unit: "clusters", accepts: "one or more of 1…64",
                    help: "K-Means clusterings per frame, one per entry; their grid scores are averaged (k4k8-median: [4, 8]).",
                    render: { "[" + $0.clusterCounts.map(String.init).joined(separator: ", ") + "]" },
                    isValid: { !$0.clusterCounts.isEmpty && $0.clusterCounts.allSatisfy { (1...64).contains($0) } }),
        .choice("statistic", \.statistic, ["mean", "median"], "How a cluster's confidence is summarised from its cells."),
        .choice("score", \.score, ScoreVariant.allCases.map(\.rawValue), "The continuous score map (method.md)."),
        .number("tau", \.tau, unit: "max-logit", accepts: "any number", "A cluster is out of distribution when its confidence is below this.",
                valid: { _ in true }),
        SettingSpec(key: "seed", type: "integer", unit: "", accepts: "≥ 0", help: "k-means++ seed.",
                    render: { "\($0.seed)" }, isValid: { _ in true }),
        .integer("max_iterations", \.maxIterations, 1...Int.max, "Lloyd iterations at most per clustering."),
        .number("tolerance", \.tolerance, accepts: "≥ 0", "K-Means stops when the centroids' shift² is below this times the features' variance.",
                valid: { $0 >= 0 }),
        .number("smoothing", \.smoothing, accepts: "(0, 1]", "Weight of the newest frame in each cluster's moving average of confidence (1: none).",
                valid: { $0 > 0 && $0 <= 1 }),
        .number("hysteresis", \.hysteresis, unit: "max-logit", accepts: "≥ 0", "A flagged cluster clears only once its smoothed confidence is above tau plus this.",
                valid: { $0 >= 0 }),
        .number("scene_cut_factor", \.sceneCutFactor, accepts: "≥ 1", "K-Means starts afresh when a frame's first warm assignment costs more than this multiple of the running mean.",
                valid: { $0 >= 1 }),
        .number("scene_cut_smoothing", \.sceneCutSmoothing, accepts: "(0, 1]", "Weight of the newest frame in that running mean.",
                valid: { $0 > 0 && $0 <= 1 }),
        .integer("minimum_region_area", \.minimumRegionArea, unit: "frame pixels", 0...Int.max, "Regions smaller than this are not reported."),
        .choice("alarm", \.alarm, AlarmRule.allCases.map(\.rawValue), "The rule that raises the alarm (method.md): memory, change or clusters."),
        .number("alarm_threshold", \.alarmThreshold, accepts: "any number", "change rule: a cell alarms when its change score exceeds this.",
                valid: { _ in true }),
        .integer("novelty_clusters", \.noveltyClusters, 1...64, "change rule: clusters of its novelty memory."),
        .number("novelty_weight", \.noveltyWeight, accepts: "any number", "change rule: weight of novelty against the confidence drop.",
                valid: { _ in true }),
        .number("statistics_weight", \.statisticsWeight, accepts: "(0, 1]", "change rule: weight of the newest frame in the per-cell statistics.",
                valid: { $0 > 0 && $0 <= 1 }),
        .integer("warm_up_frames", \.warmUpFrames, unit: "frames", 0...Int.max, "change rule: frames after a (re)start during which nothing alarms."),
        .number("confidence_floor", \.confidenceFloor, unit: "max-logit", accepts: "> 0", "change rule: floor of the standard deviation of confidence.",
                valid: { $0 > 0 }),
        .number("novelty_floor", \.noveltyFloor, accepts: "> 0", "change rule: floor of the standard deviation of novelty.", valid: { $0 > 0 }),
        .integer("minimum_alarm_cells", \.minimumAlarmCells, unit: "grid cells", 1...Int.max, "Alarm regions with fewer cells are dropped."),
        .number("alarm_interval", \.alarmInterval, unit: "seconds", accepts: "≥ 0", "Video time between the alarm rules' steps.", valid: { $0 >= 0 }),
        .number("novelty_threshold", \.noveltyThreshold, accepts: "> 0", "memory rule: a cell this novel (relative to normal road) starts a track.",
                valid: { $0 > 0 }),
        .number("novelty_hold", \.noveltyHold, accepts: "> 0, ≤ novelty_threshold", "memory rule: a track keeps the touching cells at least this novel.",
                valid: { $0 > 0 }),
        .integer("memory_capacity", \.memoryCapacity, unit: "vectors", 16...65_536, "memory rule: normal-road vectors the memory holds per stream."),
        .number("memory_warm_up", \.memoryWarmUp, unit: "seconds", accepts: "≥ 0", "memory rule: time from a stream's start during which the memory only learns.",
                valid: { $0 >= 0 }),
        .number("track_fade", \.trackFade, unit: "seconds", accepts: "≥ 0", "memory rule: time a track may go unseen before it ends.", valid: { $0 >= 0 }),
        .number("memory_insert_below", \.memoryInsertBelow, accepts: "> 0, ≤ novelty_hold", "memory rule: only cells less novel than this may enter the memory.",
                valid: { $0 > 0 }),
        .number("memory_commit_delay", \.memoryCommitDelay, unit: "seconds", accepts: "0…600", "memory rule: time a cell waits before it enters the memory.",
                valid: { $0 >= 0 && $0 <= 600 }),
        SettingSpec(key: "memory_everywhere", type: "boolean", unit: "", accepts: "true, false",
                    help: "memory rule: the memory also learns the scenery beside the road, not only the drivable area.",
                    render: { "\($0.memoryEverywhere)" }, isValid: { _ in true }),
    ]

    /// The table as Markdown (`roadwatch config reference`, docs/configuration.md).
    public static func referenceMarkdown() -> String {
        var lines = ["| key | type | default | accepts | unit | what it does |", "|---|---|---|---|---|---|"]
        for spec in table {
            lines.append("| `\(spec.key)` | \(spec.type) | `\(spec.value(in: .default))` | \(spec.accepts) | \(spec.unit) | \(spec.help) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
