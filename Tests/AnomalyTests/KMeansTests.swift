import Testing
@testable import Anomaly
import Foundation
import Tensors

@Suite("K-Means")
struct KMeansTests {
    /// Three tight groups on a line: {0, 0.1, 0.2}, {5, 5.1}, {10, 10.2}.
    let line = PointSet(values: [0, 0.1, 0.2, 5, 5.1, 10, 10.2], count: 7, dimension: 1)

    @Test("a case worked out by hand: three groups, their means, their inertia")
    func handCase() {
        let result = KMeans(clusters: 3, seed: 3).run(line)
        let centroids = result.centroids.sorted()
        #expect(abs(centroids[0] - 0.1) < 1e-6 && abs(centroids[1] - 5.05) < 1e-6 && abs(centroids[2] - 10.1) < 1e-6)
        // Inertia: 0.01 + 0 + 0.01 + 0.0025 + 0.0025 + 0.01 + 0.01 = 0.045.
        #expect(abs(result.inertia - 0.045) < 1e-5)
        #expect(result.labels[0] == result.labels[1] && result.labels[1] == result.labels[2])
        #expect(result.labels[3] == result.labels[4] && result.labels[5] == result.labels[6])
        #expect(Set(result.labels).count == 3)
    }

    func blobs(seed: UInt64, n: Int = 600, d: Int = 8, k: Int = 5) -> PointSet {
        var random = SeededGenerator(seed: seed)
        let centres = (0..<(k * d)).map { _ in Float(random.unit() * 10) }
        var values: [Float] = []
        for i in 0..<n {
            let c = i % k
            for t in 0..<d { values.append(centres[c * d + t] + Float(random.unit() - 0.5) * 3) }
        }
        return PointSet(values: values, count: n, dimension: d)
    }

    @Test("inertia never increases across Lloyd steps", arguments: [1 as UInt64, 2, 3, 4])
    func inertiaMonotone(_ seed: UInt64) {
        let result = KMeans(clusters: 6, seed: seed).run(blobs(seed: seed))
        #expect(result.inertiaHistory.count >= 2)
        for (a, b) in zip(result.inertiaHistory, result.inertiaHistory.dropFirst()) {
            #expect(b <= a * (1 + 1e-6), "inertia rose from \(a) to \(b)")
        }
    }

    @Test("a warm start from converged centroids stops after one iteration with the same result")
    func warmStartFromConverged() {
        let points = blobs(seed: 9)
        let kmeans = KMeans(clusters: 5, seed: 1)
        let cold = kmeans.run(points)
        let warm = kmeans.run(points, initial: cold.centroids)
        #expect(warm.iterations == 1)
        #expect(warm.warm && !cold.warm)
        #expect(warm.labels == cold.labels)
        #expect(abs(warm.inertia - cold.inertia) <= 1e-6 * cold.inertia)
    }

    @Test("k-means++ with the same seed is reproducible; another seed starts elsewhere")
    func seeding() {
        let points = blobs(seed: 5)
        #expect(KMeans(clusters: 5, seed: 7).plusPlusSeeds(points) == KMeans(clusters: 5, seed: 7).plusPlusSeeds(points))
        #expect(KMeans(clusters: 5, seed: 7).plusPlusSeeds(points) != KMeans(clusters: 5, seed: 8).plusPlusSeeds(points))
        #expect(KMeans(clusters: 5, seed: 7).run(points).labels == KMeans(clusters: 5, seed: 7).run(points).labels)
    }

    @Test("an empty cluster is re-seeded at the farthest point and reported")
    func emptyClusterReseeded() {
        // Start two centroids far away from every point: one of them owns nothing after the first assignment.
        let points = PointSet(values: [0, 0.1, 0.2, 5, 5.1, 5.2], count: 6, dimension: 1)
        let result = KMeans(clusters: 3).run(points, initial: [0.1, 100, 200])
        #expect(result.reseeded)
        #expect(Set(result.labels).count == 3)
        #expect(result.centroids.allSatisfy { $0 < 6 })
    }

    @Test("warm-started frames need fewer iterations; a scene cut falls back to k-means++")
    func warmStream() {
        var stream = WarmStartKMeans(kmeans: KMeans(clusters: 5, seed: 0))
        let first = stream.cluster(blobs(seed: 11))
        #expect(!first.warm)
        let second = stream.cluster(blobs(seed: 11))
        #expect(second.warm && second.iterations == 1)
        // Same data shifted far away: the first warm assignment is far worse than before.
        let shifted = blobs(seed: 11)
        let moved = PointSet(values: shifted.values.map { $0 * 4 + 50 }, count: shifted.count, dimension: shifted.dimension)
        let cut = stream.cluster(moved)
        #expect(cut.reseeded && !cut.warm)
        stream.reset()
        #expect(!stream.cluster(blobs(seed: 11)).warm)
    }
}

@Suite("Cluster thresholding and regions")
struct ClusterThresholdTests {
    @Test("cluster confidence is the mean or median of its cells; empty clusters never flag")
    func confidence() {
        let labels: [Int32] = [0, 0, 0, 1, 1, 2]
        let cells: [Float] = [1, 2, 9, 5, 7, 3]
        #expect(ClusterThreshold.clusterConfidence(labels: labels, cells: cells, k: 4, statistic: .mean) == [4, 6, 3, .infinity])
        #expect(ClusterThreshold.clusterConfidence(labels: labels, cells: cells, k: 4, statistic: .median) == [2, 6, 3, .infinity])
    }

    @Test("nearest and bilinear grid upsampling")
    func upsampling() {
        let grid: [Float] = [0, 4]
        #expect(ScoreMaps.upsample(grid, gridWidth: 2, gridHeight: 1, width: 4, height: 1, bilinear: false) == [0, 0, 4, 4])
        // Half-pixel centres: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
        #expect(ScoreMaps.upsample(grid, gridWidth: 2, gridHeight: 1, width: 4, height: 1, bilinear: true) == [0, 1, 3, 4])
        // Flagged cells straight to a pixel mask: the nearest upsampling of 1/0 above one half.
        let cells = [true, false, false, true, true, false]
        let mask = ScoreMaps.nearest(cells, gridWidth: 3, gridHeight: 2, width: 7, height: 5)
        let flags = ScoreMaps.upsample(cells.map { $0 ? 1 : 0 }, gridWidth: 3, gridHeight: 2, width: 7, height: 5, bilinear: false)
        #expect(mask == flags.map { $0 > 0.5 } && mask.contains(true) && mask.contains(false))
        var heat: [Float] = [1, 2, 3]
        ScoreMaps.upsampleBilinear([0, 4], gridWidth: 2, gridHeight: 1, width: 4, height: 1, into: &heat)
        #expect(heat == [0, 1, 3, 4])
    }

    @Test("regions: 4-connected components with boxes and areas in output pixels, small ones dropped")
    func regions() {
        // 4x3 grid; flagged cells: a 2-cell blob at (0,0),(1,0) and a single cell at (3,2).
        let ood = [true, true, false, false,
                   false, false, false, false,
                   false, false, false, true]
        let labels: [Int32] = ood.map { $0 ? 1 : 0 }
        let kmeans = KMeansResult(centroids: [], labels: labels, iterations: 1, inertia: 0, firstAssignmentInertia: 0,
                                  warm: false, reseeded: false, inertiaHistory: [])
        let analysis = GridAnalysis(gridWidth: 4, gridHeight: 3, cellConfidence: Array(repeating: 0, count: 12),
                                    clusterings: [Clustering(kmeans: kmeans, confidence: [9, 1], outOfDistribution: [false, true])],
                                    gridScore: ood.map { $0 ? -1 : -9 }, oodCells: ood)
        let all = Regions.find(analysis, width: 40, height: 30)
        #expect(all.count == 2)
        #expect(all[0].box == [0, 0, 20, 10] && all[0].area == 200 && all[0].cluster == 1 && all[0].score == -1)
        #expect(all[1].box == [30, 20, 10, 10] && all[1].area == 100)
        #expect(Regions.find(analysis, width: 40, height: 30, minimumArea: 150).count == 1)
    }

    @Test("baselines: max-logit, MSP and entropy of known logits")
    func baselines() {
        // Two classes used of three channels; pixel 0 logits (2, 0), pixel 1 (1, 1). The third channel is ignored.
        let logits = Tensor(shape: [3, 1, 2], values: [2, 1, 0, 1, 50, 50])
        let maps = ScoreMaps.baselines(logits: logits, classes: 2, width: 2, height: 1)
        #expect(maps.maxLogit == [-2, -1])
        let p0 = 1 / (1 + exp(-2.0))
        #expect(abs(Double(maps.msp[0]) - -log(p0)) < 1e-6)
        #expect(abs(Double(maps.msp[1]) - log(2.0)) < 1e-6)
        #expect(abs(Double(maps.entropy[0]) - -(p0 * log(p0) + (1 - p0) * log(1 - p0))) < 1e-6)
        #expect(abs(Double(maps.entropy[1]) - log(2.0)) < 1e-6)
    }
}

@Suite("Score maps at a pixel stride")
struct SampledScoreMapTests {
    /// The sampled maps are the full maps' values at every stride-th row and column, bit for bit (eval video
    /// pools them; the metrics must be those of exactly those pixels).
    @Test("baselines, cluster maps and labels at strides 2, 3 and 8 equal the full maps sampled")
    func sampledEqualsFull() {
        let logits = Tensor(shape: [5, 7, 11], values: (0..<385).map { Float(($0 * 7919) % 1000) / 97 - 5 })
        let (width, height) = (61, 37)
        let full = ScoreMaps.baselines(logits: logits, classes: 4, width: width, height: height)
        let grid = (0..<(6 * 4)).map { Float(($0 * 37) % 11) }
        for stride in [2, 3, 8] {
            let part = ScoreMaps.baselines(logits: logits, classes: 4, width: width, height: height, stride: stride)
            #expect(part.maxLogit == ScoreMaps.sampled(full.maxLogit, width: width, height: height, stride: stride))
            #expect(part.msp == ScoreMaps.sampled(full.msp, width: width, height: height, stride: stride))
            #expect(part.entropy == ScoreMaps.sampled(full.entropy, width: width, height: height, stride: stride))
            for bilinear in [true, false] {
                let whole = ScoreMaps.upsample(grid, gridWidth: 6, gridHeight: 4, width: width, height: height, bilinear: bilinear)
                let some = ScoreMaps.upsample(grid, gridWidth: 6, gridHeight: 4, width: width, height: height, bilinear: bilinear, stride: stride)
                #expect(some == ScoreMaps.sampled(whole, width: width, height: height, stride: stride))
            }
            let count = ((width + stride - 1) / stride) * ((height + stride - 1) / stride)
            #expect(part.maxLogit.count == count)
        }
        let labels = (0..<(5 * 3)).map { UInt8($0) }
        #expect(ScoreMaps.sampled(labels, width: 5, height: 3, stride: 2) == [0, 2, 4, 10, 12, 14])
    }
}
