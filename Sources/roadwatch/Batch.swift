import ArgumentParser
import Foundation
import Models
import Pipeline
import VideoIO

/// The settings a batch output was made with; a done-marker with other settings does not count.
struct BatchSettings: Codable, Equatable {
    var model: String
    var size: String
    var k: Int
    var tau: Double
    var variant: String
    var seed: UInt64
    var overlay: String
    var crf: Int
    var preset: String
    var minRegionArea: Int
    var fragmented: Bool
    var maxFrames: Int?
    var duration: Double?
}

/// Written last, atomically, when every output of an input is complete.
struct DoneMarker: Codable {
    var input: String
    var size: Int64?
    var mtime: Double?
    var settings: BatchSettings
    var version: String
}

/// What one input gave; merged by `batch --report`.
struct FileSummary: Codable, Equatable {
    var input: String
    var key: String
    var video: String
    var events: String
    var frames: Int
    var anomalyFrames: Int
    var regions: Int
    var seconds: Double
    var fps: Double
}

struct FailureRecord: Codable {
    var input: String
    var key: String
    var error: String
}

/// `roadwatch batch`: many recordings, each to its own annotated video, events and summary.
struct Batch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process folders of recordings: resumable, shardable over Slurm job arrays or Kubernetes Indexed Jobs.",
        discussion: """
            INPUTS are video files, folders (searched recursively for video files) and manifests (.txt, .list: \
            one path or URL per line, relative paths from the manifest's folder). For each input, OUT gets \
            <name>.mp4 (annotated), <name>.events.jsonl and <name>.summary.json, under the input's relative \
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
    }

    var settings: BatchSettings {
        BatchSettings(model: modelOptions.model, size: modelOptions.size ?? "default", k: options.method.k,
                      tau: options.method.tau, variant: options.method.variant, seed: options.method.seed,
                      overlay: options.overlay.rawValue, crf: options.crf, preset: options.preset,
                      minRegionArea: options.minRegionArea, fragmented: options.fragmented, maxFrames: source.maxFrames,
                      duration: source.duration)
    }

    func run() async throws {
        if let report {
            try BatchReport.merge(folder: report)
            return
        }
        guard let out else { return }
        let all = try BatchInputs.collect(inputs)
        try checkOutputFolder(out, items: all)
        let shard = try Shard.select(option: self.shard, shards: shards, environment: ProcessInfo.processInfo.environment)
        let mine = all.enumerated().filter { shard?.contains(position: $0.offset) ?? true }.map(\.element)
        try makeFolder(out, what: "output folder")
        Console.info("batch: \(mine.count) of \(all.count) inputs\(shard.map { " (shard \($0))" } ?? "") into \(out)")

        let pending = mine.filter { force || !isDone($0, out: out) }
        let skipped = mine.count - pending.count
        if skipped > 0 { Console.info("batch: \(skipped) already done, skipped") }
        var processed = 0, failed: [FailureRecord] = [], frames = 0
        let started = Date()
        var trap: SignalTrap?
        if !pending.isEmpty {
            let (model, size) = try await modelOptions.load()
            let monitor = try makeMonitor(model: model, size: size, modelOptions: modelOptions, options: options)
            let control = RunControl(monitor: monitor)
            trap = SignalTrap { control.stop() }
            let job = MonitorJob(monitor: monitor, options: options)
            for (n, item) in pending.enumerated() {
                if control.isStopped { break }
                Console.info("[\(n + 1)/\(pending.count)] \(item.input)")
                do {
                    guard let summary = try await process(item, out: out, job: job, control: control) else { break }
                    processed += 1
                    frames += summary.frames
                    print("\(item.key): \(summary.frames) frames, \(String(format: "%.2f", summary.fps)) fps, \(summary.anomalyFrames) with anomalies, \(summary.regions) regions")
                } catch {
                    let message = String(describing: error)
                    Console.error("\(item.input): \(message)")
                    let record = FailureRecord(input: item.input, key: item.key, error: message)
                    failed.append(record)
                    try? writeCodable(record, to: path(out, item, ".failed.json"))
                }
            }
        }
        let seconds = Date().timeIntervalSince(started)
        print(String(format: "batch: %d processed, %d skipped, %d failed; %d frames in %.1f s (%.3f files/s, %.2f frames/s)",
                     processed, skipped, failed.count, frames, seconds, Double(processed) / max(seconds, 1e-9),
                     Double(frames) / max(seconds, 1e-9)))
        if let status = trap?.exitStatus {
            Console.info("batch: interrupted; run the same command again to resume")
            throw ExitCode(status)
        }
        if !failed.isEmpty {
            throw RoadwatchError("\(failed.count) of \(mine.count) inputs failed: " + failed.map(\.input).joined(separator: ", "))
        }
    }

    /// Runs one input into partial files, then renames them and writes the summary and the done-marker.
    /// `nil` when the run was stopped by a signal: its partial outputs are left for the next run to redo.
    private func process(_ item: BatchItem, out: String, job: MonitorJob, control: RunControl) async throws -> FileSummary? {
        let fm = FileManager.default
        for suffix in [".done.json", ".failed.json"] { try? fm.removeItem(atPath: path(out, item, suffix)) }
        try makeFolder(URL(fileURLWithPath: path(out, item, "")).deletingLastPathComponent().path, what: "output folder")
        let video = path(out, item, ".mp4"), events = path(out, item, ".events.jsonl")
        let partialVideo = path(out, item, ".partial.mp4"), partialEvents = path(out, item, ".events.jsonl.partial")
        let identity = fileIdentity(item.input)
        let outcome: MonitorJob.Outcome
        do {
            // Recordings, even behind URLs, are read whole: no live dropping, the source's own timestamps.
            var input = source.inputOptions(for: item.input)
            input.frameThreading = true
            input.onWarning = { Console.warning("\(item.input): \($0)") }
            var policy = FrameFeed.Policy(reconnectMax: source.reconnectMax ?? 0)
            policy.maxFrames = source.maxFrames
            policy.duration = source.duration
            let feed = try await FrameFeed.open(item.input, options: input, policy: policy)
            outcome = try await job.process(feed, live: false, to: JobOutputs(video: partialVideo, events: partialEvents),
                                            control: control)
        } catch {
            for partial in [partialVideo, partialEvents] { try? fm.removeItem(atPath: partial) }
            throw error
        }
        if control.isStopped { return nil }
        for (from, to) in [(partialVideo, video), (partialEvents, events)] {
            _ = try? fm.removeItem(atPath: to)
            try fm.moveItem(atPath: from, toPath: to)
        }
        let s = outcome.summary
        let summary = FileSummary(input: item.input, key: item.key, video: item.key + ".mp4", events: item.key + ".events.jsonl",
                                  frames: s.frames, anomalyFrames: s.anomalyFrames, regions: outcome.regionTracks,
                                  seconds: (s.seconds * 1000).rounded() / 1000, fps: (s.framesPerSecond * 100).rounded() / 100)
        try writeCodable(summary, to: path(out, item, ".summary.json"))
        try writeCodable(DoneMarker(input: item.input, size: identity?.size, mtime: identity?.mtime, settings: settings,
                                    version: Roadwatch.version), to: path(out, item, ".done.json"))
        return summary
    }

    private func isDone(_ item: BatchItem, out: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path(out, item, ".done.json")),
              let marker = try? snakeCaseDecoder().decode(DoneMarker.self, from: data),
              FileManager.default.fileExists(atPath: path(out, item, ".mp4")),
              FileManager.default.fileExists(atPath: path(out, item, ".summary.json")) else { return false }
        let identity = fileIdentity(item.input)
        return marker.input == item.input && marker.settings == settings
            && marker.size == identity?.size && marker.mtime == identity?.mtime
    }

    private func path(_ out: String, _ item: BatchItem, _ suffix: String) -> String { out + "/" + item.key + suffix }

    private func fileIdentity(_ path: String) -> (size: Int64, mtime: Double)? {
        guard !BatchInputs.isURL(path), let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = attributes[.size] as? NSNumber, let date = attributes[.modificationDate] as? Date else { return nil }
        return (size.int64Value, date.timeIntervalSince1970)
    }

    /// The output folder must not be one of the input folders or inside one: its videos would become inputs.
    private func checkOutputFolder(_ out: String, items: [BatchItem]) throws {
        let outPath = URL(fileURLWithPath: out).standardizedFileURL.resolvingSymlinksInPath().path + "/"
        for input in inputs where !BatchInputs.isURL(input) {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let inPath = URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath().path + "/"
            if outPath.hasPrefix(inPath) {
                throw RoadwatchError("output folder '\(out)' is inside input folder '\(input)': its videos would be taken as inputs")
            }
        }
    }
}

/// Writes `value` as pretty JSON, atomically.
func writeCodable<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    do {
        try encoder.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw RoadwatchError("cannot write '\(path)': \(error.localizedDescription)")
    }
}

func snakeCaseDecoder() -> JSONDecoder {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return decoder
}

/// Merges the summaries and failures every shard wrote under one output folder.
enum BatchReport {
    struct Report: Codable {
        var files: Int
        var failedFiles: Int
        var frames: Int
        var anomalyFrames: Int
        var regions: Int
        var seconds: Double
        var items: [FileSummary]
        var failures: [FailureRecord]
    }

    static func merge(folder: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RoadwatchError("report folder '\(folder)' does not exist")
        }
        let decoder = snakeCaseDecoder()
        var items: [FileSummary] = [], failures: [FailureRecord] = []
        let root = URL(fileURLWithPath: folder)
        for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) ?? .init() {
            let name = url.lastPathComponent
            guard name.hasSuffix(".summary.json") || name.hasSuffix(".failed.json"),
                  let data = try? Data(contentsOf: url) else { continue }
            do {
                if name.hasSuffix(".summary.json") {
                    // Only summaries whose done-marker exists belong to finished inputs.
                    let marker = url.path.dropLast(".summary.json".count) + ".done.json"
                    guard FileManager.default.fileExists(atPath: String(marker)) else { continue }
                    items.append(try decoder.decode(FileSummary.self, from: data))
                } else {
                    failures.append(try decoder.decode(FailureRecord.self, from: data))
                }
            } catch {
                throw RoadwatchError("'\(url.path)' is not a roadwatch summary: \(error.localizedDescription)")
            }
        }
        items.sort { $0.key < $1.key }
        failures.sort { $0.key < $1.key }
        let report = Report(files: items.count, failedFiles: failures.count, frames: items.reduce(0) { $0 + $1.frames },
                            anomalyFrames: items.reduce(0) { $0 + $1.anomalyFrames }, regions: items.reduce(0) { $0 + $1.regions },
                            seconds: (items.reduce(0) { $0 + $1.seconds } * 1000).rounded() / 1000, items: items, failures: failures)
        try writeCodable(report, to: folder + "/report.json")
        let table = self.table(report)
        do {
            try Data(table.utf8).write(to: URL(fileURLWithPath: folder + "/report.txt"), options: .atomic)
        } catch {
            throw RoadwatchError("cannot write '\(folder)/report.txt': \(error.localizedDescription)")
        }
        print(table, terminator: "")
        print("report: \(folder)/report.json")
    }

    static func table(_ report: Report) -> String {
        let width = max(4, report.items.map(\.key.count).max() ?? 0, report.failures.map(\.key.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func right(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var lines = [pad("file", width) + "  " + right("frames", 7) + "  " + right("anomaly", 7) + "  " + right("regions", 7)
            + "  " + right("seconds", 8) + "  " + right("fps", 6)]
        for item in report.items {
            lines.append(pad(item.key, width) + "  " + right("\(item.frames)", 7) + "  " + right("\(item.anomalyFrames)", 7)
                + "  " + right("\(item.regions)", 7) + "  " + right(String(format: "%.1f", item.seconds), 8)
                + "  " + right(String(format: "%.2f", item.fps), 6))
        }
        for failure in report.failures { lines.append(pad(failure.key, width) + "  FAILED: " + failure.error) }
        lines.append(String(format: "%d files, %d failed, %d frames, %d with anomalies, %d regions, %.1f s of processing",
                            report.files, report.failedFiles, report.frames, report.anomalyFrames, report.regions, report.seconds))
        return lines.joined(separator: "\n") + "\n"
    }
}
