import Anomaly
import Foundation
import Models
import Pipeline
import Synchronization
import VideoIO

/// Scoring the monitor's output against ground truth. Every evaluation runs the monitor's own stages, so it
/// measures exactly what `run` ships (for video: the temporal smoothing and hysteresis included).
public enum Evaluation {
    /// The four scores every evaluation reports, in a fixed order.
    public static let methods = ["clusters", "max-logit", "msp", "entropy"]

    /// The monitor for evaluation: no overlay, the network's outputs kept for the baselines.
    public static func monitor(model: LoadedModel, size: FrameSize, settings: MethodSettings,
                               independentFrames: Bool, memory: MemoryBank? = nil) throws -> Monitor {
        var configuration = Monitor.Configuration(size: size, settings: settings, overlay: .none)
        configuration.memory = memory
        configuration.keepsTensors = true
        configuration.independentFrames = independentFrames
        return try Monitor(model: model, configuration: configuration)
    }

    /// The score maps of one frame at its size, in `methods` order (higher = more anomalous); with
    /// `stride` > 1 only at every `stride`-th row and column from 0 (`ScoreMaps.sampled` picks the labels).
    public static func scoreMaps(_ done: MonitoredFrame, classes: Int, settings: MethodSettings, stride: Int = 1) -> [[Float]] {
        guard let kept = done.kept else { preconditionFailure("the monitor must keep its tensors for evaluation") }
        let width = done.frame.image.width, height = done.frame.image.height
        let baselines = ScoreMaps.baselines(logits: kept.logits, classes: classes, width: width, height: height, stride: stride)
        let clusters = ScoreMaps.clusters(done.analysis, variant: settings.score, width: width, height: height,
                                          negativeMaxLogit: baselines.maxLogit, stride: stride)
        return [clusters, baselines.maxLogit, baselines.msp, baselines.entropy]
    }
}

/// Images of a RoadAnomaly folder as frames, read one at a time.
struct DatasetFrames: AsyncSequence, Sendable {
    let items: [RoadAnomalyDataset.Item]

    struct Iterator: AsyncIteratorProtocol {
        let items: [RoadAnomalyDataset.Item]
        var index = 0
        mutating func next() async throws -> VideoFrame? {
            guard index < items.count else { return nil }
            defer { index += 1 }
            let picture = try StillImage.readRGB(items[index].image)
            return VideoFrame(index: index, pts: Int64(index), timeBase: Rational(1, 1),
                              sourceSize: FrameSize(width: picture.width, height: picture.height), image: picture)
        }
    }

    func makeAsyncIterator() -> Iterator { Iterator(items: items) }
}

/// `eval road-anomaly`: every image through the monitor as its own scene (k-means++ with the fixed seed, no
/// temporal history), pixels pooled over the images.
public enum ImageEvaluation {
    public struct ImageResult: Sendable {
        public var name: String
        /// AP of each method on this image alone (NaN without anomaly pixels).
        public var ap: [String: Double]
        public var clusterConfidence: [Double]
        public var iterations: Int
        public var inertia: Double
    }

    public struct Result: Sendable {
        public var metrics: [String: DetectionMetrics]
        public var pixels: Int
        public var images: [ImageResult]
        public var seconds: Double
    }

    public static func run(_ dataset: RoadAnomalyDataset, model: LoadedModel, size: FrameSize, settings: MethodSettings,
                           onImage: @escaping @Sendable (ImageResult) -> Void = { _ in }) async throws -> Result {
        let monitor = try Evaluation.monitor(model: model, size: size, settings: settings, independentFrames: true)
        let pool = Mutex(PixelPool(methods: Evaluation.methods))
        let results = Mutex<[ImageResult]>([])
        let items = dataset.items
        let classes = model.descriptor.inDistributionClasses
        let started = ContinuousClock.now
        _ = try await monitor.run(DatasetFrames(items: items)) { done in
            let item = items[done.frame.index]
            let labels = try StillImage.readGray8(item.labels)
            let image = done.frame.image
            guard labels.width == image.width, labels.height == image.height else {
                throw JobError("label file '\(item.labels)' is \(labels.width)x\(labels.height), its image is \(image.width)x\(image.height)")
            }
            let maps = Evaluation.scoreMaps(done, classes: classes, settings: settings)
            try pool.withLock { pool in try pooling { try pool.add(labels: labels.samples, scores: maps) } }
            let single = PixelPool(methods: Evaluation.methods)
            try pooling { try single.add(labels: labels.samples, scores: maps) }
            let primary = done.analysis.clusterings[0]
            let result = ImageResult(name: item.name, ap: try pooling { try single.metrics() }.mapValues(\.ap),
                                     clusterConfidence: primary.confidence.sorted(), iterations: primary.kmeans.iterations,
                                     inertia: primary.kmeans.inertia)
            results.withLock { $0.append(result) }
            onImage(result)
        }
        let metrics = try pool.withLock { pool in try pooling { try pool.metrics() } }
        return pool.withLock { pool in
            Result(metrics: metrics, pixels: pool.count, images: results.withLock { $0 }, seconds: started.secondsSince)
        }
    }
}

/// `eval video`: a clip's frames through the monitor (every `every`-th, warm-started across them), scored
/// against per-frame masks `MASKS/NNNNN.png`; K-Means warm against a cold k-means++ run on the same features.
public enum VideoEvaluation {
    public struct Result: Sendable {
        public var frames: Int
        public var metrics: [String: DetectionMetrics]
        /// Pixels pooled for the metrics, and the stride they were taken at (1: every pixel).
        public var pixels: Int
        public var pixelStride: Int
        public var cleanFrames: Int
        /// Pixels flagged on frames whose mask has no anomaly, as a fraction of those frames' pixels.
        public var cleanFalseAlarmFraction: Double
        public var firstIterations: Int
        public var warmIterations: Double
        public var coldIterations: Double
        public var inertiaRatio: Double
        public var seconds: Double
        /// The binary decision per frame: hits, clean and stray alarms, first hit, pixel precision and recall.
        public var alarms: AlarmMetrics
        /// Events, the delay to the first alarm, coverage of the object's time, components.
        public var events: EventMetrics
    }

    public static func maskPath(_ masks: String, frame: Int) -> String {
        URL(fileURLWithPath: masks).appendingPathComponent(String(format: "%05d.png", frame)).path
    }

    /// `masks` nil: every frame is clean. `poolsPixels` false skips the pooled AP/FPR95; `pixelStride` pools
    /// only every `pixelStride`-th row and column of each frame (a 1,000-frame 720p clip at stride 8 pools 14.4 M
    /// pixels; past 2 M a chunk of 32 bytes a pixel is sorted and spilled to a temporary file, so memory does not
    /// grow with the clip). The alarm metrics always use every pixel.
    public static func run(video: String, masks: String?, every: Int, model: LoadedModel, size: FrameSize,
                           memory: MemoryBank? = nil, settings: MethodSettings, poolsPixels: Bool = true, pixelStride: Int = 1,
                           onWarning: @escaping @Sendable (String) -> Void = { _ in },
                           onFrame: @escaping @Sendable (Int) -> Void = { _ in }) async throws -> Result {
        precondition(every >= 1 && pixelStride >= 1)
        let monitor = try Evaluation.monitor(model: model, size: size, settings: settings, independentFrames: false,
                                             memory: memory)
        let cold = KMeans(clusters: settings.clusterCounts[0], maxIterations: settings.maxIterations,
                          tolerance: settings.tolerance, seed: settings.seed)
        let source = try await VideoSource.open(video, options: InputOptions(onWarning: onWarning))
        // Fail before any work when the container says how many frames there are and a mask is missing.
        if let masks, let frames = source.info.frameCount {
            for index in stride(from: 0, to: frames, by: every) where !FileManager.default.fileExists(atPath: maskPath(masks, frame: index)) {
                throw JobError("mask '\(maskPath(masks, frame: index))' for frame \(index) is missing")
            }
        }
        struct Tally {
            var warm: [Int] = [], cold: [Int] = [], ratios: [Double] = []
            var first: Int?
            var cleanFlagged = 0, cleanPixels = 0, cleanFrames = 0, scored = 0
            var alarms = AlarmMetrics()
            var events: EventScorer
        }
        let tally = Mutex(Tally(events: EventScorer(tau: settings.tau)))
        // Pooled pixels beyond a chunk are sorted and spilled to a temporary file: memory stays flat however long the clip.
        let pool = Mutex(PixelPool(methods: Evaluation.methods))
        let classes = model.descriptor.inDistributionClasses
        let started = ContinuousClock.now
        _ = try await monitor.run(source.filter { $0.index % every == 0 }) { done in
            let image = done.frame.image
            var labels: [UInt8]?
            if let masks {
                let path = maskPath(masks, frame: done.frame.index)
                guard FileManager.default.fileExists(atPath: path) else {
                    throw JobError("mask '\(path)' for frame \(done.frame.index) is missing")
                }
                let mask = try StillImage.readGray8(path)
                guard mask.width == image.width, mask.height == image.height else {
                    throw JobError("mask '\(path)' is \(mask.width)x\(mask.height), the video is \(image.width)x\(image.height)")
                }
                labels = mask.samples
            }
            let kmeans = done.kmeans
            var reference: KMeansResult?
            if kmeans.warm, let features = done.kept?.features { reference = cold.run(FeatureVectors.normalized(features)) }
            if poolsPixels {
                let maps = Evaluation.scoreMaps(done, classes: classes, settings: settings, stride: pixelStride)
                let truth = labels.map { ScoreMaps.sampled($0, width: image.width, height: image.height, stride: pixelStride) }
                    ?? [UInt8](repeating: GroundTruth.inDistribution, count: maps[0].count)
                try pool.withLock { pool in try pooling { try pool.add(labels: truth, scores: maps) } }
            }
            let clean = !(labels?.contains(GroundTruth.anomaly) ?? false)
            let flagged = clean ? done.mask.lazy.filter { $0 }.count : 0
            tally.withLock { t in
                if let reference {
                    t.warm.append(kmeans.iterations)
                    t.cold.append(reference.iterations)
                    t.ratios.append(kmeans.inertia / max(reference.inertia, 1e-12))
                } else if !kmeans.warm && t.first == nil {
                    t.first = kmeans.iterations
                }
                if clean {
                    t.cleanFlagged += flagged
                    t.cleanPixels += done.mask.count
                    t.cleanFrames += 1
                }
                t.scored += 1
                t.alarms.add(frame: done.frame.index, flagged: done.mask, labels: labels, width: image.width, height: image.height)
                t.events.add(time: done.frame.time, regions: done.regions, alarmScores: done.alarmScores, flagged: done.mask,
                             labels: labels, width: image.width, height: image.height)
            }
            onFrame(done.frame.index)
        }
        var t = tally.withLock { $0 }
        let events = t.events.finish()
        guard t.scored > 0 else { throw JobError("'\(video)' has no frames to score") }
        func mean<T: BinaryInteger>(_ xs: [T]) -> Double { xs.isEmpty ? .nan : Double(xs.reduce(0, +)) / Double(xs.count) }
        let metrics = try pool.withLock { pool in try pooling { try pool.metrics() } }
        return pool.withLock { pool in
            Result(frames: t.scored, metrics: metrics, pixels: pool.count, pixelStride: pixelStride, cleanFrames: t.cleanFrames,
                   cleanFalseAlarmFraction: t.cleanPixels > 0 ? Double(t.cleanFlagged) / Double(t.cleanPixels) : 0,
                   firstIterations: t.first ?? 0, warmIterations: mean(t.warm), coldIterations: mean(t.cold),
                   inertiaRatio: t.ratios.isEmpty ? .nan : t.ratios.reduce(0, +) / Double(t.ratios.count),
                   seconds: started.secondsSince, alarms: t.alarms, events: events)
        }
    }
}

/// Runs a step of the pooled metrics, its temporary file's failure as a `JobError` in the jobs' words
/// ("No space left on device (ENOSPC)"; a full disk counts as one for `JobError.isDiskFull`).
func pooling<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as PixelPoolError {
        throw JobError(error.describe(naming: describeErrno), errno: error.errno)
    }
}
