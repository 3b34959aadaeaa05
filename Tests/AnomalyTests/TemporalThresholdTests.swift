import Testing
@testable import Anomaly

/// The temporal threshold on a 2-cell grid with one cell per cluster (K = 2), so each cluster's raw
/// confidence is its cell's value and every expected number below is worked out by hand.
@Suite("Temporal threshold: moving average, hysteresis, tracks")
struct TemporalThresholdTests {
    /// tau 5, smoothing 0.5, hysteresis 1: a flagged cluster clears only above 6.
    static let settings = MethodSettings(clusterCounts: [2], tau: 5, smoothing: 0.5, hysteresis: 1, minimumRegionArea: 0)

    /// A frame whose cluster 0 owns cell 0 and cluster 1 owns cell 1 (or swapped), with those raw confidences.
    static func frame(_ threshold: inout TemporalThreshold, _ c0: Float, _ c1: Float, warm: Bool = true,
                      swapped: Bool = false) -> (analysis: GridAnalysis, regions: [TemporalThreshold.TrackedRegion]) {
        let labels: [Int32] = swapped ? [1, 0] : [0, 1]
        let kmeans = KMeansResult(centroids: [], labels: labels, iterations: 1, inertia: 0, firstAssignmentInertia: 0,
                                  warm: warm, reseeded: false, inertiaHistory: [])
        let cells: [Float] = swapped ? [c1, c0] : [c0, c1]
        return threshold.decide([kmeans], cellConfidence: cells, gridWidth: 2, gridHeight: 1, width: 20, height: 10)
    }

    @Test("moving average and hysteresis in both directions, against hand-computed values")
    func smoothingAndHysteresis() {
        var t = TemporalThreshold(settings: Self.settings)
        // Frame 1 (cold): no history, so the raw values: 4 < 5 flags cluster 0.
        var r = Self.frame(&t, 4, 8, warm: false)
        #expect(r.analysis.clusterings[0].confidence == [4, 8])
        #expect(r.analysis.oodCells == [true, false])
        // Frame 2: 4 + 0.5 (7 - 4) = 5.5. Above tau, but a flagged cluster stays flagged below tau + 1 = 6.
        r = Self.frame(&t, 7, 8)
        #expect(r.analysis.clusterings[0].confidence == [5.5, 8])
        #expect(r.analysis.oodCells == [true, false])
        // Frame 3: 5.5 + 0.5 (7 - 5.5) = 6.25 > 6: clears.
        r = Self.frame(&t, 7, 8)
        #expect(r.analysis.clusterings[0].confidence == [6.25, 8])
        #expect(r.analysis.oodCells == [false, false])
        // Frame 4: 6.25 + 0.5 (5.5 - 6.25) = 5.875: below tau + 1 but not below tau, and it is clear: stays clear.
        r = Self.frame(&t, 5.5, 8)
        #expect(r.analysis.clusterings[0].confidence == [5.875, 8])
        #expect(r.analysis.oodCells == [false, false])
        // Frame 5: 5.875 + 0.5 (3 - 5.875) = 4.4375 < 5: flags again.
        r = Self.frame(&t, 3, 8)
        #expect(r.analysis.clusterings[0].confidence == [4.4375, 8])
        #expect(r.analysis.oodCells == [true, false])
        // The grid score is minus the smoothed confidence of each cell's cluster.
        #expect(r.analysis.gridScore == [-4.4375, -8])
    }

    @Test("without smoothing and hysteresis the decision is the raw rule of the frame alone")
    func rawRule() {
        var settings = Self.settings
        settings.smoothing = 1
        settings.hysteresis = 0
        var t = TemporalThreshold(settings: settings)
        _ = Self.frame(&t, 4, 8, warm: false)
        let r = Self.frame(&t, 5.5, 8)
        #expect(r.analysis.clusterings[0].confidence == [5.5, 8])
        #expect(r.analysis.oodCells == [false, false])
        #expect(r.analysis.clusterings[0].outOfDistribution
            == ClusterDecision.decide(r.analysis.clusterings.map(\.kmeans), cellConfidence: [5.5, 8], gridWidth: 2,
                                      gridHeight: 1, settings: settings).clusterings[0].outOfDistribution)
    }

    @Test("a region keeps its track id while it overlaps itself; after a gap or a cold start it gets a new one")
    func tracks() {
        var t = TemporalThreshold(settings: Self.settings)
        var r = Self.frame(&t, 4, 8, warm: false)
        #expect(r.regions.map(\.id) == [1])
        #expect(r.regions[0].region.box == [0, 0, 10, 10] && r.regions[0].region.area == 100)
        r = Self.frame(&t, 4, 8)
        #expect(r.regions.map(\.id) == [1])  // same cell: same track
        r = Self.frame(&t, 9, 9)  // 4 + 0.5 (9 - 4) = 6.5 > 6: clears, no regions
        #expect(r.regions.isEmpty)
        r = Self.frame(&t, 1, 9)  // 6.5 + 0.5 (1 - 6.5) = 3.75: flagged again after a frame without it
        #expect(r.regions.map(\.id) == [2])
        // A cold K-Means start forgets the history: the raw values decide, and the region is a new track.
        r = Self.frame(&t, 9, 2, warm: false)
        #expect(r.analysis.clusterings[0].confidence == [9, 2])
        #expect(r.analysis.oodCells == [false, true])
        #expect(r.regions.map(\.id) == [3])
        #expect(r.regions[0].region.box == [10, 0, 10, 10])
        // reset() (a reconnect) does the same; ids keep counting.
        t.reset()
        r = Self.frame(&t, 9, 2)
        #expect(r.regions.map(\.id) == [4])
    }

    @Test("regions below the minimum area are not reported, but the cells stay flagged")
    func minimumArea() {
        var settings = Self.settings
        settings.minimumRegionArea = 101  // each cell is 10 x 10 = 100 frame pixels
        var t = TemporalThreshold(settings: settings)
        let r = Self.frame(&t, 4, 8, warm: false)
        #expect(r.analysis.oodCells == [true, false])
        #expect(r.regions.isEmpty)
    }
}
