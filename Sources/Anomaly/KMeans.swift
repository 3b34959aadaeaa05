import Foundation
import Tensors

/// A small, fast, seedable generator (PCG-XSH-RR style), so k-means++ is reproducible everywhere.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 0x2545_F491_4F6C_DD1D }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

/// Points for clustering: `count` rows of `dimension` Float32 values, row-major.
public struct PointSet: Sendable {
    public var values: [Float]
    public let count: Int
    public let dimension: Int

    public init(values: [Float], count: Int, dimension: Int) {
        precondition(values.count == count * dimension && count > 0 && dimension > 0, "point set shape mismatch")
        self.values = values
        self.count = count
        self.dimension = dimension
    }

    /// Squared norm of each row.
    var squaredNorms: [Float] {
        values.withUnsafeBufferPointer { v in
            (0..<count).map { i in
                var s: Float = 0
                let row = v.baseAddress! + i * dimension
                for j in 0..<dimension { s += row[j] * row[j] }
                return s
            }
        }
    }

    /// Mean over dimensions of each dimension's variance (scikit-learn's scale for `tol`).
    var meanVariance: Double {
        // Point after point, every dimension's sums side by side: the same additions in the same order per
        // dimension as summing one column at a time, without striding through the matrix (a column at a time
        // missed the cache on every value: 2% of a 1024x512 run).
        var sum = [Double](repeating: 0, count: dimension), sumSquares = sum
        values.withUnsafeBufferPointer { v in
            sum.withUnsafeMutableBufferPointer { sum in
            sumSquares.withUnsafeMutableBufferPointer { sumSquares in
                for i in 0..<count {
                    let row = v.baseAddress! + i * dimension
                    for j in 0..<dimension {
                        let x = Double(row[j])
                        sum[j] += x
                        sumSquares[j] += x * x
                    }
                }
            }
            }
        }
        var total = 0.0
        for j in 0..<dimension {
            let mean = sum[j] / Double(count)
            total += sumSquares[j] / Double(count) - mean * mean
        }
        return total / Double(dimension)
    }
}

/// What one clustering did.
public struct KMeansResult: Sendable {
    /// k x dimension, row-major.
    public var centroids: [Float]
    /// Cluster of each point.
    public var labels: [Int32]
    /// Lloyd iterations run.
    public var iterations: Int
    /// Sum of squared distances of points to their centroids, after the last assignment.
    public var inertia: Double
    /// Inertia per point after the first assignment to the initial centroids (the scene-cut signal).
    public var firstAssignmentInertia: Double
    /// Started from given centroids rather than k-means++.
    public var warm: Bool
    /// An empty cluster was re-seeded, or a warm start was abandoned for k-means++ after a scene cut.
    public var reseeded: Bool
    /// Inertia after each assignment step, in order (Lloyd's algorithm never lets it rise).
    public var inertiaHistory: [Double]
}

/// Lloyd's K-Means with k-means++ seeding, the assignment step as one GEMM (`x · cᵀ`), empty clusters
/// re-seeded at the farthest points, and scikit-learn's stopping rule.
public struct KMeans: Sendable {
    public var clusters: Int
    public var maxIterations: Int
    /// Convergence when the total squared centroid shift ≤ tolerance · mean feature variance.
    public var tolerance: Double
    public var seed: UInt64

    public init(clusters: Int, maxIterations: Int = 100, tolerance: Double = 1e-4, seed: UInt64 = 0) {
        precondition(clusters >= 1 && maxIterations >= 1)
        self.clusters = clusters
        self.maxIterations = maxIterations
        self.tolerance = tolerance
        self.seed = seed
    }

    /// Greedy k-means++ (as scikit-learn: 2 + ln k candidates per step, the one lowering the potential most).
    public func plusPlusSeeds(_ points: PointSet) -> [Float] {
        let n = points.count, d = points.dimension, k = min(clusters, n)
        var random = SeededGenerator(seed: seed)
        let trials = 2 + Int(log(Double(k)))
        var centroids = [Float](repeating: 0, count: clusters * d)
        func squaredDistance(_ i: Int, _ j: Int) -> Float {
            points.values.withUnsafeBufferPointer { v in
                var s: Float = 0
                let a = v.baseAddress! + i * d, b = v.baseAddress! + j * d
                for t in 0..<d {
                    let diff = a[t] - b[t]
                    s += diff * diff
                }
                return s
            }
        }
        var chosen = [Int(random.next() % UInt64(n))]
        var closest = (0..<n).map { squaredDistance($0, chosen[0]) }
        var potential = closest.reduce(0.0) { $0 + Double($1) }
        for _ in 1..<k {
            var cumulative = [Double](repeating: 0, count: n)
            var running = 0.0
            for i in 0..<n {
                running += Double(closest[i])
                cumulative[i] = running
            }
            var best: (index: Int, potential: Double, distances: [Float])?
            for _ in 0..<trials {
                let target = random.unit() * potential
                var lo = 0, hi = n - 1  // first index whose cumulative sum exceeds the target
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if cumulative[mid] <= target { lo = mid + 1 } else { hi = mid }
                }
                let candidate = lo
                var distances = closest
                var total = 0.0
                for i in 0..<n {
                    distances[i] = min(distances[i], squaredDistance(i, candidate))
                    total += Double(distances[i])
                }
                if best == nil || total < best!.potential { best = (candidate, total, distances) }
            }
            chosen.append(best!.index)
            closest = best!.distances
            potential = best!.potential
        }
        for (c, index) in chosen.enumerated() {
            for t in 0..<d { centroids[c * d + t] = points.values[index * d + t] }
        }
        return centroids
    }

    /// The nearest centroid of every point, with its squared distance, and the total (the inertia).
    public struct Assignment: Sendable {
        public var labels: [Int32]
        public var distances: [Float]
        public var inertia: Double
    }

    /// Clusters `points`, from `initial` centroids (a warm start) or from k-means++.
    public func run(_ points: PointSet, initial: [Float]? = nil) -> KMeansResult {
        run(points, initial: initial, norms: points.squaredNorms, first: nil)
    }

    /// `first`: the points' assignment to `initial`, when the caller computed it already (the warm start's
    /// scene-cut test), so iteration 1 does not repeat it.
    func run(_ points: PointSet, initial: [Float]?, norms: [Float], first: Assignment?) -> KMeansResult {
        let n = points.count, d = points.dimension, k = clusters
        var centroids = initial ?? plusPlusSeeds(points)
        precondition(centroids.count == k * d, "initial centroids must be \(k) x \(d)")
        let threshold = tolerance * points.meanVariance
        var labels = [Int32](repeating: -1, count: n)
        var distances = [Float](repeating: 0, count: n)
        var products = [Float](repeating: 0, count: n * k)
        var reseeded = false
        var iterations = 0
        var firstInertia = 0.0
        var history: [Double] = []

        for iteration in 0..<maxIterations {
            iterations = iteration + 1
            let previous = labels
            let inertia: Double
            if iteration == 0, let first, initial != nil {
                labels = first.labels
                distances = first.distances
                inertia = first.inertia
            } else {
                inertia = assign(points, norms, centroids, &labels, &distances, &products)
            }
            if iteration == 0 { firstInertia = inertia / Double(n) }
            history.append(inertia)
            // Update: each centroid becomes the mean of its members.
            var sums = [Double](repeating: 0, count: k * d)
            var counts = [Int](repeating: 0, count: k)
            // Through pointers: without bounds checks the per-dimension sums vectorise (the same additions in
            // the same order).
            points.values.withUnsafeBufferPointer { v in
            sums.withUnsafeMutableBufferPointer { sums in
                for i in 0..<n {
                    let c = Int(labels[i])
                    counts[c] += 1
                    let row = v.baseAddress! + i * d, sum = sums.baseAddress! + c * d
                    for t in 0..<d { sum[t] += Double(row[t]) }
                }
            }
            }
            var updated = centroids
            let empty = (0..<k).filter { counts[$0] == 0 }
            if !empty.isEmpty {
                // Re-seed each empty cluster at one of the points farthest from its own centroid.
                reseeded = true
                let farthest = distances.indices.sorted { distances[$0] > distances[$1] }.prefix(empty.count)
                for (c, i) in zip(empty, farthest) {
                    let from = Int(labels[i])
                    for t in 0..<d {
                        let x = Double(points.values[i * d + t])
                        sums[c * d + t] = x
                        sums[from * d + t] -= x
                    }
                    counts[c] = 1
                    counts[from] -= 1
                    labels[i] = Int32(c)
                }
            }
            var shift = 0.0
            for c in 0..<k where counts[c] > 0 {
                for t in 0..<d {
                    let value = Float(sums[c * d + t] / Double(counts[c]))
                    let delta = Double(value - centroids[c * d + t])
                    shift += delta * delta
                    updated[c * d + t] = value
                }
            }
            centroids = updated
            if labels == previous { break }  // strict convergence: no point changed cluster
            if shift <= threshold { break }
        }
        // Labels and inertia for the final centroids.
        let inertia = assign(points, norms, centroids, &labels, &distances, &products)
        history.append(inertia)
        return KMeansResult(centroids: centroids, labels: labels, iterations: iterations, inertia: inertia,
                            firstAssignmentInertia: firstInertia, warm: initial != nil, reseeded: reseeded,
                            inertiaHistory: history)
    }

    /// Assigns `points` to `centroids` (one GEMM), without iterating.
    public func assignment(_ points: PointSet, centroids: [Float]) -> Assignment {
        assignment(points, norms: points.squaredNorms, centroids: centroids)
    }

    func assignment(_ points: PointSet, norms: [Float], centroids: [Float]) -> Assignment {
        var labels = [Int32](repeating: 0, count: points.count)
        var distances = [Float](repeating: 0, count: points.count)
        var products = [Float](repeating: 0, count: points.count * clusters)
        let inertia = assign(points, norms, centroids, &labels, &distances, &products)
        return Assignment(labels: labels, distances: distances, inertia: inertia)
    }

    /// Assigns each point to its nearest centroid: `||x||² − 2 x·c + ||c||²` with `x·cᵀ` from the tensors'
    /// GEMM (so it follows the compute-thread policy). Returns the inertia.
    private func assign(_ points: PointSet, _ norms: [Float], _ centroids: [Float],
                        _ labels: inout [Int32], _ distances: inout [Float], _ products: inout [Float]) -> Double {
        let n = points.count, d = points.dimension, k = clusters
        let centroidNorms = (0..<k).map { c in (0..<d).reduce(Float(0)) { $0 + centroids[c * d + $1] * centroids[c * d + $1] } }
        // cᵀ (d x k), so the product is a plain n x d by d x k multiply.
        var transposed = [Float](repeating: 0, count: d * k)
        for c in 0..<k { for t in 0..<d { transposed[t * k + c] = centroids[c * d + t] } }
        Gemm.multiply(m: n, n: k, k: d, a: points.values, b: transposed, into: &products)
        var inertia = 0.0
        for i in 0..<n {
            var best = Float.infinity, bestIndex = 0
            for c in 0..<k {
                let distance = max(0, norms[i] - 2 * products[i * k + c] + centroidNorms[c])
                if distance < best {
                    best = distance
                    bestIndex = c
                }
            }
            labels[i] = Int32(bestIndex)
            distances[i] = best
            inertia += Double(best)
        }
        return inertia
    }
}

/// K-Means over a stream of frames: each frame starts from the previous frame's centroids, and falls back
/// to k-means++ on the first frame, after `reset()`, and when a scene cut makes the first warm assignment's
/// inertia exceed `sceneCutFactor` times its running mean. A value: the clustering stage owns it.
public struct WarmStartKMeans: Sendable {
    public let kmeans: KMeans
    public let sceneCutFactor: Double
    /// Weight of the newest frame in the running mean of first-assignment inertia.
    public let smoothing: Double
    private var centroids: [Float]?
    private var runningInertia: Double?

    public init(kmeans: KMeans, sceneCutFactor: Double = MethodSettings.default.sceneCutFactor,
                smoothing: Double = MethodSettings.default.sceneCutSmoothing) {
        self.kmeans = kmeans
        self.sceneCutFactor = sceneCutFactor
        self.smoothing = smoothing
    }

    /// The centroids the next frame starts from (nil before the first frame and after `reset()`).
    public var previousCentroids: [Float]? { centroids }

    /// Forgets the centroids: the next frame is seeded afresh (after a reconnect or a seek).
    public mutating func reset() {
        centroids = nil
        runningInertia = nil
    }

    public mutating func cluster(_ points: PointSet) -> KMeansResult {
        var result: KMeansResult
        let norms = points.squaredNorms
        if let previous = centroids, previous.count == kmeans.clusters * points.dimension {
            // The first assignment decides whether the scene cut, and is iteration 1 of the warm run if not.
            let first = kmeans.assignment(points, norms: norms, centroids: previous)
            let perPoint = first.inertia / Double(points.count)
            if let running = runningInertia, perPoint > sceneCutFactor * running {
                result = kmeans.run(points, initial: nil, norms: norms, first: nil)
                result.reseeded = true
                runningInertia = nil
            } else {
                result = kmeans.run(points, initial: previous, norms: norms, first: first)
                runningInertia = runningInertia.map { $0 + smoothing * (perPoint - $0) } ?? perPoint
            }
        } else {
            result = kmeans.run(points, initial: nil, norms: norms, first: nil)
        }
        centroids = result.centroids
        return result
    }
}
