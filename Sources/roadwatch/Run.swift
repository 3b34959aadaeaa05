import Anomaly
import ArgumentParser
import Foundation
import Models
import Overlay
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

    @Option(help: "Regions smaller than this many frame pixels are not reported.")
    var minRegionArea = 256

    @Flag(help: "No progress on stderr.")
    var quiet = false

    @OptionGroup var method: MethodOptions

    func validate() throws {
        guard (0...51).contains(crf) else { throw ValidationError("--crf must be in 0...51, got \(crf)") }
        guard minRegionArea >= 0 else { throw ValidationError("--min-region-area must not be negative") }
    }
}

extension OverlayMode: ExpressibleByArgument {}

/// Fails before any work when `path` cannot be created or written.
func checkWritable(_ path: String, what: String) throws {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
        guard !isDirectory.boolValue else { throw RoadwatchError("\(what) '\(path)' is a directory") }
        guard FileManager.default.isWritableFile(atPath: path) else { throw RoadwatchError("\(what) '\(path)' is not writable") }
        return
    }
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw RoadwatchError("cannot write \(what) '\(path)': folder '\(folder)' does not exist")
    }
    guard FileManager.default.isWritableFile(atPath: folder) else {
        throw RoadwatchError("cannot write \(what) '\(path)': folder '\(folder)' is not writable")
    }
}

/// One event line per frame.
struct FrameEvent: Encodable {
    struct KMeansInfo: Encodable {
        var iterations: Int
        var warm: Bool
        var reseeded: Bool
        var inertia: Double
    }

    struct Region: Encodable {
        var id: Int
        var box: [Int]
        var area: Int
        var score: Double
    }

    struct Cluster: Encodable {
        var confidence: Double
        var ood: Bool
        var cells: Int
    }

    var frame: Int
    var t: Double
    var anomaly_fraction: Double
    var kmeans: KMeansInfo
    var regions: [Region]
    /// The first clustering's clusters: smoothed confidence, decision, size in grid cells.
    var clusters: [Cluster]
    /// Decoded to written, so far (the sink fills it in).
    var latency_ms: Double?
    /// Frames a live reader skipped up to this one.
    var dropped: Int

    init(_ work: FrameWork) {
        dropped = work.frame.droppedBefore
        frame = work.frame.index
        t = (work.frame.time * 1e6).rounded() / 1e6
        let mask = work.mask ?? []
        anomaly_fraction = Double(mask.filter { $0 }.count) / Double(max(1, mask.count))
        let k = work.clusterings.first
        kmeans = KMeansInfo(iterations: k?.iterations ?? 0, warm: k?.warm ?? false, reseeded: k?.reseeded ?? false,
                            inertia: k?.inertia ?? 0)
        if let primary = work.analysis?.clusterings.first {
            var sizes = [Int](repeating: 0, count: primary.confidence.count)
            for label in primary.kmeans.labels { sizes[Int(label)] += 1 }
            clusters = primary.confidence.indices.map {
                Cluster(confidence: primary.confidence[$0].isFinite ? (primary.confidence[$0] * 1000).rounded() / 1000 : 0,
                        ood: primary.outOfDistribution[$0], cells: sizes[$0])
            }
        } else {
            clusters = []
        }
        regions = work.regions.map {
            Region(id: $0.id, box: $0.region.box, area: $0.region.area, score: (-$0.region.score * 1000).rounded() / 1000)
        }
    }
}

/// The monitor for `model` at `size` with the method and overlay the options ask for.
func makeMonitor(model: LoadedModel, size: FrameSize, modelOptions: ModelOptions, options: MonitorOptions) throws -> Monitor {
    // The stages run in parallel: one compute thread each uses the cores better than two threads per stage
    // (bench pipeline: 2.58 against 2.21 frames/s at 1024x512 on 2 cores).
    if modelOptions.threads == nil { ComputeThreads.set(1) }
    var settings = options.method.settings
    settings.tau = options.method.tau
    return try Monitor(model: model, configuration: Monitor.Configuration(
        width: size.width, height: size.height, settings: settings, overlay: options.overlay,
        minimumRegionArea: options.minRegionArea))
}

/// Runs the monitor from `input` to `output` with the sinks the options ask for; returns the exit status.
func runMonitor(input: String, output: String, modelOptions: ModelOptions, options: MonitorOptions,
                source sourceOptions: SourceOptions) async throws -> Int32 {
    if URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath()
        == URL(fileURLWithPath: output).standardizedFileURL.resolvingSymlinksInPath() {
        throw RoadwatchError("output '\(output)' is the input: choose another file")
    }
    if output != "-" {
        if sourceOptions.segmentTime != nil {
            try checkWritable(VideoOutput.segmentName(output, index: 0), what: "output")
        } else {
            try checkWritable(output, what: "output")
        }
    }
    if let events = options.eventsPath { try checkWritable(events, what: "events file") }
    if let summary = sourceOptions.summaryJson { try checkWritable(summary, what: "summary file") }
    if let dir = options.maskDir { try makeFolder(dir, what: "mask folder") }
    let live = sourceOptions.isLive(input)
    func openFeed() async throws -> FrameFeed {
        try await FrameFeed.open(input, options: sourceOptions.inputOptions(for: input),
                                 policy: sourceOptions.policy(for: input), onEvent: SourceOptions.report)
    }
    // A file is opened first, so a bad one fails before the model loads. A live source is opened last:
    // whatever it sends while the model loads would only be a backlog of stale frames to drop.
    let early = live ? nil : try await openFeed()
    let (model, size) = try await modelOptions.load()
    let feed: FrameFeed
    if let early { feed = early } else { feed = try await openFeed() }
    let monitor = try makeMonitor(model: model, size: size, modelOptions: modelOptions, options: options)
    let control = RunControl(monitor: monitor)
    let trap = SignalTrap { control.stop() }
    if live { Console.info("live: reading the newest frame; frames the pipeline cannot keep up with are dropped") }
    let outcome = try await MonitorJob(monitor: monitor, options: options).process(
        feed, live: live, to: JobOutputs(video: output, events: options.eventsPath, masks: options.maskDir,
                                         segmentSeconds: sourceOptions.segmentTime), control: control)
    let summary = outcome.summary
    let report = RunSummary(input: input, outcome: outcome, interrupted: trap.signal != nil)
    if let path = sourceOptions.summaryJson { try writeCodable(report, to: path) }
    let names = StageTimings.names
    let stages = zip(names, summary.stageSeconds).map { "\($0) \(String(format: "%.1f", $1 * 1000)) ms" }.joined(separator: ", ")
    let written = outcome.files.count > 1 ? "\(outcome.files.count) files \(outcome.files[0]) ... \(outcome.files.last!)" : output
    print("wrote \(written): \(summary.frames) frames in \(String(format: "%.1f", summary.seconds)) s (\(String(format: "%.2f", summary.framesPerSecond)) fps), \(summary.anomalyFrames) with anomalies")
    print("per frame: \(stages)")
    print("latency (decoded to written): p50 \(report.latency_ms.p50) ms, p99 \(report.latency_ms.p99) ms; \(report.frames_in) frames in, \(report.frames_dropped) dropped, \(report.reconnects) reconnects")
    print("K-Means: first frame \(summary.firstIterations) iterations, warm-started frames \(String(format: "%.2f", summary.meanWarmIterations)) on average, \(summary.reseeds) re-seeded")
    if let path = options.eventsPath { print("events: \(path)") }
    if let maskDir = options.maskDir { print("masks: \(maskDir)") }
    if let path = sourceOptions.summaryJson { print("summary: \(path)") }
    return trap.exitStatus ?? 0
}

/// Appends JSON lines to a file, one whole line per write.
final class EventLog: @unchecked Sendable {
    private let handle: FileHandle
    let path: String

    init(path: String) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw RoadwatchError("cannot create events file '\(path)'")
        }
        self.handle = handle
    }

    func append(_ line: String) throws {
        do {
            try handle.write(contentsOf: Data((line + "\n").utf8))
        } catch {
            throw RoadwatchError("cannot write events file '\(path)': \(error.localizedDescription)")
        }
    }

    func close() throws { try handle.close() }
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
        abstract: "Run the monitor on the bundled sample clip; writes roadwatch-demo.mp4 and its events here."
    )

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "No progress on stderr.")
    var quiet = false

    /// The sample clip: `$ROADWATCH_SAMPLES`, ./samples, or the samples folder of the source tree.
    static func sample() throws -> String {
        let name = "solidWhiteRight.mp4"
        var folders: [String] = []
        if let env = ProcessInfo.processInfo.environment["ROADWATCH_SAMPLES"] { folders.append(env) }
        folders.append(FileManager.default.currentDirectoryPath + "/samples")
        folders.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("samples").path)
        for folder in folders where FileManager.default.fileExists(atPath: folder + "/" + name) {
            return folder + "/" + name
        }
        throw RoadwatchError("the sample clip \(name) is not in ./samples (set ROADWATCH_SAMPLES to the samples folder)")
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
