import Anomaly
import Pipeline

/// The alarm as a user meets it, beside the per-frame figures: events (the `EventTracker` a run uses, on the
/// frames' regions), how soon the object is flagged once it is big enough to matter, how much of its visible
/// time an event is open on it, false events, and component-level precision and recall of the flagged regions
/// as the SegmentMeIfYouCan benchmark counts them (a component is found at sIoU ≥ 0.5).
public struct EventMetrics: Sendable, Equatable, Codable {
    /// The object counts as big enough to matter from the first frame its mask is this many pixels tall.
    public static let tallEnough = 32
    /// A component counts as found, and a flagged one as true, past this sIoU / precision.
    public static let componentThreshold = 0.5

    public var seconds = 0.0
    public var cleanSeconds = 0.0
    /// Seconds of the clip (its frame times) at which the object is first 32 px tall, and first flagged after.
    public var tallAt: Double?
    public var firstAlarmAt: Double?
    /// Frames with the object visible, and those of them with an event open over it.
    public var objectFrames = 0
    public var coveredFrames = 0
    public var events = 0
    /// Events whose box never met the object.
    public var falseEvents = 0
    /// Components: ground-truth ones found and missed, flagged ones true and false (summed over frames).
    public var componentsFound = 0
    public var componentsMissed = 0
    public var flaggedTrue = 0
    public var flaggedFalse = 0

    public init() {}

    /// Seconds from the object's first 32-px frame to its first alarm (0 when flagged before; nil if never).
    public var delay: Double? {
        guard let tallAt else { return nil }
        guard let firstAlarmAt else { return nil }
        return max(0, firstAlarmAt - tallAt)
    }
    public var coverage: Double { objectFrames > 0 ? Double(coveredFrames) / Double(objectFrames) : .nan }
    public var componentPrecision: Double {
        flaggedTrue + flaggedFalse > 0 ? Double(flaggedTrue) / Double(flaggedTrue + flaggedFalse) : .nan
    }
    public var componentRecall: Double {
        componentsFound + componentsMissed > 0 ? Double(componentsFound) / Double(componentsFound + componentsMissed) : .nan
    }
    public var componentF1: Double {
        let tp = Double(componentsFound), fn = Double(componentsMissed), fp = Double(flaggedFalse)
        return tp + fn + fp > 0 ? 2 * tp / (2 * tp + fn + fp) : .nan
    }

    /// The union of two clips' tallies (timing figures are per clip and are dropped).
    public mutating func merge(_ other: EventMetrics) {
        seconds += other.seconds
        cleanSeconds += other.cleanSeconds
        objectFrames += other.objectFrames
        coveredFrames += other.coveredFrames
        events += other.events
        falseEvents += other.falseEvents
        componentsFound += other.componentsFound
        componentsMissed += other.componentsMissed
        flaggedTrue += other.flaggedTrue
        flaggedFalse += other.flaggedFalse
        tallAt = nil
        firstAlarmAt = nil
    }
}

/// Gathers `EventMetrics` frame by frame, in order.
public struct EventScorer: Sendable {
    private var tracker: EventTracker
    private var metrics = EventMetrics()
    private var lastTime: Double?
    /// Per started event: whether its box ever met the object.
    private var metObject: [Int: Bool] = [:]
    private var open: [Int: [Int]] = [:]

    public init(rules: EventRules = .default, tau: Double) {
        tracker = EventTracker(rules: rules, camera: "eval", tau: tau)
    }

    /// One frame: its regions, flagged mask and labels (nil: clean) at `width` x `height`, its time in seconds.
    public mutating func add(time: Double, regions: [TemporalThreshold.TrackedRegion], alarmScores: [Float]?,
                             flagged: [Bool], labels: [UInt8]?, width: Int, height: Int) {
        let step = lastTime.map { max(0, time - $0) } ?? 0
        lastTime = time
        metrics.seconds += step
        let object = (labels ?? []).map { $0 == GroundTruth.anomaly }
        let box = Self.box(object, width: width)
        if box == nil { metrics.cleanSeconds += step }
        for change in tracker.observe(regions, alarmScores: alarmScores, time: time) {
            switch change {
            case .new(let key, let record):
                metrics.events += 1
                open[key] = record.box
                metObject[key] = metObject[key] ?? false
            case .update(let key, let record): open[key] = record.box
            case .end(let key, _):
                open[key] = nil
                if metObject[key] == false { metrics.falseEvents += 1 }
                metObject[key] = nil
            case .candidate, .dropped: break
            }
        }
        // Open events follow their regions' latest boxes.
        for tracked in regions {
            for key in open.keys where EventTracker.overlaps(open[key]!, tracked.region.box) { open[key] = tracked.region.box }
        }
        guard let box else { return }
        let grown = [box[0] - AlarmMetrics.touchMargin, box[1] - AlarmMetrics.touchMargin,
                     box[2] + 2 * AlarmMetrics.touchMargin, box[3] + 2 * AlarmMetrics.touchMargin]
        metrics.objectFrames += 1
        var covered = false
        for (key, eventBox) in open where EventTracker.overlaps(eventBox, grown) {
            covered = true
            metObject[key] = true
        }
        if covered { metrics.coveredFrames += 1 }
        if metrics.tallAt == nil, box[3] >= EventMetrics.tallEnough { metrics.tallAt = time }
        if metrics.firstAlarmAt == nil, metrics.tallAt != nil,
           regions.contains(where: { EventTracker.overlaps($0.region.box, grown) }) {
            metrics.firstAlarmAt = time
        }
        scoreComponents(object: object, flagged: flagged, width: width, height: height)
    }

    /// Ends the clip: events still open are judged by what they met.
    public mutating func finish() -> EventMetrics {
        for change in tracker.finish() {
            if case .end(let key, _) = change, metObject[key] == false { metrics.falseEvents += 1 }
        }
        open = [:]
        metObject = [:]
        return metrics
    }

    /// x, y, width, height of the true cells (nil when none).
    static func box(_ mask: [Bool], width: Int) -> [Int]? {
        var x0 = Int.max, y0 = Int.max, x1 = -1, y1 = -1
        for i in mask.indices where mask[i] {
            let x = i % width, y = i / width
            x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
        }
        return x1 < 0 ? nil : [x0, y0, x1 - x0 + 1, y1 - y0 + 1]
    }

    /// SegmentMeIfYouCan's component counts for one frame: a ground-truth component K is found when
    /// |K ∩ P̂| / |K ∪ P̂| ≥ 0.5, P̂ the flagged components meeting it (less the other ground-truth components); a
    /// flagged component P is false when the part of it on the object is below 0.5.
    private mutating func scoreComponents(object: [Bool], flagged: [Bool], width: Int, height: Int) {
        let truth = BinaryMask.components(object, width: width, height: height)
        let found = BinaryMask.components(flagged, width: width, height: height)
        var truthOf = [Int](repeating: -1, count: object.count), foundOf = truthOf
        for (k, cells) in truth.enumerated() { for i in cells { truthOf[i] = k } }
        for (p, cells) in found.enumerated() { for i in cells { foundOf[i] = p } }
        for (k, cells) in truth.enumerated() {
            var meeting = Set<Int>()
            for i in cells where foundOf[i] >= 0 { meeting.insert(foundOf[i]) }
            let predicted = meeting.flatMap { found[$0] }.filter { truthOf[$0] < 0 || truthOf[$0] == k }
            let intersection = cells.lazy.filter { foundOf[$0] >= 0 }.count
            let union = cells.count + predicted.count - intersection
            if union > 0, Double(intersection) / Double(union) >= EventMetrics.componentThreshold {
                metrics.componentsFound += 1
            } else {
                metrics.componentsMissed += 1
            }
        }
        for cells in found {
            let onObject = cells.lazy.filter { truthOf[$0] >= 0 }.count
            if Double(onObject) / Double(cells.count) >= EventMetrics.componentThreshold {
                metrics.flaggedTrue += 1
            } else {
                metrics.flaggedFalse += 1
            }
        }
    }
}
