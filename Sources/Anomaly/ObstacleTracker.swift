/// Turns the road memory's novelty into flagged cells that hold on to what they found. A region of cells at
/// least `threshold` novel, seen on two of three ticks and at least `minimumCells` large, becomes a track;
/// from then on the track follows the cells at least `hold` novel that touch where it was (grown by
/// `reach` cells: a static obstacle grows and slides down the picture as the car nears it), so it stays on
/// with a lower threshold while its novelty persists (hysteresis in space and time). A track unseen for
/// `fade` seconds ends, and so does one held for `strongGap` seconds by weak cells alone. The thresholding stage owns it; it steps on the change clock.
public struct ObstacleTracker: Sendable {
    /// The tracker's knobs (see `MethodSettings` for their defaults and meaning).
    public struct Settings: Sendable, Equatable {
        public var threshold: Double
        public var hold: Double
        public var minimumCells: Int
        public var reach: Int
        public var fade: Double
        /// Seconds a track may go without a cell at `threshold` (held by weaker cells only) before it ends.
        public var strongGap: Double

        public init(threshold: Double, hold: Double, minimumCells: Int, reach: Int = 2, fade: Double = 1.0,
                    strongGap: Double = 2.0) {
            self.strongGap = strongGap
            self.threshold = threshold
            self.hold = hold
            self.minimumCells = minimumCells
            self.reach = reach
            self.fade = fade
        }
    }

    /// One object followed over time.
    struct Track: Sendable {
        var id: Int
        var cells: [Int]
        var lastSeen: Double
        /// When the track last had a cell at `threshold`: held only by weaker cells, it ends after `fade` x 2.
        var lastStrong: Double
    }

    public let settings: Settings
    private var clock: AlarmClock
    /// Strong cells of the two previous ticks (before persistence).
    private var history: [[Bool]] = []
    private var tracks: [Track] = []
    private var nextID = 1
    private var held: [Bool]?

    public init(settings: Settings, interval: Double) {
        self.settings = settings
        clock = AlarmClock(interval: interval)
    }

    public mutating func reset() {
        history = []
        tracks = []
        held = nil
        clock = AlarmClock(interval: clock.interval)
    }

    /// Tracks alive now (seen within `fade` seconds).
    public var activeTracks: Int { tracks.count }

    /// The flagged cells of the frame at `time`. `novelty` is the road memory's reading of this frame (nil
    /// between its ticks and while it warms up).
    public mutating func decide(time: Double, novelty: [Float]?, gridWidth gw: Int, gridHeight gh: Int) -> [Bool] {
        let n = gw * gh
        guard clock.tick(time) else { return held ?? [Bool](repeating: false, count: n) }
        guard let novelty, novelty.count == n else {
            history = []
            tracks = []
            held = [Bool](repeating: false, count: n)
            return held!
        }
        let strong = novelty.map { Double($0) >= settings.threshold }
        let weak = novelty.map { Double($0) >= settings.hold }
        defer {
            history.append(strong)
            if history.count > 2 { history.removeFirst() }
        }
        var flagged = [Bool](repeating: false, count: n)
        var claimed = [Bool](repeating: false, count: n)
        // Existing tracks first: each takes the weak regions touching where it was.
        let weakRegions = BinaryMask.components(weak, width: gw, height: gh)
        var regionOf = [Int](repeating: -1, count: n)
        for (r, cells) in weakRegions.enumerated() { for i in cells { regionOf[i] = r } }
        var survivors: [Track] = []
        for var track in tracks {
            var near = [Bool](repeating: false, count: n)
            for i in track.cells { near[i] = true }
            near = BinaryMask.grow(near, width: gw, height: gh, by: settings.reach)
            var taken = Set<Int>()
            for i in 0..<n where near[i] && regionOf[i] >= 0 && !claimed[i] { taken.insert(regionOf[i]) }
            let cells = taken.sorted().flatMap { weakRegions[$0] }.filter { !claimed[$0] }
            if !cells.isEmpty {
                track.cells = cells
                track.lastSeen = time
                if cells.contains(where: { strong[$0] }) { track.lastStrong = time }
                for i in cells {
                    claimed[i] = true
                    flagged[i] = true
                }
            }
            if time - track.lastSeen <= settings.fade && time >= track.lastSeen && time - track.lastStrong <= settings.strongGap {
                survivors.append(track)
            } else if time - track.lastStrong > settings.strongGap {
                // Held only by weak cells for too long: a patch of road that looked new, not an object.
                for i in track.cells where flagged[i] { flagged[i] = false }
            }
        }
        tracks = survivors
        // New tracks: strong cells seen (or next to one seen) on one of the two previous ticks, large enough.
        if !history.isEmpty {
            let seen = (0..<n).map { i in history.contains { $0[i] } }
            let before = BinaryMask.grow(seen, width: gw, height: gh, by: 1)
            let persistent = (0..<n).map { strong[$0] && before[$0] && !claimed[$0] }
            for cells in BinaryMask.components(persistent, width: gw, height: gh) where cells.count >= settings.minimumCells {
                // The new track takes the whole weak region around its strong core.
                var region = Set(cells)
                for i in cells where regionOf[i] >= 0 { region.formUnion(weakRegions[regionOf[i]].filter { !claimed[$0] }) }
                let all = region.sorted()
                for i in all {
                    claimed[i] = true
                    flagged[i] = true
                }
                tracks.append(Track(id: nextID, cells: all, lastSeen: time, lastStrong: time))
                nextID += 1
            }
        }
        held = flagged
        return flagged
    }
}
