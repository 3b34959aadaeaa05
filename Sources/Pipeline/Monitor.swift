import Anomaly
import AsyncAlgorithms
import Foundation
import Models
import Overlay
import Synchronization
import VideoIO

/// The monitor: decoded frames flow through the actor stages — backbone, decoder, clustering, thresholding,
/// annotate — to a sink, over rendezvous channels, so neighbouring frames are in different stages at once
/// while a slow stage makes the ones before it wait (nothing is dropped, order is kept).
public final class Monitor: Sendable {
    public struct Configuration: Sendable {
        public var width: Int
        public var height: Int
        public var settings: MethodSettings
        public var overlay: OverlayMode
        /// Regions smaller than this many frame pixels are not reported.
        public var minimumRegionArea: Int
        /// Called after each stage with its name and the frame index (tests use it to add random delays).
        public var afterStage: (@Sendable (String, Int) async -> Void)?

        public init(width: Int, height: Int, settings: MethodSettings = .default, overlay: OverlayMode = .heat,
                    minimumRegionArea: Int = 0) {
            self.width = width
            self.height = height
            self.settings = settings
            self.overlay = overlay
            self.minimumRegionArea = minimumRegionArea
        }
    }

    public let model: LoadedModel
    public let configuration: Configuration
    private let stopping = Atomic<Bool>(false)

    public init(model: LoadedModel, configuration: Configuration) throws {
        try model.network.checkInputSize(width: configuration.width, height: configuration.height)
        self.model = model
        self.configuration = configuration
    }

    /// Asks the run to end after the frames already read: they are processed and handed to the sink.
    public func stop() { stopping.store(true, ordering: .relaxed) }
    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// A fresh set of stages for one run (each owns its state: activations, centroids, temporal state).
    private func makeStages() -> (BackboneStage, DecoderStage, ClusteringStage, ThresholdingStage, AnnotateStage) {
        let c = configuration
        return (BackboneStage(model: model, width: c.width, height: c.height),
                DecoderStage(model: model, wantsClasses: c.overlay == .segmentation || c.overlay == .both),
                ClusteringStage(settings: c.settings),
                ThresholdingStage(settings: c.settings, minimumRegionArea: c.minimumRegionArea),
                AnnotateStage(mode: c.overlay, palette: model.descriptor.palette, tau: c.settings.tau))
    }

    /// Runs `frames` through the stages and hands every finished frame, in order, to `sink`.
    public func run<Frames: AsyncSequence & Sendable>(
        _ frames: Frames, sink: @escaping @Sendable (FrameWork) async throws -> Void
    ) async throws -> MonitorSummary where Frames.Element == VideoFrame {
        let c = configuration
        let (backbone, decoder, clustering, thresholding, annotate) = makeStages()
        let channels = (0..<6).map { _ in AsyncChannel<FrameWork>() }
        let summary = SummaryBuilder()
        let sourceError = ErrorSlot()

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                defer { channels[0].finish() }
                do {
                    for try await frame in frames {
                        if isStopping { break }
                        await channels[0].send(FrameWork(frame: frame))
                    }
                } catch {
                    // A stop closes the source under the reader: that is the end, not a failure. Otherwise
                    // the frames already read still go through, and the error is raised at the end.
                    if !isStopping { sourceError.set(error) }
                }
            }
            let afterStage = c.afterStage
            func stage(_ index: Int, _ body: @escaping @Sendable (FrameWork) async -> FrameWork) {
                group.addTask {
                    defer { channels[index + 1].finish() }
                    for await work in channels[index] {
                        let done = await body(work)
                        await afterStage?(StageTimings.names[index], done.frame.index)
                        await channels[index + 1].send(done)
                    }
                }
            }
            stage(0) { await backbone.process($0) }
            stage(1) { await decoder.process($0) }
            stage(2) { await clustering.process($0) }
            stage(3) { await thresholding.process($0) }
            stage(4) { await annotate.process($0) }
            group.addTask {
                for await work in channels[5] {
                    try await sink(work)
                    summary.record(work)
                }
            }
            try await group.waitForAll()
        }
        if let error = sourceError.value { throw error }
        return summary.result()
    }
}

extension Monitor {
    /// The same work as `run`, one frame at a time through every stage before the next is read: the
    /// baseline that shows what overlapping the stages buys.
    public func runSequentially<Frames: AsyncSequence & Sendable>(
        _ frames: Frames, sink: @escaping @Sendable (FrameWork) async throws -> Void
    ) async throws -> MonitorSummary where Frames.Element == VideoFrame {
        let (backbone, decoder, clustering, thresholding, annotate) = makeStages()
        let summary = SummaryBuilder()
        for try await frame in frames {
            if isStopping { break }
            var work = FrameWork(frame: frame)
            work = await backbone.process(work)
            work = await decoder.process(work)
            work = await clustering.process(work)
            work = await thresholding.process(work)
            work = await annotate.process(work)
            try await sink(work)
            summary.record(work)
        }
        return summary.result()
    }
}

/// What a run did, for the closing summary.
public struct MonitorSummary: Sendable {
    public var frames: Int
    public var seconds: Double
    public var framesPerSecond: Double { seconds > 0 ? Double(frames) / seconds : 0 }
    /// Mean seconds per frame of each stage, in `StageTimings.names` order.
    public var stageSeconds: [Double]
    /// Lloyd iterations of the first (cold) frame and the mean over warm-started frames.
    public var firstIterations: Int
    public var meanWarmIterations: Double
    public var reseeds: Int
    public var anomalyFrames: Int
    /// Capture-to-sink latency per frame, in seconds.
    public var latencies: [Double]
}

/// Accumulates the summary in the sink task.
final class SummaryBuilder: Sendable {
    private struct State {
        var frames = 0
        var stageTotals = [Double](repeating: 0, count: StageTimings.names.count)
        var firstIterations: Int?
        var warmIterations = 0, warmFrames = 0, reseeds = 0, anomalyFrames = 0
        var latencies: [Double] = []
    }

    private let started = ContinuousClock.now
    private let state = Mutex(State())

    func record(_ work: FrameWork) {
        state.withLock { s in
            s.frames += 1
            for (i, v) in work.timings.values.enumerated() { s.stageTotals[i] += v }
            if let k = work.clusterings.first {
                if k.warm {
                    s.warmIterations += k.iterations
                    s.warmFrames += 1
                } else if s.firstIterations == nil {
                    s.firstIterations = k.iterations
                }
                if k.reseeded { s.reseeds += 1 }
            }
            if work.mask?.contains(true) == true { s.anomalyFrames += 1 }
            s.latencies.append(work.arrival.secondsSince)
        }
    }

    func result() -> MonitorSummary {
        state.withLock { s in
            MonitorSummary(frames: s.frames, seconds: started.secondsSince,
                           stageSeconds: s.stageTotals.map { s.frames > 0 ? $0 / Double(s.frames) : 0 },
                           firstIterations: s.firstIterations ?? 0,
                           meanWarmIterations: s.warmFrames > 0 ? Double(s.warmIterations) / Double(s.warmFrames) : 0,
                           reseeds: s.reseeds, anomalyFrames: s.anomalyFrames, latencies: s.latencies)
        }
    }
}

/// The first error of a task that must not end the others at once.
final class ErrorSlot: Sendable {
    private let slot = Mutex<(any Error)?>(nil)
    func set(_ error: any Error) { slot.withLock { if $0 == nil { $0 = error } } }
    var value: (any Error)? { slot.withLock { $0 } }
}
