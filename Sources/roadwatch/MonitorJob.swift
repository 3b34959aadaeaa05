import Foundation
import Pipeline
import VideoIO

/// Stops a run (or a batch of runs) cleanly: the monitor stops reading, and the source being read is closed
/// so a blocked read returns.
final class RunControl: Sendable {
    let monitor: Monitor
    private let current = Mutex<VideoSource?>(nil)
    private let stopped = Mutex(false)

    init(monitor: Monitor) { self.monitor = monitor }

    var isStopped: Bool { stopped.withLock { $0 } }

    func stop() {
        stopped.withLock { $0 = true }
        monitor.stop()
        if let source = current.withLock({ $0 }) { Task { await source.close() } }
    }

    func reading(_ source: VideoSource?) { current.withLock { $0 = source } }
}

/// Where one input's results go.
struct JobOutputs: Sendable {
    var video: String
    var events: String?
    var masks: String?
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
    }

    func process(_ source: VideoSource, to outputs: JobOutputs, control: RunControl) async throws -> Outcome {
        control.reading(source)
        defer { control.reading(nil) }
        let info = source.info
        var writerSettings = H264Writer.Settings(
            width: info.width, height: info.height, frameRate: info.frameRate ?? Rational(25, 1), timeBase: info.timeBase,
            crf: options.crf, preset: options.preset, fragmented: options.fragmented || outputs.video == "-")
        writerSettings.audio = source.audio
        let events = try outputs.events.map { try EventLog(path: $0) }
        let progress = Progress(total: info.frameCount, unit: "frames", quiet: options.quiet)
        let maskDir = outputs.masks
        let tracks = Mutex(Set<Int>())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]

        let summary = try await H264Writer.write(to: outputs.video, settings: writerSettings) { writer in
            try await monitor.run(source) { work in
                try await writer.append(work.annotated ?? work.frame.image, pts: work.frame.pts)
                try await writer.appendAudio(work.frame.audio)
                try events?.append(String(decoding: try encoder.encode(FrameEvent(work)), as: UTF8.self))
                if let maskDir, let mask = work.mask {
                    let image = Raster<UInt8>(width: work.frame.image.width, height: work.frame.image.height, channels: 1,
                                              samples: mask.map { $0 ? 255 : 0 })
                    try StillImage.writePNG(image, to: URL(fileURLWithPath: maskDir)
                        .appendingPathComponent(String(format: "%05d.png", work.frame.index)).path)
                }
                tracks.withLock { set in work.regions.forEach { set.insert($0.id) } }
                progress.advance()
            }
        }
        try events?.close()
        progress.finish()
        return Outcome(summary: summary, regionTracks: tracks.withLock { $0.count })
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

import Synchronization
