import Anomaly
import Foundation
import Models
import Overlay
import Tensors
import VideoIO

/// Backbone stage: preprocessing and the encoder; owns their activation memory.
public actor BackboneStage {
    private let executor = StageExecutor(label: "roadwatch.backbone")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private let model: LoadedModel
    private let preprocessor: Preprocessor
    private let size: FrameSize

    public init(model: LoadedModel, size: FrameSize) {
        self.model = model
        self.size = size
        preprocessor = Preprocessor(normalization: model.descriptor.normalization)
    }

    public func process(_ trace: consuming FrameTrace) -> EncodedFrame {
        var trace = trace
        let image = trace.frame.image
        let (encoded, seconds) = stageWork {
            let input = preprocessor.tensor(rgb: image.samples, sourceWidth: image.width, sourceHeight: image.height,
                                            width: size.width, height: size.height)
            return model.network.backbone(input, capture: nil)
        }
        trace.timings.backbone = seconds
        return EncodedFrame(trace: trace, encoded: encoded, networkSize: size)
    }
}

/// Decoder stage: logits, the max-logit confidence grid, and the class map when the overlay wants it.
public actor DecoderStage {
    private let executor = StageExecutor(label: "roadwatch.decoder")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private let model: LoadedModel
    private let wantsClasses: Bool
    private let keepsTensors: Bool
    /// The road class, when the change alarm needs the drivable area.
    private let roadClass: UInt8?

    /// The drivable area needs road on both sides of a cell along its row and its column (the memory rule).
    private let enclosedArea: Bool

    public init(model: LoadedModel, wantsClasses: Bool, keepsTensors: Bool = false, wantsDrivableArea: Bool = false,
                enclosedArea: Bool = false) {
        self.enclosedArea = enclosedArea
        self.model = model
        self.wantsClasses = wantsClasses
        self.keepsTensors = keepsTensors
        roadClass = wantsDrivableArea ? model.descriptor.classNames.firstIndex(of: "road").map { UInt8($0) } : nil
        drivableEverywhere = wantsDrivableArea && roadClass == nil
    }

    /// A model without a road class: the change alarm looks at the whole frame.
    private let drivableEverywhere: Bool

    public func process(_ input: consuming EncodedFrame) -> ScoredFrame {
        var trace = input.trace
        let encoded = input.encoded
        let ((logits, cells, classes, drivable), seconds) = stageWork { () -> (Tensor?, [Float], [UInt8]?, [Bool]?) in
            // The scores are summarised a row at a time; the full-size tensor is made only when it is kept.
            let scores = model.network.decoderScores(encoded)
            let stride = model.network.featureStride
            let summary = Confidence.summary(scores, classes: model.descriptor.inDistributionClasses, cell: stride,
                                             classMap: wantsClasses, cellClasses: roadClass != nil)
            let cells = summary.cellConfidence
            var drivable: [Bool]?
            if let roadClass, let cellClasses = summary.cellClasses {
                drivable = ChangeAlarm.drivable(classes: cellClasses, roadClass: roadClass,
                                                width: scores.width / stride, height: scores.height / stride,
                                                enclosed: enclosedArea)
            } else if drivableEverywhere {
                drivable = [Bool](repeating: true, count: cells.count)
            }
            return (keepsTensors ? scores.materialized() : nil, cells, summary.classMap, drivable)
        }
        trace.timings.decoder = seconds
        // Only the clustering features travel on (and the logits when asked for).
        let features = encoded.features
        return ScoredFrame(trace: trace, features: features, cellConfidence: cells,
                           gridSize: FrameSize(width: features.width, height: features.height),
                           networkSize: input.networkSize, classes: classes, drivable: drivable,
                           kept: logits.map { KeptTensors(logits: $0, features: features) })
    }
}

/// Clustering stage: owns the K-Means centroids carried from frame to frame.
public actor ClusteringStage {
    private let executor = StageExecutor(label: "roadwatch.clustering")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var clusterer: FrameClusterer
    /// The change alarm's memory of the stream's features (only with that rule).
    private var memory: NoveltyMemory?
    /// The memory rule's memory of normal road (only with that rule).
    private var roadMemory: RoadMemory?
    /// The normalised feature vectors' memory, written again by every frame.
    private var pointRows: [Float] = []

    public init(settings: MethodSettings, memory prior: MemoryBank? = nil) {
        clusterer = FrameClusterer(settings: settings)
        memory = settings.alarm == .change ? NoveltyMemory(settings: settings) : nil
        roadMemory = settings.alarm == .memory
            ? RoadMemory(settings: settings.roadMemory, interval: settings.alarmInterval, prior: prior) : nil
    }

    public func process(_ input: consuming ScoredFrame) -> ClusteredFrame {
        var trace = input.trace
        let features = input.features
        let ((clusterings, novelty), seconds) = stageWork { () -> ([KMeansResult], [Float]?) in
            let points = FeatureVectors.normalized(features, reusing: &pointRows)
            // After a break in the source the scene may be another: start from k-means++ again.
            if trace.startsAfresh {
                memory?.reset()
                roadMemory?.reset()
            }
            var novelty = memory?.novelty(points, time: trace.frame.time).novelty
            if roadMemory != nil {
                let grid = input.gridSize
                novelty = roadMemory!.step(points, drivable: input.drivable ?? [Bool](repeating: true, count: points.count),
                                           gridWidth: grid.width, gridHeight: grid.height, time: trace.frame.time).novelty
            }
            return (clusterer.cluster(points: points, warm: !trace.startsAfresh), novelty)
        }
        trace.timings.clustering = seconds
        return ClusteredFrame(trace: trace, clusterings: clusterings, novelty: novelty, drivable: input.drivable,
                              cellConfidence: input.cellConfidence,
                              gridSize: input.gridSize, networkSize: input.networkSize, classes: input.classes,
                              kept: input.kept)
    }
}

/// Thresholding stage: owns the temporal state (moving average, hysteresis, region tracks).
public actor ThresholdingStage {
    private let executor = StageExecutor(label: "roadwatch.thresholding")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var threshold: TemporalThreshold
    /// The change alarm's per-cell statistics (only with that rule).
    private var alarm: ChangeAlarm?
    /// The memory rule's tracks, and the novelty of its last tick (the events' scores).
    private var tracker: ObstacleTracker?
    private var lastNovelty: [Float]?
    private let ignore: IgnoreMask?
    /// The ignore mask on the last grid size seen: cells whose centre is inside.
    private var ignoredCells: (size: FrameSize, cells: [Bool])?

    public init(settings: MethodSettings, ignore: IgnoreMask? = nil) {
        threshold = TemporalThreshold(settings: settings)
        alarm = settings.alarm == .change ? ChangeAlarm(settings: settings) : nil
        tracker = settings.alarm == .memory ? ObstacleTracker(settings: settings.obstacleTracker, interval: settings.alarmInterval) : nil
        self.ignore = ignore.flatMap { $0.isEmpty ? nil : $0 }
    }

    private func ignored(on grid: FrameSize) -> [Bool]? {
        guard let ignore else { return nil }
        if let ignoredCells, ignoredCells.size == grid { return ignoredCells.cells }
        let cells = ignore.raster(width: grid.width, height: grid.height)
        ignoredCells = (grid, cells)
        return cells
    }

    public func process(_ input: consuming ClusteredFrame) -> DecidedFrame {
        var trace = input.trace
        if trace.startsAfresh {
            threshold.reset()
            alarm?.reset()
            tracker?.reset()
            lastNovelty = nil
        }
        let image = trace.frame.image
        let grid = input.gridSize
        let ignoredCells = ignored(on: grid)
        let (decision, seconds) = stageWork { () -> (analysis: GridAnalysis, regions: [TemporalThreshold.TrackedRegion]) in
            var cells = alarm?.decide(time: trace.frame.time, cellConfidence: input.cellConfidence, novelty: input.novelty,
                                      drivable: input.drivable ?? [Bool](repeating: true, count: input.cellConfidence.count),
                                      gridWidth: grid.width, gridHeight: grid.height)
            if tracker != nil {
                cells = tracker!.decide(time: trace.frame.time, novelty: input.novelty, gridWidth: grid.width, gridHeight: grid.height)
                if let novelty = input.novelty { lastNovelty = novelty }
            }
            return threshold.decide(input.clusterings, cellConfidence: input.cellConfidence, gridWidth: grid.width,
                                    gridHeight: grid.height, width: image.width, height: image.height, alarmCells: cells,
                                    ignoredCells: ignoredCells)
        }
        trace.timings.thresholding = seconds
        return DecidedFrame(trace: trace, analysis: decision.analysis, regions: decision.regions,
                            alarmScores: alarm?.lastScore ?? lastNovelty, networkSize: input.networkSize, classes: input.classes,
                            kept: input.kept)
    }
}

/// Annotate stage: the mask at frame size, the heat map, outlines, boxes, optional segmentation tint, HUD.
public actor AnnotateStage {
    private let executor = StageExecutor(label: "roadwatch.annotate")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private let mode: OverlayMode
    private let palette: [[UInt8]]
    private let tau: Double
    private var rate = 0.0
    private var lastArrival: ContinuousClock.Instant?
    private let ignore: IgnoreMask?
    /// The ignore mask at the last frame size seen.
    private var ignoredPixels: (size: FrameSize, pixels: [Bool])?
    /// The heat map's memory, written again by every frame (the overlay is drawn before the next).
    private var heat: [Float] = []

    public init(mode: OverlayMode, palette: [[UInt8]], tau: Double, ignore: IgnoreMask? = nil) {
        self.mode = mode
        self.palette = palette
        self.tau = tau
        self.ignore = ignore.flatMap { $0.isEmpty ? nil : $0 }
    }

    private func ignored(width: Int, height: Int) -> [Bool]? {
        guard let ignore else { return nil }
        let size = FrameSize(width: width, height: height)
        if let ignoredPixels, ignoredPixels.size == size { return ignoredPixels.pixels }
        let pixels = ignore.raster(width: width, height: height)
        ignoredPixels = (size, pixels)
        return pixels
    }

    public func process(_ input: consuming DecidedFrame) -> MonitoredFrame {
        var trace = input.trace
        let analysis = input.analysis
        let regions = input.regions
        let now = ContinuousClock.now
        if let lastArrival {
            let seconds = lastArrival.duration(to: now)
            let s = Double(seconds.components.seconds) + Double(seconds.components.attoseconds) * 1e-18
            if s > 0 { rate = rate == 0 ? 1 / s : rate + 0.1 * (1 / s - rate) }
        }
        lastArrival = now
        let image = trace.frame.image
        let w = image.width, h = image.height
        let ignoredPixels = ignored(width: w, height: h)
        let ((mask, annotated), seconds) = stageWork { () -> ([Bool], RGBImage) in
            var mask = ScoreMaps.nearest(analysis.oodCells, gridWidth: analysis.gridWidth, gridHeight: analysis.gridHeight,
                                         width: w, height: h)
            if let ignoredPixels { for i in mask.indices where ignoredPixels[i] { mask[i] = false } }
            guard mode != .none else { return (mask, image) }
            var annotation = FrameAnnotation(palette: palette)
            annotation.ignored = ignoredPixels
            if mode == .heat || mode == .both {
                // Heat rises as a cluster's confidence falls below tau + 2 and is full at tau - 1, so clusters
                // near the threshold show before they raise the alarm (outline and box).
                let grid = analysis.gridScore.map { score -> Float in
                    min(1, max(0, (Float(tau) + 2 + score) / 3))
                }
                ScoreMaps.upsampleBilinear(grid, gridWidth: analysis.gridWidth, gridHeight: analysis.gridHeight,
                                           width: w, height: h, into: &heat)
                annotation.heat = heat
                annotation.mask = mask
                annotation.regions = regions.map { RegionMark(box: $0.region.box, score: -$0.region.score, trackID: $0.id) }
            }
            if mode == .segmentation || mode == .both, let classes = input.classes {
                annotation.classes = nearestResize(classes, from: input.networkSize, toWidth: w, height: h)
            }
            let kmeans = analysis.clusterings[0].kmeans
            let fraction = Double(mask.lazy.filter { $0 }.count) / Double(max(1, mask.count))
            annotation.hud = [
                String(format: "T %@  FRAME %d", clockText(trace.frame.time), trace.frame.index),
                String(format: "%.1f FPS  KMEANS %d IT %@", rate, kmeans.iterations,
                       kmeans.reseeded ? "RESEED" : (kmeans.warm ? "WARM" : "COLD")),
                String(format: "ANOMALY %.1f%%  REGIONS %d", 100 * fraction, regions.count),
                String(format: "LATENCY %d MS  DROPPED %d", Int((trace.arrival.secondsSince * 1000).rounded()),
                       trace.frame.droppedBefore),
            ]
            return (mask, AnomalyOverlay.draw(annotation, on: image))
        }
        trace.timings.annotate = seconds
        return MonitoredFrame(trace: trace, analysis: analysis, regions: regions, alarmScores: input.alarmScores, mask: mask,
                              annotated: annotated, kept: input.kept)
    }

    private func clockText(_ seconds: Double) -> String {
        let total = max(0, seconds)
        return String(format: "%02d:%05.2f", Int(total) / 60, total.truncatingRemainder(dividingBy: 60))
    }

    private func nearestResize(_ classes: [UInt8], from size: FrameSize, toWidth w: Int, height h: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: w * h)
        let columns = (0..<w).map { min(size.width - 1, $0 * size.width / w) }
        for y in 0..<h {
            let row = min(size.height - 1, y * size.height / h) * size.width
            for x in 0..<w { out[y * w + x] = classes[row + columns[x]] }
        }
        return out
    }
}
