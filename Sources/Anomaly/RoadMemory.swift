import Tensors

/// What normal road looks like to one stream: a bank of L2-normalised feature vectors of drivable-area cells,
/// learned from the stream itself and queried by nearest neighbour (a memory bank as PatchCore keeps one, grown
/// online). A cell's novelty is its squared distance to the nearest vector of the bank, divided by the stream's
/// typical novelty of normal road, so one threshold means the same on every road and at every size.
///
/// The update is conservative, as in background subtraction: only cells that look normal (novelty below
/// `insertBelow`, and no cell at `holdAbove` or more within two cells) may enter, and they enter `commitDelay`
/// seconds later. Cells that the bank already covers (below `coverRadius`) do not enter; when the bank is full the vector that has gone longest without being
/// anybody's nearest neighbour leaves, so the memory follows light and weather over minutes, not a boulder.
/// The clustering stage owns it (it holds the normalised features); it steps on the change clock.
public struct RoadMemory: Sendable {
    /// The memory's knobs. `capacity`, `warmUp`, `commitDelay`, `insertBelow` and `holdAbove` come from
    /// `MethodSettings`; the others are fixed: `insertPerTick` (a sample of the eligible cells, so the bank
    /// spreads over the road and a 64x32 grid does not refill it in a second), `coverRadius` (relative novelty
    /// under which a vector adds nothing), `scaleQuantile` and `scaleWeight` (the scale is the running 90th
    /// percentile of normal cells' distances, 2% of a tick's value a tick: about 4 s at 12 ticks a second).
    public struct Settings: Sendable, Equatable {
        public var capacity: Int
        public var insertPerTick: Int
        public var warmUp: Double
        public var commitDelay: Double
        public var insertBelow: Double
        public var holdAbove: Double
        public var coverRadius: Double
        public var scaleQuantile: Double
        public var scaleWeight: Double
        public var seed: UInt64
        /// Every cell (side columns aside) is looked up and may enter, not only the drivable area's; novelty is
        /// still reported for the drivable area alone. Scenery the class map sometimes calls road is then known.
        public var learnsEverywhere: Bool

        public init(capacity: Int = 1024, insertPerTick: Int = 64, warmUp: Double = 1.0, commitDelay: Double = 1.0,
                    insertBelow: Double = 1.5, holdAbove: Double = 2.5, coverRadius: Double = 0.5,
                    scaleQuantile: Double = 0.9, scaleWeight: Double = 0.02, seed: UInt64 = 0, learnsEverywhere: Bool = false) {
            self.learnsEverywhere = learnsEverywhere
            self.capacity = capacity
            self.insertPerTick = insertPerTick
            self.warmUp = warmUp
            self.commitDelay = commitDelay
            self.insertBelow = insertBelow
            self.holdAbove = holdAbove
            self.coverRadius = coverRadius
            self.scaleQuantile = scaleQuantile
            self.scaleWeight = scaleWeight
            self.seed = seed
        }
    }

    public let settings: Settings
    /// The vectors as columns: `dimension` x `capacity`, row-major (so a product with the queries is one plain
    /// GEMM); the first `count` columns hold vectors.
    private var bank: [Float] = []
    public private(set) var count = 0
    private var dimension = 0
    /// Tick at which each bank row was last a nearest neighbour (or entered).
    private var lastUsed: [Int] = []
    /// Vectors waiting for their commit time, oldest first.
    private var pending: [(time: Double, vectors: [Float])] = []
    private var random: SeededGenerator
    private var clock: AlarmClock
    private var ticks = 0
    private var startTime: Double?
    /// Running mean of the per-tick `scaleQuantile` of raw novelty over the drivable cells that look normal.
    public private(set) var scale: Double?
    /// Scratch: the queries' products with the bank.
    private var products: [Float] = []
    private var queries: [Float] = []

    /// A calibrated memory (`MemoryBank`), `dimension` x `count` row-major: read, never changed or evicted.
    private let prior: (vectors: [Float], count: Int, dimension: Int)?

    public init(settings: Settings, interval: Double, prior: MemoryBank? = nil) {
        self.settings = settings
        random = SeededGenerator(seed: settings.seed)
        clock = AlarmClock(interval: interval)
        self.prior = prior.map { bank in
            let n = bank.header.count, d = bank.header.dimension
            var columns = [Float](repeating: 0, count: n * d)
            for r in 0..<n { for c in 0..<d { columns[c * n + r] = bank.vectors[r * d + c] } }
            return (columns, n, d)
        }
    }

    /// Forgets what the stream taught it (a new scene: another camera behind the same name, a seek); the
    /// calibrated prior stays.
    public mutating func reset() {
        var fresh = self
        fresh.bank = []
        fresh.count = 0
        fresh.dimension = 0
        fresh.lastUsed = []
        fresh.pending = []
        fresh.random = SeededGenerator(seed: settings.seed)
        fresh.clock = AlarmClock(interval: clock.interval)
        fresh.ticks = 0
        fresh.startTime = nil
        fresh.scale = nil
        self = fresh
    }

    /// The outcome of one frame: the novelty of every cell (0 outside `drivable`), or nil between ticks and
    /// while the memory warms up.
    public struct Reading: Sendable {
        public var tick: Bool
        public var novelty: [Float]?
    }

    /// Reads and updates the memory for a frame at `time`. `points` are the frame's normalised cell features
    /// (row-major, one cell a row); `drivable` says which cells are looked at and may enter the memory.
    public mutating func step(_ points: PointSet, drivable: [Bool], gridWidth gw: Int, gridHeight gh: Int,
                              time: Double) -> Reading {
        precondition(drivable.count == points.count && gw * gh == points.count)
        guard clock.tick(time) else { return Reading(tick: false, novelty: nil) }
        ticks += 1
        if dimension != points.dimension {
            dimension = points.dimension
            bank = [Float](repeating: 0, count: settings.capacity * dimension)
            lastUsed = [Int](repeating: 0, count: settings.capacity)
            count = 0
            pending = []
        }
        let start = startTime ?? time
        startTime = start
        if time < start { startTime = time }  // a clock that went back (a looped file): start counting again
        let warming = time - (startTime ?? time) < settings.warmUp || (count == 0 && prior == nil)
        // The columns at the picture's left and right edges are left out: the network's features there carry its
        // zero padding, and they turned "novel" on every road (the far lane at the edge, a car entering).
        let margin = Self.sideMargin(gridWidth: gw)
        let inside = (0..<points.count).filter { $0 % gw >= margin && $0 % gw < gw - margin }
        // The cells looked at: the drivable area's, or every cell when the memory also learns the scenery.
        let cells = settings.learnsEverywhere ? inside : inside.filter { drivable[$0] }
        let raw = nearest(points, cells: cells)
        // Novelty relative to how far normal road is from the memory on this stream.
        let relative = raw.map { Double($0) / max(scale ?? 1, 1e-6) }
        var suspicious = [Bool](repeating: false, count: gw * gh)
        if scale != nil {
            for (j, i) in cells.enumerated() where drivable[i] && relative[j] >= settings.holdAbove { suspicious[i] = true }
            if suspicious.contains(true) { suspicious = BinaryMask.grow(suspicious, width: gw, height: gh, by: 2) }
        }
        // The scales learn from the drivable cells that look normal (what is novel now, and its surroundings,
        // would teach them the object's distance).
        let normalCells = cells.indices.filter { drivable[cells[$0]] && !suspicious[cells[$0]] }
        let normal = normalCells.map { raw[$0] }.sorted()
        if !normal.isEmpty, count > 0 {
            let q = Double(normal[min(normal.count - 1, Int(settings.scaleQuantile * Double(normal.count)))])
            scale = scale.map { $0 + settings.scaleWeight * (q - $0) } ?? q
        }
        var novelty: [Float]?
        if !warming, scale != nil, count > 0 {
            var values = [Float](repeating: 0, count: points.count)
            for (j, i) in cells.enumerated() where drivable[i] { values[i] = Float(relative[j]) }
            novelty = values
        }
        learn(points, cells: cells, raw: raw, relative: relative, suspicious: suspicious, warming: warming,
              gridWidth: gw, gridHeight: gh, time: time)
        return Reading(tick: true, novelty: novelty)
    }

    /// Columns at each side left out: 3% of the width, at least one.
    public static func sideMargin(gridWidth gw: Int) -> Int { max(1, Int((0.03 * Double(gw)).rounded())) }

    /// Squared distance of each listed cell's vector to its nearest bank vector (4 with an empty bank), and the
    /// bank rows found marked as used.
    private mutating func nearest(_ points: PointSet, cells: [Int]) -> [Float] {
        let d = dimension, m = cells.count, n = count
        guard m > 0 else { return [] }
        let usesPrior = prior.map { $0.dimension == d } ?? false
        guard n > 0 || usesPrior else { return [Float](repeating: 4, count: m) }
        if queries.count < m * d { queries = [Float](repeating: 0, count: m * d) }
        points.values.withUnsafeBufferPointer { v in
            queries.withUnsafeMutableBufferPointer { q in
                for (j, i) in cells.enumerated() {
                    (q.baseAddress! + j * d).update(from: v.baseAddress! + i * d, count: d)
                }
            }
        }
        var distances = [Float](repeating: 4, count: m)
        if usesPrior, let prior {
            nearestInPrior(prior, queries: m, into: &distances)
        }
        guard n > 0 else { return distances }
        if products.count < m * n { products = [Float](repeating: 0, count: m * n) }
        let capacity = settings.capacity
        queries.withUnsafeBufferPointer { q in
            bank.withUnsafeBufferPointer { b in
                products.withUnsafeMutableBufferPointer { p in
                    Gemm.multiply(m: m, n: n, k: d, a: q.baseAddress!, lda: d, b: b.baseAddress!, ldb: capacity,
                                  c: p.baseAddress!, ldc: n)
                }
            }
        }
        products.withUnsafeBufferPointer { p in
            for j in 0..<m {
                let row = p.baseAddress! + j * n
                var best = 0
                for r in 1..<n where row[r] > row[best] { best = r }
                let distance = max(0, 2 - 2 * row[best])
                if distance <= distances[j] {
                    distances[j] = distance
                    lastUsed[best] = ticks
                }
            }
        }
        return distances
    }

    /// Each query's squared distance to its nearest prior vector, where nearer than what `distances` holds.
    private mutating func nearestInPrior(_ prior: (vectors: [Float], count: Int, dimension: Int), queries m: Int,
                                         into distances: inout [Float]) {
        let n = prior.count, d = prior.dimension
        if products.count < m * n { products = [Float](repeating: 0, count: m * n) }
        queries.withUnsafeBufferPointer { q in
            prior.vectors.withUnsafeBufferPointer { b in
                products.withUnsafeMutableBufferPointer { p in
                    Gemm.multiply(m: m, n: n, k: d, a: q.baseAddress!, lda: d, b: b.baseAddress!, ldb: n,
                                  c: p.baseAddress!, ldc: n)
                }
            }
        }
        products.withUnsafeBufferPointer { p in
            for j in 0..<m {
                let row = p.baseAddress! + j * n
                var best = row[0]
                for r in 1..<n where row[r] > best { best = row[r] }
                distances[j] = min(distances[j], max(0, 2 - 2 * best))
            }
        }
    }

    /// Chooses the cells that may enter, queues them, and commits what has waited long enough.
    private mutating func learn(_ points: PointSet, cells: [Int], raw: [Float], relative: [Double], suspicious: [Bool],
                                warming: Bool, gridWidth gw: Int, gridHeight gh: Int, time: Double) {
        let d = dimension
        var candidates: [Int] = []
        if warming || scale == nil {
            let covered = Float(settings.coverRadius * (scale ?? 0))
            candidates = cells.indices.filter { raw[$0] > covered || count == 0 }
        } else {
            candidates = cells.indices.filter {
                relative[$0] < settings.insertBelow && !suspicious[cells[$0]] && relative[$0] > settings.coverRadius
            }
        }
        if !warming && candidates.count > settings.insertPerTick {
            // A random sample, so the memory spreads over the road rather than over the first rows.
            for j in 0..<settings.insertPerTick {
                let k = j + Int(random.next() % UInt64(candidates.count - j))
                candidates.swapAt(j, k)
            }
            candidates.removeLast(candidates.count - settings.insertPerTick)
        }
        if !candidates.isEmpty {
            var vectors = [Float](repeating: 0, count: candidates.count * d)
            points.values.withUnsafeBufferPointer { v in
                for (r, j) in candidates.enumerated() {
                    for c in 0..<d { vectors[r * d + c] = v[cells[j] * d + c] }
                }
            }
            pending.append((warming ? -Double.infinity : time, vectors))
        }
        while let first = pending.first, first.time <= time - settings.commitDelay {
            pending.removeFirst()
            commit(first.vectors)
        }
    }

    /// Puts vectors into the bank: into free rows, then over the rows unused longest.
    private mutating func commit(_ vectors: [Float]) {
        let d = dimension
        for r in 0..<(vectors.count / d) {
            let row: Int
            if count < settings.capacity {
                row = count
                count += 1
            } else {
                var oldest = 0
                for i in 1..<count where lastUsed[i] < lastUsed[oldest] { oldest = i }
                row = oldest
            }
            let capacity = settings.capacity
            for c in 0..<d { bank[c * capacity + row] = vectors[r * d + c] }
            lastUsed[row] = ticks
        }
    }
}
