import Foundation
import Logging
import Models
import Monitoring
import Pipeline
import Synchronization
import VideoIO

/// `roadwatch watch`: every camera of the config in one process, on one loaded model. Each camera has its
/// own source, reconnect loop and stages; the live policy (newest frame only) keeps each at the pace the
/// shared cores allow, so a busy camera drops frames rather than delaying the others. Retention sweeps run
/// every `retentionInterval` seconds.
public final class WatchService: Sendable {
    public let config: WatchConfig
    public let cameras: [CameraRunner]
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)

    public init(config: WatchConfig, model: LoadedModel, defaultSize: FrameSize, logger: Logger,
                onRecord: @escaping @Sendable (CameraConfig, EventRecord) -> Void = { _, _ in },
                onFrame: @escaping @Sendable (CameraConfig, MonitoredFrame) -> Void = { _, _ in },
                onClip: @escaping @Sendable (CameraConfig, _ id: String, _ clip: String, _ part: Int) -> Void = { _, _, _, _ in }) throws {
        self.config = config
        self.logger = logger
        // With more cameras than cores, each camera's frames take turns through its stages instead of queueing
        // in them: the cores stay busy with the other cameras, and a frame's latency is its own work.
        let enabled = config.cameras.filter(\.enabled).count
        let inFlight = enabled > 1 ? max(1, 2 * ProcessInfo.processInfo.activeProcessorCount / enabled) : nil
        cameras = config.cameras.map {
            CameraRunner(config: $0, output: config.output, model: model, defaultSize: defaultSize, threads: config.threads,
                         framesInFlight: inFlight, logger: logger, onRecord: onRecord, onFrame: onFrame, onClip: onClip)
        }
        // Every size a camera asks for must suit the model before anything opens.
        for camera in config.cameras {
            let size = camera.size ?? defaultSize
            try model.network.checkInputSize(width: size.width, height: size.height)
        }
        try OutputChecks.makeFolder(config.output, what: "output folder")
    }

    /// Runs every camera until `stop()` (or until every camera has ended: files without `loop`).
    public func run() async {
        logger.info("watching \(cameras.count) cameras into \(config.output)")
        await withTaskGroup(of: Void.self) { group in
            for camera in cameras { group.addTask { await camera.run() } }
            group.addTask { [self] in await sweepUntilStopped() }
            // The sweeper ends once every camera has.
            var remaining = cameras.count
            while remaining > 0, await group.next() != nil { remaining -= 1 }
            stopping.store(true, ordering: .relaxed)
            await group.waitForAll()
        }
        for camera in cameras { retention(camera.config).sweep(camera.folder) }
        writeStatus()
        logger.info("stopped")
    }

    public func stop() {
        stopping.store(true, ordering: .relaxed)
        for camera in cameras { camera.stop() }
    }

    func retention(_ camera: CameraConfig) -> Retention {
        Retention(maxAge: camera.maxAgeHours.map { $0 * 3600 }, maxBytes: camera.maxSizeMB.map { Int64($0 * 1_000_000) })
    }

    /// Every camera's state now, with its latency p99 over recent frames.
    public var status: [CameraReport] {
        cameras.map { CameraReport(status: $0.current, latencies: $0.recentLatencies) }
    }

    /// `<output>/status.json`, rewritten every second (whole, by rename): the cameras' state for scripts.
    public var statusPath: String { config.output + "/status.json" }

    func writeStatus() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(StatusFile(updated: Date().timeIntervalSince1970, cameras: status)) else { return }
        let partial = config.output + "/.status.json.partial"
        if FileManager.default.createFile(atPath: partial, contents: data) { rename(partial, statusPath) }
    }

    private func sweepUntilStopped() async {
        var next = ContinuousClock.now
        var nextStatus = ContinuousClock.now
        while !stopping.load(ordering: .relaxed) {
            if ContinuousClock.now >= nextStatus {
                writeStatus()
                nextStatus = ContinuousClock.now + .seconds(1)
            }
            if ContinuousClock.now >= next {
                for camera in cameras {
                    let removed = retention(camera.config).sweep(camera.folder)
                    if !removed.isEmpty {
                        var log = logger
                        log[metadataKey: "camera"] = .string(camera.config.name)
                        log.info("retention removed \(removed.count) files (oldest: \(URL(fileURLWithPath: removed[0]).lastPathComponent))")
                    }
                }
                next = ContinuousClock.now + .seconds(config.retentionInterval)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// A camera's state with its recent latency percentiles (seconds).
public struct CameraReport: Sendable, Codable {
    public var status: CameraStatus
    public var latencyP50: Double
    public var latencyP99: Double

    init(status: CameraStatus, latencies: [Double]) {
        self.status = status
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]
        }
        latencyP50 = percentile(50)
        latencyP99 = percentile(99)
    }

    private enum CodingKeys: String, CodingKey {
        case name, state, frames, dropped, reconnects, events, fps, latency_p50_ms, latency_p99_ms, last_frame, last_error
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status.name, forKey: .name)
        try c.encode(status.state, forKey: .state)
        try c.encode(status.frames, forKey: .frames)
        try c.encode(status.dropped, forKey: .dropped)
        try c.encode(status.reconnects, forKey: .reconnects)
        try c.encode(status.events, forKey: .events)
        try c.encode((status.fps * 100).rounded() / 100, forKey: .fps)
        try c.encode((latencyP50 * 10000).rounded() / 10, forKey: .latency_p50_ms)
        try c.encode((latencyP99 * 10000).rounded() / 10, forKey: .latency_p99_ms)
        try c.encodeIfPresent(status.lastFrame.map { ($0 * 1000).rounded() / 1000 }, forKey: .last_frame)
        try c.encodeIfPresent(status.lastError, forKey: .last_error)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var status = CameraStatus(name: try c.decode(String.self, forKey: .name), state: try c.decode(CameraStatus.State.self, forKey: .state))
        status.frames = try c.decode(Int.self, forKey: .frames)
        status.dropped = try c.decode(Int.self, forKey: .dropped)
        status.reconnects = try c.decode(Int.self, forKey: .reconnects)
        status.events = try c.decode(Int.self, forKey: .events)
        status.fps = try c.decode(Double.self, forKey: .fps)
        status.lastFrame = try c.decodeIfPresent(Double.self, forKey: .last_frame)
        status.lastError = try c.decodeIfPresent(String.self, forKey: .last_error)
        self.status = status
        latencyP50 = try c.decode(Double.self, forKey: .latency_p50_ms) / 1000
        latencyP99 = try c.decode(Double.self, forKey: .latency_p99_ms) / 1000
    }
}

/// The status file.
public struct StatusFile: Sendable, Codable {
    public var updated: Double
    public var cameras: [CameraReport]
}
