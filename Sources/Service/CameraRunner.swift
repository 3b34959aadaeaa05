import Foundation
import Logging
import Models
import Monitoring
import Pipeline
import Synchronization
import VideoIO

/// What a camera is doing, for logs, the API and readiness.
public struct CameraStatus: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable {
        case starting, up, reconnecting, down, ended, disabled
    }

    public var name: String
    public var state: State
    /// Frames processed (through every stage and written) and frames the live reader dropped.
    public var frames = 0
    public var dropped = 0
    public var reconnects = 0
    /// Events started.
    public var events = 0
    /// Processed frames per second over the last few seconds.
    public var fps = 0.0
    /// Decoded-to-written latency of the last frame, seconds.
    public var latency = 0.0
    /// Epoch seconds of the last processed frame.
    public var lastFrame: Double?
    public var lastError: String?

    public init(name: String, state: State) {
        self.name = name
        self.state = state
    }
}

/// One camera of the service: its own source with reconnects, its own stages on the shared model, its
/// outputs under `<output>/<name>/`. It never throws: whatever goes wrong is logged, and the camera tries
/// again with backoff until the service stops — one camera's failure never stops another.
public final class CameraRunner: Sendable {
    public let config: CameraConfig
    public let folder: String
    private let model: LoadedModel
    private let size: FrameSize
    private let threads: Int?
    private let framesInFlight: Int?
    private let logger: Logger
    private let status: Mutex<CameraStatus>
    private let control = Mutex<(stopping: Bool, run: RunControl?)>((false, nil))
    private let rate = Mutex<(times: [Double], latencies: [Double])>(([], []))
    private let onRecord: @Sendable (CameraConfig, EventRecord) -> Void
    /// Detection switched on or off at run time (MQTT), and the events whose `new` came while it was off: their
    /// updates and end are held back too, while an event already reported runs to its end.
    private let detection = Mutex<(on: Bool, held: Set<String>)>((true, []))
    private let onFrame: @Sendable (CameraConfig, MonitoredFrame) -> Void
    private let onClip: @Sendable (CameraConfig, _ id: String, _ clip: String, _ part: Int) -> Void

    public init(config: CameraConfig, output: String, model: LoadedModel, defaultSize: FrameSize, threads: Int?, framesInFlight: Int? = nil,
                logger: Logger, onRecord: @escaping @Sendable (CameraConfig, EventRecord) -> Void = { _, _ in },
                onFrame: @escaping @Sendable (CameraConfig, MonitoredFrame) -> Void = { _, _ in },
                onClip: @escaping @Sendable (CameraConfig, _ id: String, _ clip: String, _ part: Int) -> Void = { _, _, _, _ in }) {
        self.config = config
        folder = URL(fileURLWithPath: output).appendingPathComponent(config.name).path
        self.model = model
        size = config.size ?? defaultSize
        self.threads = threads
        self.framesInFlight = framesInFlight
        var logger = logger
        logger[metadataKey: "camera"] = .string(config.name)
        self.logger = logger
        status = Mutex(CameraStatus(name: config.name, state: config.enabled ? .starting : .disabled))
        self.onRecord = onRecord
        self.onFrame = onFrame
        self.onClip = onClip
    }

    public var current: CameraStatus { status.withLock { $0 } }

    /// Decoded-to-written latencies of recent frames (seconds), newest last, at most 1,000.
    public var recentLatencies: [Double] { rate.withLock { $0.latencies } }

    /// The camera's source: live sources and files alike are read as a camera sends — the newest frame,
    /// stamped by the wall clock, a file at its own pace — so recordings are watched the same way as live.
    func source() -> MonitorSource {
        var source = MonitorSource.defaults(for: config.input)
        let isFile = !MonitorSource.isLiveURL(config.input)
        source.live = !isFile || config.realtime
        source.options.formatOptions = config.deviceOptions
        source.options.openTimeout = config.timeout
        source.options.readTimeout = config.timeout
        source.options.frameThreading = false
        let logger = self.logger
        let input = config.input
        source.options.onWarning = { logger.warning("\(withoutPassword($0, url: input))") }
        source.policy.wallClockTimestamps = source.live
        source.policy.realTime = isFile && config.realtime
        source.policy.loop = isFile && config.loop
        // A file that cannot be read is not retried inside the feed: the camera's own loop retries.
        source.policy.reconnectMax = isFile ? 0 : nil
        source.policy.retryFirstOpen = false
        return source
    }

    /// Watches until `stop()`; returns when the camera is stopped, or ended (a file without `loop`).
    public func run() async {
        guard config.enabled else {
            logger.info("disabled")
            return
        }
        let isFile = !MonitorSource.isLiveURL(config.input)
        var attempt = 0
        while !isStopping {
            do {
                try makeFolders()
                setState(.starting)
                let reading = self.source()
                let feed = try await reading.open(onEvent: { [self] in report($0) })
                var configuration = Monitor.Configuration(size: size, settings: config.method, overlay: config.overlay,
                                                          computeThreads: threads)
                configuration.ignore = config.mask
                configuration.memory = config.memory
                configuration.maxFramesInFlight = framesInFlight
                let monitor = try Monitor(model: model, configuration: configuration)
                let run = RunControl(monitor: monitor)
                let stopNow = control.withLock { c -> Bool in
                    c.run = run
                    return c.stopping
                }
                if stopNow { run.stop() }
                defer { control.withLock { $0.run = nil } }
                attempt = 0
                setState(.up)
                logger.info("watching \(redacted(config.input)) (\(feed.info.width)x\(feed.info.height)) at \(size)")
                let summary = try await MonitorJob(monitor: monitor).process(
                    feed, live: reading.live, to: outputs(live: reading.live), control: run,
                    onFrame: { [self] done in frame(done) },
                    onWarning: { [logger] in logger.warning("\($0)") },
                    onRecord: { [self] record in
                        guard admits(record) else { return }
                        if record.type == "new" { status.withLock { $0.events += 1 } }
                        logger.info("event \(record.type) \(record.id) score \(record.top_score) box \(record.box)")
                        onRecord(config, record)
                    },
                    onClip: { [self] id, clip, part in
                        logger.info("event \(id) clip part \(part) finished: \(clip)")
                        onClip(config, id, clip, part)
                    })
                if isStopping { break }
                if isFile && !config.loop {
                    logger.info("the file ended after \(summary.frames) frames")
                    setState(.ended)
                    return
                }
                logger.warning("the source ended; opening it again")
            } catch {
                if isStopping { break }
                attempt += 1
                let delay = min(10, 0.5 * pow(2, Double(min(attempt - 1, 10))))
                logger.error("\(hidingPassword(String(describing: error))); trying again in \(String(format: "%.1f", delay)) s")
                status.withLock {
                    $0.state = .down
                    $0.lastError = hidingPassword(String(describing: error))
                }
                let until = ContinuousClock.now + .seconds(delay)
                while ContinuousClock.now < until && !isStopping { try? await Task.sleep(for: .milliseconds(50)) }
            }
        }
        setState(.down)
    }

    /// Ends the camera: the frames in flight are finished, open events ended, files closed.
    public func stop() {
        let run = control.withLock { c -> RunControl? in
            c.stopping = true
            return c.run
        }
        run?.stop()
    }

    private var isStopping: Bool { control.withLock { $0.stopping } }

    /// Whether the camera's events are reported (to the store, webhooks, MQTT); on unless switched off.
    public var isDetecting: Bool { detection.withLock { $0.on } }

    /// Switches event reporting on or off. The monitor keeps running either way (its state stays warm, and
    /// `events.jsonl` still lists everything): only what leaves the camera through `onRecord` is held back.
    public func setDetecting(_ on: Bool) {
        detection.withLock { $0.on = on }
        logger.info("detection \(on ? "on" : "off")")
    }

    /// The detection gate for one event change.
    private func admits(_ record: EventRecord) -> Bool {
        detection.withLock { d in
            if record.type == "new" && !d.on {
                d.held.insert(record.id)
                return false
            }
            if d.held.contains(record.id) {
                if record.type == "end" { d.held.remove(record.id) }
                return false
            }
            return true
        }
    }

    /// `text` with the input's password replaced, for logs and the status file.
    private func hidingPassword(_ text: String) -> String { withoutPassword(text, url: config.input) }

    private func setState(_ state: CameraStatus.State) { status.withLock { $0.state = state } }

    private func makeFolders() throws {
        for sub in ["", "clips", "snapshots"] + (config.record ? ["recordings"] : []) {
            try OutputChecks.makeFolder(folder + (sub.isEmpty ? "" : "/" + sub), what: "camera folder")
        }
    }

    func outputs(live: Bool) -> JobOutputs {
        var outputs = JobOutputs(video: nil)
        if config.record {
            let stamp = Self.stampFormatter.string(from: Date())
            outputs.video = "\(folder)/recordings/\(stamp)-%03d.mp4"
            outputs.segmentSeconds = config.segmentSeconds
            outputs.recordingIsOptional = true
            outputs.crf = config.crf
            outputs.preset = config.preset
        }
        var events = EventOutputs(list: folder + "/events.jsonl", evidenceFolder: folder, camera: config.name,
                                  rules: config.events, epochTimes: live)
        events.keepGoingOnWriteErrors = true
        events.appendsToList = true
        if !live { events.idStamp = Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
        events.locator = config.location.map { EventLocator(latitude: $0.latitude, longitude: $0.longitude) }
        outputs.eventList = events
        return outputs
    }

    static let stampFormatter: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f
    }()

    private func frame(_ done: MonitoredFrame) {
        let now = Date().timeIntervalSince1970
        let latency = done.arrival.secondsSince
        let fps = rate.withLock { r -> Double in
            r.times.append(now)
            r.latencies.append(latency)
            if r.latencies.count > 1000 { r.latencies.removeFirst(r.latencies.count - 1000) }
            while let first = r.times.first, now - first > 5 { r.times.removeFirst() }
            guard r.times.count > 1, let first = r.times.first else { return 0 }
            return Double(r.times.count - 1) / max(1e-6, now - first)
        }
        status.withLock { s in
            s.frames += 1
            s.dropped = done.frame.droppedBefore
            s.latency = latency
            s.lastFrame = now
            s.fps = fps
            if s.state != .up { s.state = .up }
        }
        onFrame(config, done)
    }

    private func report(_ event: FrameFeed.Event) {
        switch event {
        case let .lost(reason, attempt, delay):
            setState(.reconnecting)
            logger.warning("source lost (\(hidingPassword(reason))); reconnect attempt \(attempt) in \(String(format: "%.1f", delay)) s")
        case let .reconnected(gap):
            status.withLock { $0.reconnects += 1 }
            setState(.up)
            logger.info("source back after \(String(format: "%.1f", gap)) s")
        case let .gaveUp(reason):
            logger.warning("giving up on the source: \(hidingPassword(reason))")
        }
    }
}

/// `text` with every occurrence of `url` replaced by its redacted form.
func withoutPassword(_ text: String, url: String) -> String {
    let safe = redacted(url)
    return safe == url ? text : text.replacingOccurrences(of: url, with: safe)
}

/// A URL without its password, for logs (`rtsp://user:secret@host` → `rtsp://user:***@host`).
func redacted(_ url: String) -> String {
    guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
    let credentials = url[scheme.upperBound..<at]
    guard let colon = credentials.firstIndex(of: ":") else { return url }
    return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
}
