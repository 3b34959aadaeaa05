import ArgumentParser
import Foundation
import Models
import Monitoring
import Pipeline
import VideoIO

/// `roadwatch batch`: many recordings, each to its own annotated video, events and summary.
struct Batch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process folders of recordings: resumable, shardable over Slurm job arrays or Kubernetes Indexed Jobs.",
        discussion: """
            INPUTS are video files, folders (searched recursively for video files) and manifests (.txt, .list: \
            one path or URL per line, relative paths from the manifest's folder). For each input, OUT gets \
            <name>.mp4 (annotated), <name>.events.jsonl (per frame), <name>.event-list.jsonl (events with a start and an end) and <name>.summary.json, under the input's relative \
            path, then <name>.done.json last. Inputs whose done-marker matches the file (size, mtime) and the \
            settings are skipped, so an interrupted batch resumes where it stopped. A failing input is recorded \
            as <name>.failed.json and the batch goes on; the exit status is 1 when any input failed. \
            'roadwatch batch --report OUT' merges the summaries of all shards into OUT/report.json and a table.
            """
    )

    @Argument(help: "Video files, folders or manifests.")
    var inputs: [String] = []

    @Option(name: .customLong("out"), help: "Output folder.")
    var out: String?

    @Option(help: "Take every input whose position p in the sorted list has p % N == I (I/N).")
    var shard: String?

    @Option(help: "Number of shards when the index comes from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX.")
    var shards: Int?

    @Option(help: "Merge the per-file summaries under this folder into report.json and a table, then exit.")
    var report: String?

    @Flag(help: "Write each event's snapshot and clip under OUT/<name>.evidence/ (the report's thumbnails).")
    var snapshots = false

    @Flag(help: "Redo inputs even when their outputs are complete.")
    var force = false

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var options: MonitorOptions
    @OptionGroup(title: "Sources and limits") var source: SourceOptions

    func validate() throws {
        if report != nil { return }
        if source.segmentTime != nil || source.summaryJson != nil {
            throw ValidationError("batch writes one video and one summary per input; --segment-time and --summary-json are for 'run'")
        }
        if source.live == true { throw ValidationError("batch reads recordings whole; --live is for 'run'") }
        guard out != nil else { throw ValidationError("--out DIR is required (or --report DIR)") }
        guard !inputs.isEmpty else { throw ValidationError("give at least one input file, folder or manifest") }
        if options.eventsPath != nil || options.maskDir != nil {
            throw ValidationError("batch writes every input's events under --out; --events and --mask-dir are for 'run'")
        }
        if options.metricsListen != nil { throw ValidationError("--metrics-listen is for 'run' (and 'watch' serves /metrics itself)") }
        if options.events.eventsLog != nil || options.events.evidence != nil {
            throw ValidationError("batch writes every input's event list under --out; --events-log and --evidence are for 'run'")
        }
    }

    var settings: BatchSettings {
        var settings = BatchSettings(model: modelOptions.model, size: modelOptions.size ?? "default", method: options.method.settings,
                      overlay: options.overlay.rawValue, crf: options.crf, preset: options.preset,
                      fragmented: options.fragmented, maxFrames: source.maxFrames, duration: source.duration,
                      masks: options.events.masks, events: options.events.noEventsLog ? nil : options.events.rules)
        settings.gps = options.gps.setting
        settings.evidence = snapshots ? true : nil
        return settings
    }

    /// Recordings, even behind URLs, are read whole: no live dropping, the source's own timestamps.
    func recording(_ item: BatchItem) -> MonitorSource {
        var recording = source.source(for: item.input)
        recording.live = false
        recording.options.frameThreading = true
        recording.options.onWarning = { Console.warning("\(item.input): \($0)") }
        recording.policy = FrameFeed.Policy(reconnectMax: source.reconnectMax ?? 0)
        recording.policy.maxFrames = source.maxFrames
        recording.policy.duration = source.duration
        return recording
    }

    func run() async throws {
        if let report {
            print(BatchReport.table(try BatchReport.merge(folder: report)), terminator: "")
            let located = try GeoExport.merge(folder: report)
            try ReportPage.write(located, folder: report)
            print("report: \(report)/report.json, \(report)/report.html, \(report)/events.geojson, \(report)/events.gpx")
            return
        }
        guard let out else { return }
        let writesEventLists = !options.events.noEventsLog
        let all = try BatchInputs.collect(inputs)
        try BatchRunner.checkOutputFolder(out, inputs: inputs)
        let shard = try Shard.select(option: self.shard, shards: shards, environment: ProcessInfo.processInfo.environment)
        let mine = all.enumerated().filter { shard?.contains(position: $0.offset) ?? true }.map(\.element)
        try OutputChecks.makeFolder(out, what: "output folder")
        Console.info("batch: \(mine.count) of \(all.count) inputs\(shard.map { " (shard \($0))" } ?? "") into \(out)")

        let runner = BatchRunner(out: out, settings: settings, version: Roadwatch.version)
        let pending = mine.filter { force || !runner.isDone($0) }
        let skipped = mine.count - pending.count
        if skipped > 0 { Console.info("batch: \(skipped) already done, skipped") }
        var processed = 0, failed: [FailureRecord] = [], frames = 0, diskFullAt: Int?
        let started = Date()
        var trap: SignalTrap?
        if !pending.isEmpty {
            let (model, size) = try await modelOptions.load()
            let monitor = try makeMonitor(model: model, size: size, modelOptions: modelOptions, options: options)
            let control = RunControl(monitor: monitor)
            trap = SignalTrap { control.stop() }
            let job = MonitorJob(monitor: monitor)
            var template = options.outputs(video: nil, segmentSeconds: nil)
            template.eventList = options.events.outputs(video: out + "/batch.mp4", camera: "batch", live: false)
            for (n, item) in pending.enumerated() {
                if control.isStopped { break }
                Console.info("[\(n + 1)/\(pending.count)] \(item.input)")
                do {
                    let locator = template.eventList == nil ? nil : options.gps.locator(for: item.input, live: false)
                    guard let summary = try await runner.process(item, source: recording(item), outputs: template, job: job,
                                                                 control: control, locator: locator) else { break }
                    processed += 1
                    frames += summary.frames
                    print("\(item.key): \(summary.frames) frames, \(String(format: "%.2f", summary.framesPerSecond)) fps, \(summary.anomalyFrames) with anomalies, \(summary.regionTracks) regions")
                } catch {
                    Console.error("\(item.input): \(error)")
                    failed.append(runner.recordFailure(item, error: error))
                    // Every input after this one would fail the same way.
                    if JobError.isDiskFull(error) {
                        diskFullAt = n
                        break
                    }
                }
            }
        }
        // Not on a full disk: the merged files would fail too, and the batch is to be resumed anyway.
        if writesEventLists, diskFullAt == nil { try GeoExport.merge(folder: out) }
        let seconds = Date().timeIntervalSince(started)
        print(String(format: "batch: %d processed, %d skipped, %d failed; %d frames in %.1f s (%.3f files/s, %.2f frames/s)",
                     processed, skipped, failed.count, frames, seconds, Double(processed) / max(seconds, 1e-9),
                     Double(frames) / max(seconds, 1e-9)))
        if let n = diskFullAt {
            throw RoadwatchError("batch: stopped, the disk of '\(out)' is full; \(pending.count - n - 1) inputs not started. Free some space and run the same command again to resume")
        }
        if let status = trap?.exitStatus {
            Console.info("batch: interrupted; run the same command again to resume")
            throw ExitCode(status)
        }
        if !failed.isEmpty {
            throw RoadwatchError("\(failed.count) of \(mine.count) inputs failed: " + failed.map(\.input).joined(separator: ", "))
        }
    }
}
