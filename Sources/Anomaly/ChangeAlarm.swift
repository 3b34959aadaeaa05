import Foundation

/// Which rule raises the binary alarm (the mask, outlines, boxes, regions and events).
public enum AlarmRule: String, Sendable, Codable, CaseIterable {
    /// A drivable-area cell whose features are novel against this stream's memory of normal road
    /// (`RoadMemory`), persisting over 2 of 3 ticks, then followed as a track with a lower threshold while it
    /// stays novel (`ObstacleTracker`).
    case memory
    /// A drivable-area cell whose confidence drops and whose features turn novel against what this stream
    /// showed at that place before (`ChangeAlarm`), persisting over 2 of 3 frames. The default.
    case change
    /// A cluster whose smoothed mean max-logit is below tau (the paper's rule, with hysteresis).
    case clusters
}

/// How far each cell's features are from everything the stream showed in the previous frame: the squared
/// distance of its L2-normalised feature to the nearest centroid of a K-Means warm-started from frame to
/// frame (computed before this frame moves the centroids). The clustering stage owns it.
public struct NoveltyMemory: Sendable {
    private var kmeans: WarmStartKMeans
    private var clock: AlarmClock

    public init(settings: MethodSettings) {
        clock = AlarmClock(interval: settings.alarmInterval)
        kmeans = WarmStartKMeans(kmeans: KMeans(clusters: settings.noveltyClusters, maxIterations: settings.maxIterations,
                                                tolerance: settings.tolerance, seed: settings.seed),
                                 sceneCutFactor: settings.sceneCutFactor, smoothing: settings.sceneCutSmoothing)
    }

    public mutating func reset() {
        kmeans.reset()
        clock = AlarmClock(interval: clock.interval)
    }

    /// On a tick of the alarm clock (see `AlarmClock`): each point's novelty against the centroids of the
    /// previous tick (nil on the first), after which this frame's are remembered. Between ticks: nil, and
    /// nothing changes.
    public mutating func novelty(_ points: PointSet, time: Double) -> (tick: Bool, novelty: [Float]?) {
        guard clock.tick(time) else { return (false, nil) }
        let distances = kmeans.previousCentroids.map { kmeans.kmeans.assignment(points, centroids: $0).distances }
        _ = kmeans.cluster(points)
        return (true, distances)
    }
}

/// The change alarm steps on a clock of its own, at most once per `interval` seconds of the frames' time, so
/// its statistics, novelty and persistence mean the same at 25, 30 or 8 processed frames per second; frames
/// between ticks keep the last tick's decision. Both stages that use it see the same frame times, so they
/// tick on the same frames.
public struct AlarmClock: Sendable {
    public let interval: Double
    private var last: Double?

    public init(interval: Double) { self.interval = interval }

    /// Seconds since the previous tick at the last tick (nil at the first).
    public private(set) var elapsed: Double?

    /// Whether a frame at `time` is a tick; remembers it if so.
    public mutating func tick(_ time: Double) -> Bool {
        if let last, time - last < interval - 1e-6, time >= last { return false }
        elapsed = last.map { max(0, time - $0) }
        last = time
        return true
    }
}

/// The change alarm: per grid cell, running statistics of the confidence `m_s` and of the feature novelty,
/// gathered from this stream alone (training-free), and a score of how far the current frame departs from
/// them: `(mean_m − m) / sqrt(var_m + floor_m²) + w · (novelty − mean_n) / sqrt(var_n + floor_n²)`.
/// A cell is flagged when the score exceeds the threshold inside the drivable area (road cells and the gaps
/// between them along rows and columns), when it or a neighbour was flagged in one of the two previous
/// frames, and when its region has at least `minimumAlarmCells` cells. Nothing is flagged during the first
/// `warmUpFrames` ticks after a (re)start, while the statistics form. It steps once per `alarmInterval` of
/// video time (`AlarmClock`). The thresholding stage owns it.
public struct ChangeAlarm: Sendable {
    public let settings: MethodSettings
    private var confidence = RunningCells()
    private var novelty = RunningCells()
    private var frames = 0
    /// Raw flags (before persistence) of the two previous ticks.
    private var history: [[Bool]] = []
    private var clock: AlarmClock
    /// The last tick's decision, kept by the frames between ticks.
    private var held: [Bool]?

    public init(settings: MethodSettings) {
        self.settings = settings
        clock = AlarmClock(interval: settings.alarmInterval)
    }

    public mutating func reset() {
        confidence = RunningCells()
        novelty = RunningCells()
        frames = 0
        history = []
        clock = AlarmClock(interval: settings.alarmInterval)
        held = nil
    }

    /// The score of every cell (nil during the warm-up or without novelty), for inspection and tests.
    public private(set) var lastScore: [Float]?

    /// The flagged cells of the frame at `time` (`gridWidth` x `gridHeight`, row-major). `novelty` is the
    /// `NoveltyMemory`'s for the same frame.
    public mutating func decide(time: Double, cellConfidence: [Float], novelty noveltyValues: [Float]?, drivable: [Bool],
                                gridWidth gw: Int, gridHeight gh: Int) -> [Bool] {
        let n = gw * gh
        precondition(cellConfidence.count == n && drivable.count == n && (noveltyValues?.count ?? n) == n)
        guard clock.tick(time) else { return held ?? [Bool](repeating: false, count: n) }
        let flags = step(cellConfidence: cellConfidence, novelty: noveltyValues, drivable: drivable, gridWidth: gw, gridHeight: gh)
        held = flags
        return flags
    }

    private mutating func step(cellConfidence: [Float], novelty noveltyValues: [Float]?, drivable: [Bool],
                               gridWidth gw: Int, gridHeight gh: Int) -> [Bool] {
        let n = gw * gh
        guard let noveltyValues else {
            // No previous frame to be novel against: the statistics start over.
            confidence = RunningCells()
            novelty = RunningCells()
            frames = 0
            history = []
            lastScore = nil
            return [Bool](repeating: false, count: n)
        }
        let warm = frames >= settings.warmUpFrames
        var score: [Float]?
        if warm {
            let fc = Float(settings.confidenceFloor * settings.confidenceFloor)
            let fn = Float(settings.noveltyFloor * settings.noveltyFloor)
            let w = Float(settings.noveltyWeight)
            score = (0..<n).map { i in
                (confidence.mean[i] - cellConfidence[i]) / (confidence.variance[i] + fc).squareRoot()
                    + w * (noveltyValues[i] - novelty.mean[i]) / (novelty.variance[i] + fn).squareRoot()
            }
        }
        // The weight per tick of `alarmInterval`; a longer gap between ticks (a slow pipeline) weighs more.
        let ticks = max(1, (clock.elapsed ?? settings.alarmInterval) / settings.alarmInterval)
        let perTick = 1 - pow(1 - settings.statisticsWeight, ticks)
        let weight = Float(max(perTick, 1 / Double(frames + 2)))
        confidence.add(cellConfidence, weight: weight)
        novelty.add(noveltyValues, weight: weight)
        frames += 1
        lastScore = score
        let threshold = Float(settings.alarmThreshold)
        // Raw flags; none while warming up (they still count as "not flagged before" for persistence).
        let raw = score.map { score in (0..<n).map { score[$0] > threshold && drivable[$0] } } ?? [Bool](repeating: false, count: n)
        defer {
            history.append(raw)
            if history.count > 2 { history.removeFirst() }
        }
        guard score != nil, history.count == 2 else { return [Bool](repeating: false, count: n) }
        let before = BinaryMask.grow(zip(history[0], history[1]).map { $0 || $1 }, width: gw, height: gh, by: 1)
        let persistent = (0..<n).map { raw[$0] && before[$0] }
        return BinaryMask.dropSmall(persistent, width: gw, height: gh, minimum: settings.minimumAlarmCells)
    }

    /// Drivable cells: those of `roadClass`, and every cell between two of them in its row or its column
    /// (an object in the lane interrupts the road without leaving it). With `enclosed`, a cell off the road
    /// must lie between road cells in its row *and* in its column: a hillside beside a curving road lies between
    /// road cells along its row only.
    public static func drivable(classes: [UInt8], roadClass: UInt8, width w: Int, height h: Int, enclosed: Bool = false) -> [Bool] {
        let road = classes.map { $0 == roadClass }
        var rows = road, columns = road
        for y in 0..<h {
            let row = (0..<w).filter { road[y * w + $0] }
            if let first = row.first, let last = row.last { for x in first...last { rows[y * w + x] = true } }
        }
        for x in 0..<w {
            let column = (0..<h).filter { road[$0 * w + x] }
            if let first = column.first, let last = column.last { for y in first...last { columns[y * w + x] = true } }
        }
        return (0..<(w * h)).map { enclosed ? rows[$0] && columns[$0] : rows[$0] || columns[$0] }
    }
}

/// A per-cell running mean and variance: a plain mean while few frames are in, then an exponential one.
struct RunningCells: Sendable {
    var mean: [Float] = []
    var variance: [Float] = []

    mutating func add(_ values: [Float], weight w: Float) {
        if mean.isEmpty {
            mean = values
            variance = [Float](repeating: 0, count: values.count)
            return
        }
        for i in values.indices {
            let d = values[i] - mean[i]
            mean[i] += w * d
            variance[i] = (1 - w) * (variance[i] + w * d * d)
        }
    }
}
