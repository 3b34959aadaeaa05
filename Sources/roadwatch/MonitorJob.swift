import Foundation
import Pipeline
import Synchronization
import VideoIO

/// Stops a run (or a batch of runs) cleanly: the monitor stops reading, and the feed being read is stopped
/// so a blocked read or a reconnect wait returns.
final class RunControl: Sendable {
    let monitor: Monitor
    private let current = Mutex<FrameFeed?>(nil)
    private let stopped = Mutex(false)

    init(monitor: Monitor) { self.monitor = monitor }

    var isStopped: Bool { stopped.withLock { $0 } }

    func stop() {
        stopped.withLock { $0 = true }
        monitor.stop()
        if let feed = current.withLock({ $0 }) { Task { await feed.stop() } }
    }

    func reading(_ feed: FrameFeed?) { current.withLock { $0 = feed } }
}

/// Where one input's results go.
struct JobOutputs: Sendable {
    var video: String
    var events: String?
    var masks: String?
    /// Cut the video into files of this many seconds.
    var segmentSeconds: Double?
}

/// One input through the monitor into its outputs — the annotated video, the events, the masks. `run`
/// does one job, `batch` one per file with the model loaded once.
struct MonitorJob: Sendable {
    let monitor: Monitor
    let options: MonitorOptions

    struct Outcome: Sendable {
        var summary: MonitorSummary
        /// Distinct region tracks seen over the run.
        var regionTracks: Int
        var framesIn: Int
        var framesDropped: Int
        var reconnects: Int
        var files: [String]
    }

    /// Runs `feed` through the monitor. `live`: read the newest frame and drop what cannot be kept up with.
    func process(_ feed: FrameFeed, live: Bool, to outputs: JobOutputs, control: RunControl) async throws -> Outcome {
        control.reading(feed)
        defer { control.reading(nil) }
        let info = feed.info
        var writerSettings = H264Writer.Settings(
            width: info.width, height: info.height, frameRate: info.frameRate ?? Rational(25, 1), timeBase: feed.timeBase,
            crf: options.crf, preset: options.preset, threads: 1, fragmented: options.fragmented || outputs.video == "-")
        // The soundtrack is copied only when the video keeps the source's own timeline in one file.
        if feed.timeBase == info.timeBase && outputs.segmentSeconds == nil { writerSettings.audio = feed.audio }
        let video = try VideoOutput(path: outputs.video, settings: writerSettings, segmentSeconds: outputs.segmentSeconds)
        let events = try outputs.events.map { try EventLog(path: $0) }
        let progress = Progress(total: live ? nil : info.frameCount, unit: "frames", quiet: options.quiet)
        let maskDir = outputs.masks
        let tracks = Mutex(Set<Int>())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let newest = live ? NewestFrames(feed) : nil

        let sink: @Sendable (FrameWork) async throws -> Void = { work in
            try await video.append(work.annotated ?? work.frame.image, pts: work.frame.pts, audio: work.frame.audio)
            if let gap = work.frame.gapBefore {
                try events?.append(String(format: #"{"event":"reconnect","frame":%d,"gap_s":%.3f}"#, work.frame.index, gap))
            }
            var event = FrameEvent(work)
            event.latency_ms = (work.arrival.secondsSince * 1e4).rounded() / 10
            try events?.append(String(decoding: try encoder.encode(event), as: UTF8.self))
            if let maskDir, let mask = work.mask {
                let image = Raster<UInt8>(width: work.frame.image.width, height: work.frame.image.height, channels: 1,
                                          samples: mask.map { $0 ? 255 : 0 })
                try StillImage.writePNG(image, to: URL(fileURLWithPath: maskDir)
                    .appendingPathComponent(String(format: "%05d.png", work.frame.index)).path)
            }
            tracks.withLock { set in work.regions.forEach { set.insert($0.id) } }
            progress.advance(note: live ? "dropped \(work.frame.droppedBefore)" : "")
        }
        let summary: MonitorSummary
        do {
            if let newest {
                summary = try await monitor.run(newest, sink: sink)
            } else {
                summary = try await monitor.run(feed, sink: sink)
            }
            try await video.finish()
        } catch {
            await video.abort()
            try? events?.close()
            throw error
        }
        try events?.close()
        progress.finish()
        return Outcome(summary: summary, regionTracks: tracks.withLock { $0.count },
                       framesIn: newest?.framesRead ?? feed.framesRead, framesDropped: newest?.framesDropped ?? 0,
                       reconnects: feed.reconnects, files: video.files)
    }
}

/// The run's totals for machines: `--summary-json`.
struct RunSummary: Encodable {
    struct Latency: Encodable {
        var p50: Double
        var p99: Double
        var max: Double
    }

    var input: String
    var outputs: [String]
    var frames_in: Int
    var frames_processed: Int
    var frames_dropped: Int
    var reconnects: Int
    var latency_ms: Latency
    var seconds: Double
    var fps: Double
    var anomaly_frames: Int
    var regions: Int
    var interrupted: Bool

    init(input: String, outcome: MonitorJob.Outcome, interrupted: Bool) {
        let s = outcome.summary
        let sorted = s.latencies.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
            return (sorted[Swift.max(0, Swift.min(sorted.count - 1, rank))] * 1e4).rounded() / 10
        }
        self.input = input
        outputs = outcome.files
        frames_in = outcome.framesIn
        frames_processed = s.frames
        frames_dropped = outcome.framesDropped
        reconnects = outcome.reconnects
        latency_ms = Latency(p50: percentile(50), p99: percentile(99), max: percentile(100))
        seconds = (s.seconds * 1000).rounded() / 1000
        fps = (s.framesPerSecond * 100).rounded() / 100
        anomaly_frames = s.anomalyFrames
        regions = outcome.regionTracks
        self.interrupted = interrupted
    }
}

/// Fails before any work when a folder cannot be created.
func makeFolder(_ path: String, what: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw RoadwatchError("cannot create \(what) '\(path)': \(error.localizedDescription)")
    }
}
