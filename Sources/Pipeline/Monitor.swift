import Anomaly
import AsyncAlgorithms
import Foundation
import Models
import Overlay
import Synchronization
import Tensors
import VideoIO

/// The monitor: decoded frames flow through the actor stages — backbone, decoder, clustering, thresholding,
/// annotate — to a sink, over rendezvous channels, so neighbouring frames are in different stages at once
/// while a slow stage makes the ones before it wait (nothing is dropped, order is kept).
public final class Monitor: Sendable {
    public struct Configuration: Sendable {
        /// The network's input size.
        public var size: FrameSize
        public var settings: MethodSettings
        public var overlay: OverlayMode
        /// Compute threads for the numeric kernels. `nil`: the machine's cores, shared by the stages: a stage's
        /// loops use the cores the other stages working at that moment leave free (`ComputeThreads.occupy`).
        public var computeThreads: Int?
        /// Every frame is its own scene: K-Means from k-means++ and no temporal history (still images).
        public var independentFrames = false
        /// Hand the logits and features to the sink (`MonitoredFrame.kept`), for evaluation.
        public var keepsTensors = false
        /// Parts of the picture never to flag (the bonnet, a burned-in clock).
        public var ignore: IgnoreMask?
        /// Called after each stage with its name and the frame index (tests use it to add random delays).
        public var afterStage: (@Sendable (String, Int) async -> Void)?
        /// At most this many frames between the source and the sink (nil: one per stage). A new frame is read
        /// only when one has left, so a live source hands over its newest frame then: with several cameras on
        /// few cores, a frame waits for the cores instead of in the stages' queues (latency), while the cores
        /// stay busy with the other cameras' frames.
        public var maxFramesInFlight: Int?
        /// A calibrated memory of normal road the memory rule consults beside the stream's own (`MemoryBank`).
        public var memory: MemoryBank?

        public init(size: FrameSize, settings: MethodSettings = .default, overlay: OverlayMode = .heat,
                    computeThreads: Int? = nil) {
            self.size = size
            self.settings = settings
            self.overlay = overlay
            self.computeThreads = computeThreads
        }
    }

    public let model: LoadedModel
    public let configuration: Configuration
    private let stopping = Atomic<Bool>(false)

    /// Checks the size and the settings, and applies the thread policy.
    public init(model: LoadedModel, configuration: Configuration) throws {
        try model.network.checkInputSize(width: configuration.size.width, height: configuration.size.height)
        try configuration.settings.validate()
        if let memory = configuration.memory {
            try memory.check(model: model.descriptor.name, sha256: model.descriptor.sha256, width: configuration.size.width,
                             height: configuration.size.height, dimension: memory.header.dimension, name: "memory")
        }
        self.model = model
        self.configuration = configuration
        ComputeThreads.set(configuration.computeThreads ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Asks the run to end after the frames already read: they are processed and handed to the sink.
    public func stop() { stopping.store(true, ordering: .relaxed) }
    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// A fresh set of stages for one run (each owns its state: activations, centroids, temporal state).
    func makeStages() -> Stages {
        let c = configuration
        return Stages(backbone: BackboneStage(model: model, size: c.size),
                      decoder: DecoderStage(model: model, wantsClasses: c.overlay == .segmentation || c.overlay == .both,
                                            keepsTensors: c.keepsTensors, wantsDrivableArea: c.settings.alarm != .clusters,
                                            enclosedArea: c.settings.alarm == .memory),
                      clustering: ClusteringStage(settings: c.settings, memory: c.memory),
                      thresholding: ThresholdingStage(settings: c.settings, ignore: c.ignore),
                      annotate: AnnotateStage(mode: c.overlay, palette: model.descriptor.palette, tau: c.settings.tau,
                                              ignore: c.ignore))
    }

    struct Stages {
        let backbone: BackboneStage
        let decoder: DecoderStage
        let clustering: ClusteringStage
        let thresholding: ThresholdingStage
        let annotate: AnnotateStage

        /// One frame through every stage.
        func process(_ trace: FrameTrace) async -> MonitoredFrame {
            let encoded = await backbone.process(trace)
            let scored = await decoder.process(encoded)
            let clustered = await clustering.process(scored)
            let decided = await thresholding.process(clustered)
            return await annotate.process(decided)
        }
    }

    /// Runs `frames` through the stages and hands every finished frame, in order, to `sink`.
    public func run<Frames: AsyncSequence & Sendable>(
        _ frames: Frames, sink: @escaping @Sendable (MonitoredFrame) async throws -> Void
    ) async throws -> RunSummary where Frames.Element == VideoFrame {
        let c = configuration
        let stages = makeStages()
        let toBackbone = AsyncChannel<FrameTrace>(), toDecoder = AsyncChannel<EncodedFrame>()
        let toClustering = AsyncChannel<ScoredFrame>(), toThresholding = AsyncChannel<ClusteredFrame>()
        let toAnnotate = AsyncChannel<DecidedFrame>(), toSink = AsyncChannel<MonitoredFrame>()
        let summary = SummaryBuilder(settings: c.settings)
        let sourceError = ErrorSlot()
        let independent = c.independentFrames
        let admission = c.maxFramesInFlight.map { FrameAdmission(limit: $0) }

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                defer { toBackbone.finish() }
                do {
                    var iterator = frames.makeAsyncIterator()
                    while true {
                        await admission?.enter()
                        guard !isStopping, let frame = try await iterator.next() else { break }
                        await toBackbone.send(FrameTrace(frame: frame, independent: independent))
                    }
                } catch {
                    // A stop closes the source under the reader: that is the end, not a failure. Otherwise
                    // the frames already read still go through, and the error is raised at the end.
                    if !isStopping { sourceError.set(error) }
                }
            }
            let afterStage = c.afterStage
            func stage<In: Sendable, Out: Sendable>(_ name: Int, _ input: AsyncChannel<In>, _ output: AsyncChannel<Out>,
                                                    index: @escaping @Sendable (Out) -> Int,
                                                    _ body: @escaping @Sendable (In) async -> Out) {
                group.addTask {
                    defer { output.finish() }
                    for await item in input {
                        let done = await body(item)
                        await afterStage?(StageTimings.names[name], index(done))
                        await output.send(done)
                    }
                }
            }
            stage(0, toBackbone, toDecoder, index: { $0.trace.frame.index }) { await stages.backbone.process($0) }
            stage(1, toDecoder, toClustering, index: { $0.trace.frame.index }) { await stages.decoder.process($0) }
            stage(2, toClustering, toThresholding, index: { $0.trace.frame.index }) { await stages.clustering.process($0) }
            stage(3, toThresholding, toAnnotate, index: { $0.trace.frame.index }) { await stages.thresholding.process($0) }
            stage(4, toAnnotate, toSink, index: { $0.trace.frame.index }) { await stages.annotate.process($0) }
            group.addTask {
                for await done in toSink {
                    try await sink(done)
                    summary.record(done)
                    admission?.leave()
                }
            }
            // Not `waitForAll()`: it waits for every task before raising the first error, and after a sink
            // error the stages before it wait forever to hand on their frames. `next()` raises at once, and
            // leaving the group with an error cancels the rest.
            while try await group.next() != nil {}
        }
        if let error = sourceError.value { throw error }
        return summary.result()
    }
}

extension Monitor {
    /// Runs frames the caller holds (see `run(_:sink:)`).
    public func run(_ frames: [VideoFrame], sink: @escaping @Sendable (MonitoredFrame) async throws -> Void) async throws -> RunSummary {
        try await run(frames.async, sink: sink)
    }

    /// The same work as `run`, one frame at a time through every stage before the next is read: the
    /// baseline that shows what overlapping the stages buys, and the same decisions frame for frame.
    public func runSequentially<Frames: AsyncSequence & Sendable>(
        _ frames: Frames, sink: @escaping @Sendable (MonitoredFrame) async throws -> Void
    ) async throws -> RunSummary where Frames.Element == VideoFrame {
        let stages = makeStages()
        let summary = SummaryBuilder(settings: configuration.settings)
        for try await frame in frames {
            if isStopping { break }
            let done = await stages.process(FrameTrace(frame: frame, independent: configuration.independentFrames))
            try await sink(done)
            summary.record(done)
        }
        return summary.result()
    }
}

/// Accumulates the summary in the sink task.
final class SummaryBuilder: Sendable {
    private struct State {
        var frames = 0
        var stageTotals = [Double](repeating: 0, count: StageTimings.names.count)
        var firstIterations: Int?
        var warmIterations = 0, warmFrames = 0, reseeds = 0, anomalyFrames = 0
        // Bounded however long the run: a fixed-size histogram, and distinct tracks counted, not kept.
        var latencies = LatencyHistogram()
        var tracks = DistinctTrackCount()
    }

    private let started = ContinuousClock.now
    private let settings: MethodSettings
    private let state = Mutex(State())

    init(settings: MethodSettings) { self.settings = settings }

    func record(_ done: MonitoredFrame) {
        state.withLock { s in
            s.frames += 1
            for (i, v) in done.timings.values.enumerated() { s.stageTotals[i] += v }
            let k = done.kmeans
            if k.warm {
                s.warmIterations += k.iterations
                s.warmFrames += 1
            } else if s.firstIterations == nil {
                s.firstIterations = k.iterations
            }
            if k.reseeded { s.reseeds += 1 }
            if done.isAnomalous { s.anomalyFrames += 1 }
            s.latencies.record(done.arrival.secondsSince)
            for region in done.regions { s.tracks.see(region.id) }
        }
    }

    func result() -> RunSummary {
        state.withLock { s in
            var summary = RunSummary(method: settings)
            summary.framesIn = s.frames
            summary.framesProcessed = s.frames
            summary.seconds = started.secondsSince
            summary.stageSeconds = s.stageTotals.map { s.frames > 0 ? $0 / Double(s.frames) : 0 }
            summary.firstIterations = s.firstIterations ?? 0
            summary.meanWarmIterations = s.warmFrames > 0 ? Double(s.warmIterations) / Double(s.warmFrames) : 0
            summary.reseeds = s.reseeds
            summary.anomalyFrames = s.anomalyFrames
            summary.regionTracks = s.tracks.count
            summary.latencies = s.latencies
            return summary
        }
    }
}

/// Counts distinct region track ids in constant memory: the thresholding stage gives a new track an id above
/// every id given before (ids keep counting across resets), so an id is new exactly when it is above the
/// largest seen so far.
struct DistinctTrackCount: Sendable {
    private(set) var count = 0
    private var largest = Int.min

    mutating func see(_ id: Int) {
        if id > largest {
            largest = id
            count += 1
        }
    }
}

/// The first error of a task that must not end the others at once.
final class ErrorSlot: Sendable {
    private let slot = Mutex<(any Error)?>(nil)
    func set(_ error: any Error) { slot.withLock { if $0 == nil { $0 = error } } }
    var value: (any Error)? { slot.withLock { $0 } }
}

/// Counts the frames inside a monitor: `enter` waits while `limit` are in, `leave` lets the next one in.
final class FrameAdmission: Sendable {
    private struct State {
        var inside = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = max(1, limit) }

    func enter() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { s -> Bool in
                if s.inside < limit {
                    s.inside += 1
                    return true
                }
                s.waiting.append(continuation)
                return false
            }
            if admitted { continuation.resume() }
        }
    }

    func leave() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiting.isEmpty {
                s.inside -= 1
                return nil
            }
            return s.waiting.removeFirst()  // the place passes straight to the one waiting
        }
        next?.resume()
    }
}
