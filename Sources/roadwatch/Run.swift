import Anomaly
import ArgumentParser
import Foundation
import Logging
import Service
import Web
import Models
import Overlay
import Monitoring
import Pipeline
import Tensors
import VideoIO

/// Options of the monitor, shared by `run` and `demo`.
struct MonitorOptions: ParsableArguments {
    @Option(name: .customLong("events"), help: "Write one JSON object per frame to this file (JSON lines).")
    var eventsPath: String?

    @Option(help: "Write each frame's anomaly mask as DIR/NNNNN.png (0 = normal, 255 = anomaly).")
    var maskDir: String?

    @Option(help: "Overlay: heat, segmentation, both or none.")
    var overlay: OverlayMode = .heat

    @Option(help: "x264 constant rate factor of the output, 0-51.")
    var crf = 20

    @Option(help: "x264 preset of the output.")
    var preset = "veryfast"

    @Flag(help: "Write a fragmented MP4 (playable up to the last fragment even after a hard kill).")
    var fragmented = false

    @Flag(help: "No progress on stderr.")
    var quiet = false

    @Option(help: "Serve Prometheus /metrics (and /healthz) at HOST:PORT while running; off loopback the token is $ROADWATCH_TOKEN.")
    var metricsListen: String?

    @OptionGroup var method: MethodOptions
    @OptionGroup(title: "Events and ignore masks") var events: EventOptions
    @OptionGroup(title: "GPS") var gps: GPSOptions

    func validate() throws {
        guard (0...51).contains(crf) else { throw ValidationError("--crf must be in 0...51, got \(crf)") }
        if let metricsListen {
            do {
                _ = try MetricsEndpoint.settings(listen: metricsListen, token: ProcessInfo.processInfo.environment["ROADWATCH_TOKEN"])
            } catch {
                throw ValidationError(error.description)
            }
        }
    }
}

extension OverlayMode: ExpressibleByArgument {}

extension MonitorOptions {
    /// The outputs these flags ask for, with `video` as the annotated video.
    func outputs(video: String?, segmentSeconds: Double?) -> JobOutputs {
        var outputs = JobOutputs(video: video, events: eventsPath, masks: maskDir, segmentSeconds: segmentSeconds)
        outputs.crf = crf
        outputs.preset = preset
        outputs.fragmented = fragmented
        return outputs
    }
}

/// The monitor for `model` at `size` with the method and overlay the options ask for; `--threads` overrides
/// the thread policy (one compute thread per stage).
func makeMonitor(model: LoadedModel, size: FrameSize, modelOptions: ModelOptions, options: MonitorOptions) throws -> Monitor {
    var configuration = Monitor.Configuration(size: size, settings: options.method.settings, overlay: options.overlay,
                                              computeThreads: modelOptions.threads)
    configuration.ignore = try options.events.ignoreMask()
    configuration.memory = try options.method.loadMemory()
    return try Monitor(model: model, configuration: configuration)
}

/// Runs the monitor from `input` to `output` with the sinks the options ask for; returns the exit status.
func runMonitor(input: String, output: String, modelOptions: ModelOptions, options: MonitorOptions,
                source sourceOptions: SourceOptions) async throws -> Int32 {
    let source = sourceOptions.source(for: input)
    var outputs = options.outputs(video: output, segmentSeconds: sourceOptions.segmentTime)
    if output != "-" { outputs.eventList = options.events.outputs(
        video: output, camera: URL(fileURLWithPath: output).deletingPathExtension().lastPathComponent, live: source.live) }
    if outputs.eventList != nil { outputs.eventList?.locator = options.gps.locator(for: input, live: source.live) }
    try outputs.check(input: input)
    if let summary = sourceOptions.summaryJson { try OutputChecks.writable(summary, what: "summary file") }
    // A file is opened first, so a bad one fails before the model loads. A live source is opened last:
    // whatever it sends while the model loads would only be a backlog of stale frames to drop.
    let early = source.live ? nil : try await source.open(onEvent: SourceOptions.report)
    let (model, size) = try await modelOptions.load()
    let feed: FrameFeed
    if let early { feed = early } else { feed = try await source.open(onEvent: SourceOptions.report) }
    let monitor = try makeMonitor(model: model, size: size, modelOptions: modelOptions, options: options)
    let encoded = VideoOutput.encodedSize(width: feed.info.width, height: feed.info.height)
    if encoded != (feed.info.width, feed.info.height) && encoded.width >= 2 && encoded.height >= 2 {
        Console.info("\(input) is \(feed.info.width)x\(feed.info.height); H.264 needs even sides, so \(output) is \(encoded.width)x\(encoded.height) (the last column or row cropped)")
    }
    let control = RunControl(monitor: monitor)
    let trap = SignalTrap { control.stop() }
    if source.live { Console.info("live: reading the newest frame; frames the pipeline cannot keep up with are dropped") }
    let progress = Progress(total: source.live ? nil : feed.info.frameCount, unit: "frames", quiet: options.quiet)
    let live = source.live
    let camera = outputs.eventList?.camera ?? "run"
    let metrics = try startMetrics(options.metricsListen, camera: camera)
    defer {
        if let metrics { Task { await metrics.shutdown.trigger() } }
    }
    var summary = try await MonitorJob(monitor: monitor).process(
        feed, live: live, to: outputs, control: control,
        onFrame: { done in
            progress.advance(note: live ? "dropped \(done.frame.droppedBefore)" : "")
            metrics?.record(done)
        },
        onWarning: { Console.warning($0) })
    progress.finish()
    summary.interrupted = trap.signal != nil
    summary.peakMemoryMB = PeakMemory.megabytes
    if let path = sourceOptions.summaryJson { try JSONFile.write(summary, to: path) }
    print(RunReport.lines(summary, output: output).joined(separator: "\n"))
    if let path = options.eventsPath { print("events: \(path)") }
    if let list = outputs.eventList { print("event list: \(list.list) (\(summary.events ?? 0) events)") }
    if let maskDir = options.maskDir { print("masks: \(maskDir)") }
    if let path = sourceOptions.summaryJson { print("summary: \(path)") }
    return trap.exitStatus ?? 0
}

/// `--metrics-listen`: the endpoint, and what each frame adds to it.
struct RunMetrics: Sendable {
    let metrics: ServiceMetrics
    let server: Task<Void, Never>
    let shutdown: Shutdown
    let camera: String

    func record(_ done: MonitoredFrame) {
        metrics.frame(camera: camera, latency: done.arrival.secondsSince, timings: done.timings)
        var status = CameraStatus(name: camera, state: .up)
        status.dropped = done.frame.droppedBefore
        metrics.update([status])
    }
}

func startMetrics(_ listen: String?, camera: String) throws -> RunMetrics? {
    guard let listen else { return nil }
    let settings: HTTPSettings
    do {
        settings = try MetricsEndpoint.settings(listen: listen, token: ProcessInfo.processInfo.environment["ROADWATCH_TOKEN"])
    } catch {
        throw ValidationError(error.description)
    }
    let metrics = ServiceMetrics(cameras: [camera])
    var logger = Logger(label: "roadwatch")
    logger.logLevel = .warning  // the server's own start-up lines are not run's business
    let endpoint = MetricsEndpoint(metrics: metrics, settings: settings, logger: logger)
    let shutdown = Shutdown()
    let server = Task {
        do {
            try await endpoint.run(shutdown: shutdown, onRunning: { Console.info("metrics: http://\(listen)/metrics") })
        } catch {
            Console.warning("the metrics endpoint stopped: \(error) (is \(listen) in use?)")
        }
    }
    return RunMetrics(metrics: metrics, server: server, shutdown: shutdown, camera: camera)
}

/// The closing lines of a run.
enum RunReport {
    static func lines(_ summary: RunSummary, output: String) -> [String] {
        let stages = zip(StageTimings.names, summary.stageSeconds).map { "\($0) \(String(format: "%.1f", $1 * 1000)) ms" }
            .joined(separator: ", ")
        let files = summary.outputs
        let written = files.count > 1 ? "\(files.count) files \(files[0]) ... \(files.last!)" : output
        func ms(_ p: Double) -> String { String(format: "%.1f", summary.latency(percentile: p) * 1000) }
        return [
            "wrote \(written): \(summary.frames) frames in \(String(format: "%.1f", summary.seconds)) s (\(String(format: "%.2f", summary.framesPerSecond)) fps), \(summary.anomalyFrames) with anomalies",
            "per frame: \(stages)",
            "latency (decoded to written): p50 \(ms(50)) ms, p99 \(ms(99)) ms; \(summary.framesIn) frames in, \(summary.framesDropped) dropped, \(summary.reconnects) reconnects",
            "K-Means: first frame \(summary.firstIterations) iterations, warm-started frames \(String(format: "%.2f", summary.meanWarmIterations)) on average, \(summary.reseeds) re-seeded",
        ] + (summary.peakMemoryMB.map { [String(format: "peak memory %.0f MB", $0)] } ?? [])
    }
}

/// `roadwatch run`: the monitor on a file or stream, with an annotated video out.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch a video for anomalies and write it annotated: heat map, outlines, boxes, HUD.",
        discussion: """
            Every input frame gives one output frame, in order, with the input's timestamps. Ctrl-C (SIGINT) \
            or SIGTERM stops reading, finishes the frames in flight, closes the video and the events, and exits \
            with 130 / 143; a second Ctrl-C quits at once (use --fragmented so the file still plays).
            """
    )

    @Argument(help: "Video file or URL.")
    var input: String

    @Option(name: .shortAndLong, help: "Annotated output video (MP4).")
    var output: String

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var options: MonitorOptions
    @OptionGroup(title: "Sources, live streams and long runs") var source: SourceOptions

    func run() async throws {
        let status = try await runMonitor(input: input, output: output, modelOptions: modelOptions, options: options,
                                          source: source)
        if status != 0 { throw ExitCode(status) }
    }
}

/// `roadwatch demo`: the monitor on the bundled sample clip.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the monitor on the bundled demo clip (a crate in the lane); writes roadwatch-demo.mp4 and its events here."
    )

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "No progress on stderr.")
    var quiet = false

    /// The demo clip: `$ROADWATCH_SAMPLES`, ./samples, or the samples folder of the source tree.
    static func sample() throws -> String {
        let name = "demo_obstacle/video.mp4"
        var folders: [String] = []
        if let env = ProcessInfo.processInfo.environment["ROADWATCH_SAMPLES"] { folders.append(env) }
        folders.append(FileManager.default.currentDirectoryPath + "/samples")
        folders.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("samples").path)
        for folder in folders where FileManager.default.fileExists(atPath: folder + "/" + name) {
            return folder + "/" + name
        }
        throw RoadwatchError("the demo clip \(name) is not in ./samples (set ROADWATCH_SAMPLES to the samples folder)")
    }

    func run() async throws {
        var options = try MonitorOptions.parse([])
        options.eventsPath = "roadwatch-demo.events.jsonl"
        options.quiet = quiet
        let status = try await runMonitor(input: try Self.sample(), output: "roadwatch-demo.mp4", modelOptions: modelOptions,
                                          options: options, source: try SourceOptions.parse([]))
        let here = FileManager.default.currentDirectoryPath
        print("demo: open \(here)/roadwatch-demo.mp4 (events in \(here)/roadwatch-demo.events.jsonl)")
        if status != 0 { throw ExitCode(status) }
    }
}

/// This process's peak resident memory: VmHWM of /proc/self/status (the high-water mark of this program's
/// own memory; `getrusage`'s ru_maxrss on Linux also counts what the parent held when it started this one).
enum PeakMemory {
    static var megabytes: Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") {
            return kilobytes / 1024
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
    }
}
