import Foundation
import Pipeline
import Synchronization
import Tensors
import VideoIO

/// Where frames come from and how they are read: the URL, FFmpeg's options, reconnects and limits, and the
/// live policy (keep the newest frame, drop what the pipeline cannot keep up with).
public struct MonitorSource: Sendable {
    public var url: String
    public var options: InputOptions
    public var policy: FrameFeed.Policy
    public var live: Bool

    public init(url: String, options: InputOptions, policy: FrameFeed.Policy, live: Bool) {
        self.url = url
        self.options = options
        self.policy = policy
        self.live = live
    }

    /// Cameras and network streams are live; files, pipes and images are not.
    public static func isLiveURL(_ input: String) -> Bool {
        if input.hasPrefix("/dev/video") { return true }
        guard let scheme = input.range(of: "://").map({ input[..<$0.lowerBound].lowercased() }) else { return false }
        return ["v4l2", "rtsp", "rtsps", "rtmp", "rtmps", "tcp", "udp", "rtp", "srt", "http", "https"].contains(scheme)
    }

    /// The defaults for `url`: live sources read live, stamped by the wall clock and reopened without end;
    /// files read whole with frame-threaded decoding and no reconnects.
    public static func defaults(for url: String) -> MonitorSource {
        let live = isLiveURL(url)
        var policy = FrameFeed.Policy(reconnectMax: live ? nil : 0)
        policy.wallClockTimestamps = live
        // Frame threading holds several frames back inside the decoder: throughput for files, latency live.
        return MonitorSource(url: url, options: InputOptions(decoderThreads: 1, frameThreading: !live), policy: policy,
                             live: live)
    }

    /// Opens the feed (fails as `VideoSource.open` does unless the policy retries the first open).
    /// A live read converts only the frames it takes to RGB (`InputOptions.convertOnDemand`).
    public func open(onEvent: @escaping @Sendable (FrameFeed.Event) -> Void = { _ in }) async throws -> FrameFeed {
        var options = options
        if live { options.convertOnDemand = true }
        return try await FrameFeed.open(url, options: options, policy: policy, onEvent: onEvent)
    }
}

/// Stops a run (or a batch of runs) cleanly: the monitor stops reading, and the feed being read is stopped
/// so a blocked read or a reconnect wait returns.
public final class RunControl: Sendable {
    public let monitor: Monitor
    private let current = Mutex<FrameFeed?>(nil)
    private let stopped = Mutex(false)

    public init(monitor: Monitor) { self.monitor = monitor }

    public var isStopped: Bool { stopped.withLock { $0 } }

    public func stop() {
        stopped.withLock { $0 = true }
        monitor.stop()
        if let feed = current.withLock({ $0 }) { Task { await feed.stop() } }
    }

    func reading(_ feed: FrameFeed?) { current.withLock { $0 = feed } }
}

/// Where one input's results go: the pipeline's ends.
public struct JobOutputs: Sendable {
    /// The annotated video (H.264 MP4; "-" for standard output).
    public var video: String?
    /// JSON lines, one per frame (`FrameEvent`).
    public var events: String?
    /// A folder for each frame's anomaly mask as NNNNN.png (255 = anomaly).
    public var masks: String?
    /// Cut the video into files of this many seconds.
    public var segmentSeconds: Double?
    public var crf = 20
    public var preset = "veryfast"
    /// Fragmented MP4: plays up to the last fragment even after a hard kill.
    public var fragmented = false
    /// Events with a start and an end (the event list, snapshots, clips).
    public var eventList: EventOutputs?
    /// The annotated video is a recording the service keeps going without: a write that fails (a full
    /// disk) is a warning, recording stops, and it is tried again every `recordingRetry` seconds.
    public var recordingIsOptional = false
    public var recordingRetry = 10.0

    public init(video: String?, events: String? = nil, masks: String? = nil, segmentSeconds: Double? = nil) {
        self.video = video
        self.events = events
        self.masks = masks
        self.segmentSeconds = segmentSeconds
    }

    /// Fails before any work when an output cannot be written.
    public func check(input: String) throws(JobError) {
        if let video, video != "-" {
            if OutputChecks.same(input, video) { throw JobError("output '\(video)' is the input: choose another file") }
            try OutputChecks.writable(segmentSeconds != nil ? VideoOutput.segmentName(video, index: 0) : video, what: "output")
        }
        if let events { try OutputChecks.writable(events, what: "events file") }
        if let eventList {
            try eventList.rules.validate()
            if !eventList.appendsToList { try OutputChecks.writable(eventList.list, what: "event list") }
        }
        if let masks { try OutputChecks.makeFolder(masks, what: "mask folder") }
    }
}

/// One input through the monitor into its outputs — the annotated video, the events, the masks. `run`
/// does one job, `batch` one per file with the model loaded once.
public struct MonitorJob: Sendable {
    public let monitor: Monitor

    public init(monitor: Monitor) { self.monitor = monitor }

    /// Runs `feed` through the monitor; `onFrame` sees every written frame (progress, previews).
    /// `live`: read the newest frame and drop what cannot be kept up with. `onWarning` hears what goes wrong
    /// without ending the job (evidence not written, an optional recording stopped); `onRecord` each event line;
    /// `onClip` each clip part once it is finished and in place.
    public func process(_ feed: FrameFeed, live: Bool, to outputs: JobOutputs, control: RunControl,
                        onFrame: @escaping @Sendable (MonitoredFrame) -> Void = { _ in },
                        onWarning: @escaping @Sendable (String) -> Void = { _ in },
                        onRecord: @escaping @Sendable (EventRecord) -> Void = { _ in },
                        onClip: @escaping @Sendable (_ id: String, _ clip: String, _ part: Int) -> Void = { _, _, _ in }) async throws -> RunSummary {
        control.reading(feed)
        defer { control.reading(nil) }
        let info = feed.info
        let video: Recording?
        if let path = outputs.video {
            var settings = H264Writer.Settings(
                width: info.width, height: info.height, frameRate: info.frameRate ?? Rational(25, 1), timeBase: feed.timeBase,
                crf: outputs.crf, preset: outputs.preset, threads: 1, fragmented: outputs.fragmented || path == "-")
            // The soundtrack is copied only when the video keeps the source's own timeline in one file.
            if feed.timeBase == info.timeBase && outputs.segmentSeconds == nil { settings.audio = feed.audio }
            video = try Recording(path: path, settings: settings, segmentSeconds: outputs.segmentSeconds,
                                  optional: outputs.recordingIsOptional, retry: outputs.recordingRetry, onWarning: onWarning)
        } else {
            video = nil
        }
        let events = try outputs.events.map { path throws(JobError) in try EventLog(path: path) }
        let eventSink = try outputs.eventList.map { list throws(JobError) in
            try EventSink(outputs: list, tau: monitor.configuration.settings.tau, frameRate: info.frameRate,
                          onWarning: onWarning, onRecord: onRecord, onClip: onClip)
        }
        let masks = outputs.masks.map { MaskWriter(folder: $0) }
        let newest = live ? NewestFrames(feed) : nil

        let sink: @Sendable (MonitoredFrame) async throws -> Void = { done in
            if let video {
                // Encoding takes about a tenth of a core at 1024x512 on 2 cores: the stages leave it that core.
                try await ComputeThreads.reserving {
                    try await video.append(done.annotated, pts: done.frame.pts, audio: done.frame.audio)
                }
            }
            if let gap = done.frame.gapBefore {
                try await events?.append(ReconnectEvent(frame: done.frame.index, gap: gap))
            }
            try await events?.append(FrameEvent(done))
            try await eventSink?.observe(done)
            try masks?.write(done)
            onFrame(done)
        }
        var summary: RunSummary
        do {
            if let newest {
                summary = try await monitor.run(newest, sink: sink)
            } else {
                summary = try await monitor.run(feed, sink: sink)
            }
            try await eventSink?.finish()
            try await video?.finish()
        } catch {
            await video?.abort()
            try? await events?.close()
            try? await eventSink?.finish()
            throw error
        }
        try await events?.close()
        summary.input = feed.url
        summary.outputs = await video?.files ?? []
        summary.framesIn = newest?.framesRead ?? feed.framesRead
        summary.framesDropped = newest?.framesDropped ?? 0
        summary.reconnects = feed.reconnects
        summary.interrupted = control.isStopped
        summary.events = await eventSink?.eventsStarted
        return summary
    }
}

/// The annotated video, required (its failure ends the job) or optional (the service's recording: a failed
/// write is one warning, the files written so far are closed so they play, and recording starts again in a
/// new file after `retry` seconds — when space is back).
actor Recording {
    private let path: String
    private let settings: H264Writer.Settings
    private let segmentSeconds: Double?
    private let optional: Bool
    private let retry: Double
    private let onWarning: @Sendable (String) -> Void
    private var output: VideoOutput?
    private var pausedUntil: ContinuousClock.Instant?
    private var restarts = 0
    private var earlier: [String] = []
    /// Recording failed and has not written a frame since.
    private var stopped = false

    init(path: String, settings: H264Writer.Settings, segmentSeconds: Double?, optional: Bool, retry: Double,
         onWarning: @escaping @Sendable (String) -> Void) throws {
        self.path = path
        self.settings = settings
        self.segmentSeconds = segmentSeconds
        self.optional = optional
        self.retry = retry
        self.onWarning = onWarning
        output = try VideoOutput(path: path, settings: settings, segmentSeconds: segmentSeconds)
    }

    var files: [String] { get async { earlier + (await output?.files ?? []) } }

    func append(_ image: RGBImage, pts: Int64, audio: [AudioPacket]) async throws {
        if output == nil, let pausedUntil, ContinuousClock.now >= pausedUntil {
            restarts += 1
            // A fresh pattern per restart: the files written before the failure are kept as they are.
            let url = URL(fileURLWithPath: path)
            let again = path.contains("-%03d")
                ? path.replacingOccurrences(of: "-%03d", with: "-r\(restarts)-%03d")
                : url.deletingPathExtension().path + "-r\(restarts)." + (url.pathExtension.isEmpty ? "mp4" : url.pathExtension)
            do {
                output = try VideoOutput(path: again, settings: settings, segmentSeconds: segmentSeconds)
                self.pausedUntil = nil
            } catch {
                self.pausedUntil = ContinuousClock.now + .seconds(retry)
            }
        }
        guard let output else { return }
        do {
            try await output.append(image, pts: pts, audio: audio)
            if stopped {
                stopped = false
                onWarning("recording again (\(await output.files.last ?? path))")
            }
        } catch {
            if !optional { throw error }
            earlier += await output.files
            await output.abort()
            self.output = nil
            pausedUntil = ContinuousClock.now + .seconds(retry)
            // One warning per stop, however many retries fail before there is room again.
            if !stopped {
                stopped = true
                onWarning("recording stopped: \(error); monitoring and events go on, recording is tried again every \(Int(retry)) s")
            }
        }
    }

    func finish() async throws {
        do {
            try await output?.finish()
        } catch {
            if !optional { throw error }
            onWarning("recording: \(error)")
        }
    }

    func abort() async { await output?.abort() }
}

/// Each frame's anomaly mask as `FOLDER/NNNNN.png` (0 = normal, 255 = anomaly), at the frame's size.
public struct MaskWriter: Sendable {
    public let folder: String

    public init(folder: String) { self.folder = folder }

    public func path(frame: Int) -> String {
        URL(fileURLWithPath: folder).appendingPathComponent(String(format: "%05d.png", frame)).path
    }

    public func write(_ done: MonitoredFrame) throws {
        let image = Raster<UInt8>(width: done.frame.image.width, height: done.frame.image.height, channels: 1,
                                  samples: done.mask.map { $0 ? 255 : 0 })
        try StillImage.writePNG(image, to: path(frame: done.frame.index))
    }
}
