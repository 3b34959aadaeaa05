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
    private let size: (width: Int, height: Int)

    public init(model: LoadedModel, width: Int, height: Int) {
        self.model = model
        self.size = (width, height)
        preprocessor = Preprocessor(normalization: model.descriptor.normalization)
    }

    public func process(_ work: consuming FrameWork) -> FrameWork {
        var work = work
        let image = work.frame.image
        let (encoded, seconds) = timed {
            let input = preprocessor.tensor(rgb: image.samples, sourceWidth: image.width, sourceHeight: image.height,
                                            width: size.width, height: size.height)
            return model.network.backbone(input, capture: nil)
        }
        work.encoded = encoded
        work.networkSize = size
        work.timings.backbone = seconds
        return work
    }
}

/// Decoder stage: logits, the max-logit confidence grid, and the class map when the overlay wants it.
public actor DecoderStage {
    private let executor = StageExecutor(label: "roadwatch.decoder")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private let model: LoadedModel
    private let wantsClasses: Bool

    public init(model: LoadedModel, wantsClasses: Bool) {
        self.model = model
        self.wantsClasses = wantsClasses
    }

    public func process(_ work: consuming FrameWork) -> FrameWork {
        var work = work
        guard let encoded = work.encoded else { return work }
        let (_, seconds) = timed {
            let logits = model.network.decoder(encoded, capture: nil)
            let maxLogit = Confidence.maxLogit(logits, classes: model.descriptor.inDistributionClasses)
            work.cellConfidence = Confidence.cellMeans(maxLogit, width: logits.width, height: logits.height,
                                                       cell: model.network.featureStride)
            if wantsClasses { work.classes = Ops.argmax(logits).map { UInt8(truncatingIfNeeded: $0) } }
        }
        // Only the clustering features travel on.
        work.encoded = BackboneOutput(features: encoded.features, maps: [:])
        work.gridSize = (encoded.features.width, encoded.features.height)
        work.timings.decoder = seconds
        return work
    }
}

/// Clustering stage: owns the K-Means centroids carried from frame to frame.
public actor ClusteringStage {
    private let executor = StageExecutor(label: "roadwatch.clustering")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private let clusterer: FrameClusterer

    public init(settings: MethodSettings) { clusterer = FrameClusterer(settings: settings) }

    /// Forgets the centroids (after a reconnect or a seek).
    public func reset() { clusterer.reset() }

    public func process(_ work: consuming FrameWork) -> FrameWork {
        var work = work
        guard let features = work.encoded?.features else { return work }
        // After a break in the source the scene may be another: start from k-means++ again.
        if work.frame.gapBefore != nil { clusterer.reset() }
        let (clusterings, seconds) = timed { clusterer.cluster(features, warm: true) }
        work.clusterings = clusterings
        work.encoded = nil
        work.timings.clustering = seconds
        return work
    }
}

/// Thresholding stage: owns the temporal state (moving average, hysteresis, region tracks).
public actor ThresholdingStage {
    private let executor = StageExecutor(label: "roadwatch.thresholding")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private let threshold: TemporalThreshold

    public init(settings: MethodSettings, minimumRegionArea: Int) {
        threshold = TemporalThreshold(settings: settings, minimumRegionArea: minimumRegionArea)
    }

    public func reset() { threshold.reset() }

    public func process(_ work: consuming FrameWork) -> FrameWork {
        var work = work
        guard !work.clusterings.isEmpty else { return work }
        if work.frame.gapBefore != nil { threshold.reset() }
        let size = work.frame.image
        let (decision, seconds) = timed {
            threshold.decide(work.clusterings, cellConfidence: work.cellConfidence, gridWidth: work.gridSize.width,
                             gridHeight: work.gridSize.height, width: size.width, height: size.height)
        }
        work.analysis = decision.analysis
        work.regions = decision.regions
        work.timings.thresholding = seconds
        return work
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

    public init(mode: OverlayMode, palette: [[UInt8]], tau: Double) {
        self.mode = mode
        self.palette = palette
        self.tau = tau
    }

    public func process(_ work: consuming FrameWork) -> FrameWork {
        var work = work
        guard let analysis = work.analysis else { return work }
        let now = ContinuousClock.now
        if let lastArrival {
            let d = now - lastArrival
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            if seconds > 0 { rate = rate == 0 ? 1 / seconds : rate + 0.1 * (1 / seconds - rate) }
        }
        lastArrival = now
        let image = work.frame.image
        let w = image.width, h = image.height
        let (annotated, seconds) = timed { () -> RGBImage in
            let flags = ScoreMaps.upsample(analysis.oodCells.map { $0 ? 1 : 0 }, gridWidth: analysis.gridWidth,
                                           gridHeight: analysis.gridHeight, width: w, height: h, bilinear: false)
            let mask = flags.map { $0 > 0.5 }
            work.mask = mask
            guard mode != .none else { return image }
            var annotation = FrameAnnotation(palette: palette)
            if mode == .heat || mode == .both {
                // Heat rises as a cluster's confidence falls below tau + 2 and is full at tau - 1, so clusters
                // near the threshold show before they raise the alarm (outline and box).
                let grid = analysis.gridScore.map { score -> Float in
                    min(1, max(0, (Float(tau) + 2 + score) / 3))
                }
                annotation.heat = ScoreMaps.upsample(grid, gridWidth: analysis.gridWidth, gridHeight: analysis.gridHeight,
                                                     width: w, height: h, bilinear: true)
                annotation.mask = mask
                annotation.regions = work.regions.map { RegionMark(box: $0.region.box, score: -$0.region.score, trackID: $0.id) }
            }
            if mode == .segmentation || mode == .both, let classes = work.classes {
                annotation.classes = nearestResize(classes, from: work.networkSize, toWidth: w, height: h)
            }
            let kmeans = work.clusterings.first
            let fraction = Double(mask.filter { $0 }.count) / Double(max(1, mask.count))
            annotation.hud = [
                String(format: "T %@  FRAME %d", clockText(work.frame.time), work.frame.index),
                String(format: "%.1f FPS  KMEANS %d IT %@", rate, kmeans?.iterations ?? 0,
                       kmeans.map { $0.reseeded ? "RESEED" : ($0.warm ? "WARM" : "COLD") } ?? ""),
                String(format: "ANOMALY %.1f%%  REGIONS %d", 100 * fraction, work.regions.count),
                String(format: "LATENCY %d MS  DROPPED %d", Int((work.arrival.secondsSince * 1000).rounded()),
                       work.frame.droppedBefore),
            ]
            return AnomalyOverlay.draw(annotation, on: image)
        }
        work.annotated = annotated
        work.timings.annotate = seconds
        return work
    }

    private func clockText(_ seconds: Double) -> String {
        let total = max(0, seconds)
        return String(format: "%02d:%05.2f", Int(total) / 60, total.truncatingRemainder(dividingBy: 60))
    }

    private func nearestResize(_ classes: [UInt8], from size: (width: Int, height: Int), toWidth w: Int, height h: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: w * h)
        let columns = (0..<w).map { min(size.width - 1, $0 * size.width / w) }
        for y in 0..<h {
            let row = min(size.height - 1, y * size.height / h) * size.width
            for x in 0..<w { out[y * w + x] = classes[row + columns[x]] }
        }
        return out
    }
}
