/// Smooths the per-cluster decision over time: warm-started K-Means keeps cluster identities from frame to
/// frame, so each cluster's confidence gets an exponential moving average, and a cluster turns OoD below
/// tau and back only above tau + hysteresis. Regions get track ids by overlap with the previous frame's.
/// The thresholding stage's state; a value, so whoever owns it owns its history.
public struct TemporalThreshold: Sendable {
    public let settings: MethodSettings

    private var average: [Double]?
    private var flagged: [Bool]?
    private var previousRegions: [(id: Int, cells: Set<Int>)] = []
    private var nextTrackID = 1

    public init(settings: MethodSettings = .default) {
        self.settings = settings
    }

    /// Forgets the history (after a scene cut, a reconnect or a cold K-Means start). Track ids keep counting,
    /// so a region after the break never reuses an id from before it.
    public mutating func reset() {
        average = nil
        flagged = nil
        previousRegions = []
    }

    /// A region with the track id it keeps while it overlaps its previous frame's self.
    public struct TrackedRegion: Sendable, Equatable {
        public var id: Int
        public var region: AnomalyRegion
        public init(id: Int, region: AnomalyRegion) {
            self.id = id
            self.region = region
        }
    }

    /// The frame's decision with smoothed confidences, hysteresis flags and tracked regions at width x height.
    /// `alarmCells`, when given, are the flagged cells (another rule's, e.g. `ChangeAlarm`) in place of the
    /// clusters' flags; regions and tracks follow them. `ignoredCells` (an ignore mask on the grid) never flag.
    public mutating func decide(_ clusterings: [KMeansResult], cellConfidence: [Float], gridWidth: Int, gridHeight: Int,
                                width: Int, height: Int, alarmCells: [Bool]? = nil,
                                ignoredCells: [Bool]? = nil) -> (analysis: GridAnalysis, regions: [TrackedRegion]) {
        if !clusterings[0].warm { reset() }  // new centroids: cluster identities do not carry over
        var confidence = ClusterDecision.confidences(clusterings, cellConfidence: cellConfidence, settings: settings)
        let current = confidence[0]
        var smoothed = current
        if let average, average.count == current.count {
            for j in 0..<current.count where current[j].isFinite && average[j].isFinite {
                smoothed[j] = average[j] + settings.smoothing * (current[j] - average[j])
            }
        }
        var state = smoothed.map { $0 < settings.tau }
        if let flagged, flagged.count == state.count {
            for j in 0..<state.count where flagged[j] { state[j] = smoothed[j] < settings.tau + settings.hysteresis }
        }
        average = smoothed
        flagged = state
        confidence[0] = smoothed
        var analysis = ClusterDecision.decide(clusterings, confidence: confidence, primaryOOD: state,
                                              cellConfidence: cellConfidence, gridWidth: gridWidth,
                                              gridHeight: gridHeight, settings: settings)
        if let alarmCells {
            precondition(alarmCells.count == analysis.oodCells.count)
            analysis.oodCells = alarmCells
        }
        if let ignoredCells {
            precondition(ignoredCells.count == analysis.oodCells.count)
            for i in ignoredCells.indices where ignoredCells[i] { analysis.oodCells[i] = false }
        }
        let regions = Regions.find(analysis, width: width, height: height, minimumArea: settings.minimumRegionArea)
        return (analysis, track(regions))
    }

    /// Gives each region the id of the previous region it overlaps most, or a new id.
    private mutating func track(_ regions: [AnomalyRegion]) -> [TrackedRegion] {
        var used = Set<Int>()
        var result: [TrackedRegion] = []
        for region in regions {
            let cells = Set(region.cells)
            var best: (id: Int, overlap: Int)?
            for previous in previousRegions where !used.contains(previous.id) {
                let overlap = previous.cells.intersection(cells).count
                guard overlap > 0 else { continue }
                if let current = best, current.overlap >= overlap { continue }
                best = (previous.id, overlap)
            }
            let id: Int
            if let best {
                id = best.id
            } else {
                id = nextTrackID
                nextTrackID += 1
            }
            used.insert(id)
            result.append(TrackedRegion(id: id, region: region))
        }
        previousRegions = result.map { ($0.id, Set($0.region.cells)) }
        return result
    }
}
