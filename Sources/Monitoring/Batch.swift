import Anomaly
import Foundation
import Pipeline
import Synchronization
import VideoIO

/// The settings a batch output was made with; a done-marker with other settings does not count.
public struct BatchSettings: Codable, Equatable, Sendable {
    public var model: String
    public var size: String
    /// Every parameter of the method (K, tau, variant, temporal smoothing, hysteresis, scene cut, region area).
    public var method: MethodSettings
    public var overlay: String
    public var crf: Int
    public var preset: String
    public var fragmented: Bool
    public var maxFrames: Int?
    public var duration: Double?
    /// Ignore-mask polygons as given.
    public var masks: [String]
    /// The event rules; nil: no event list.
    public var events: EventRules?
    /// GPS flags other than the defaults (`off`, `offset S`); nil: the track is looked up as found.
    public var gps: String?
    /// Snapshots and clips written under `KEY.evidence/`; nil: none.
    public var evidence: Bool?

    public init(model: String, size: String, method: MethodSettings, overlay: String, crf: Int, preset: String,
                fragmented: Bool, maxFrames: Int?, duration: Double?, masks: [String] = [], events: EventRules? = .default) {
        self.masks = masks
        self.events = events
        self.model = model
        self.size = size
        self.method = method
        self.overlay = overlay
        self.crf = crf
        self.preset = preset
        self.fragmented = fragmented
        self.maxFrames = maxFrames
        self.duration = duration
    }

    private enum CodingKeys: String, CodingKey {
        case model, size, method, overlay, crf, preset, fragmented, maxFrames = "max_frames", duration, masks, events, gps,
             evidence
    }
}

/// Written last, atomically, when every output of an input is complete.
public struct DoneMarker: Codable, Sendable {
    public var input: String
    public var size: Int64?
    public var mtime: Double?
    public var settings: BatchSettings
    public var version: String
}

/// An input that failed, with why.
public struct FailureRecord: Codable, Sendable {
    public var input: String
    public var key: String
    public var error: String
}

/// The resumable batch: each input to `OUT/KEY.mp4`, `.events.jsonl`, `.summary.json`, then `.done.json` last;
/// inputs whose done-marker matches the file and the settings are skipped.
public struct BatchRunner: Sendable {
    public let out: String
    public let settings: BatchSettings
    /// The program version recorded in done-markers.
    public let version: String

    public init(out: String, settings: BatchSettings, version: String) {
        self.out = out
        self.settings = settings
        self.version = version
    }

    public func path(_ item: BatchItem, _ suffix: String) -> String { out + "/" + item.key + suffix }

    /// Whether `item`'s outputs are complete and were made from this file with these settings.
    public func isDone(_ item: BatchItem) -> Bool {
        guard let marker = try? JSONFile.read(DoneMarker.self, from: path(item, ".done.json")),
              FileManager.default.fileExists(atPath: path(item, ".mp4")),
              FileManager.default.fileExists(atPath: path(item, ".summary.json")) else { return false }
        let identity = Self.fileIdentity(item.input)
        return marker.input == item.input && marker.settings == settings
            && marker.size == identity?.size && marker.mtime == identity?.mtime
    }

    /// Runs one input into partial files, then renames them and writes the summary and the done-marker.
    /// `nil` when the run was stopped: its partial outputs are left for the next run to redo. `locator` places
    /// the events (the input's GPS); with an event list, `KEY.events.geojson` and `.gpx` are written too.
    public func process(_ item: BatchItem, source: MonitorSource, outputs template: JobOutputs, job: MonitorJob,
                        control: RunControl, locator: EventLocator? = nil) async throws -> RunSummary? {
        let fm = FileManager.default
        for suffix in [".done.json", ".failed.json"] { try? fm.removeItem(atPath: path(item, suffix)) }
        try OutputChecks.makeFolder(URL(fileURLWithPath: path(item, "")).deletingLastPathComponent().path, what: "output folder")
        let video = path(item, ".mp4"), events = path(item, ".events.jsonl")
        let partialVideo = path(item, ".partial.mp4"), partialEvents = path(item, ".events.jsonl.partial")
        let list = path(item, ".event-list.jsonl"), partialList = path(item, ".event-list.jsonl.partial")
        var moves = [(partialVideo, video), (partialEvents, events)]
        let identity = Self.fileIdentity(item.input)
        var summary: RunSummary
        let records = RecordCollector()
        do {
            var outputs = template
            outputs.video = partialVideo
            outputs.events = partialEvents
            if var eventList = outputs.eventList {
                eventList.list = partialList
                eventList.camera = item.key
                eventList.locator = locator
                if settings.evidence == true { eventList.evidenceFolder = path(item, ".evidence") }
                outputs.eventList = eventList
                moves.append((partialList, list))
            }
            let feed = try await source.open()
            summary = try await job.process(feed, live: false, to: outputs, control: control,
                                            onRecord: { record in records.add(record) })
        } catch {
            for (partial, _) in moves { try? fm.removeItem(atPath: partial) }
            throw error
        }
        if control.isStopped { return nil }
        for (from, to) in moves {
            _ = try? fm.removeItem(atPath: to)
            try fm.moveItem(atPath: from, toPath: to)
        }
        summary.outputs = moves.map { String($0.1.dropFirst(out.count + 1)) }
        if template.eventList != nil {
            let features = GeoExport.features(records: records.all, track: locator?.track, key: item.key,
                                              input: item.input, evidencePrefix: item.key + ".evidence/")
            try GeoExport.write(GeoFeatureCollection(features: features), stem: path(item, ".events"))
            summary.outputs += [item.key + ".events.geojson", item.key + ".events.gpx"]
        }
        try JSONFile.write(summary, to: path(item, ".summary.json"))
        try JSONFile.write(DoneMarker(input: item.input, size: identity?.size, mtime: identity?.mtime, settings: settings,
                                      version: version), to: path(item, ".done.json"))
        return summary
    }

    /// Records a failed input beside its outputs.
    public func recordFailure(_ item: BatchItem, error: any Error) -> FailureRecord {
        let record = FailureRecord(input: item.input, key: item.key, error: String(describing: error))
        try? JSONFile.write(record, to: path(item, ".failed.json"))
        return record
    }

    static func fileIdentity(_ path: String) -> (size: Int64, mtime: Double)? {
        guard !BatchInputs.isURL(path), let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = attributes[.size] as? NSNumber, let date = attributes[.modificationDate] as? Date else { return nil }
        return (size.int64Value, date.timeIntervalSince1970)
    }

    /// The output folder must not be one of the input folders or inside one: its videos would become inputs.
    public static func checkOutputFolder(_ out: String, inputs: [String]) throws(JobError) {
        let outPath = URL(fileURLWithPath: out).standardizedFileURL.resolvingSymlinksInPath().path + "/"
        for input in inputs where !BatchInputs.isURL(input) {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let inPath = URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath().path + "/"
            if outPath.hasPrefix(inPath) {
                throw JobError("output folder '\(out)' is inside input folder '\(input)': its videos would be taken as inputs")
            }
        }
    }
}

/// The event lines of one input as they are written (the sink calls back from its actor).
final class RecordCollector: Sendable {
    private let records = Mutex<[EventRecord]>([])

    func add(_ record: EventRecord) { records.withLock { $0.append(record) } }
    var all: [EventRecord] { records.withLock { $0 } }
}

/// Merges the summaries and failures every shard wrote under one output folder.
public enum BatchReport {
    public struct Item: Codable, Sendable, Equatable {
        public var key: String
        public var input: String
        public var video: String
        public var events: String
        public var frames: Int
        public var anomaly_frames: Int
        public var regions: Int
        public var seconds: Double
        public var fps: Double
    }

    public struct Report: Codable, Sendable {
        public var files: Int
        public var failed_files: Int
        public var frames: Int
        public var anomaly_frames: Int
        public var regions: Int
        public var seconds: Double
        public var items: [Item]
        public var failures: [FailureRecord]
    }

    /// Reads every finished input's summary and every failure under `folder`; writes report.json and report.txt.
    public static func merge(folder: String) throws(JobError) -> Report {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JobError("report folder '\(folder)' does not exist")
        }
        var items: [Item] = [], failures: [FailureRecord] = []
        let root = URL(fileURLWithPath: folder).standardizedFileURL
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) ?? .init() {
            let name = url.lastPathComponent
            let full = url.standardizedFileURL.path
            if name.hasSuffix(".summary.json") {
                // Only summaries whose done-marker exists belong to finished inputs.
                let stem = String(full.dropLast(".summary.json".count))
                guard FileManager.default.fileExists(atPath: stem + ".done.json") else { continue }
                let s = try JSONFile.read(RunSummary.self, from: full)
                let key = stem.hasPrefix(prefix) ? String(stem.dropFirst(prefix.count)) : name
                items.append(Item(key: key, input: s.input, video: key + ".mp4", events: key + ".events.jsonl",
                                  frames: s.framesProcessed, anomaly_frames: s.anomalyFrames, regions: s.regionTracks,
                                  seconds: s.seconds, fps: (s.framesPerSecond * 100).rounded() / 100))
            } else if name.hasSuffix(".failed.json") {
                failures.append(try JSONFile.read(FailureRecord.self, from: full))
            }
        }
        items.sort { $0.key < $1.key }
        failures.sort { $0.key < $1.key }
        let report = Report(files: items.count, failed_files: failures.count, frames: items.reduce(0) { $0 + $1.frames },
                            anomaly_frames: items.reduce(0) { $0 + $1.anomaly_frames },
                            regions: items.reduce(0) { $0 + $1.regions },
                            seconds: (items.reduce(0) { $0 + $1.seconds } * 1000).rounded() / 1000, items: items,
                            failures: failures)
        try JSONFile.write(report, to: folder + "/report.json")
        do {
            try Data(table(report).utf8).write(to: URL(fileURLWithPath: folder + "/report.txt"), options: .atomic)
        } catch {
            throw JobError("cannot write '\(folder)/report.txt': \(error.localizedDescription)")
        }
        return report
    }

    public static func table(_ report: Report) -> String {
        let width = max(4, report.items.map(\.key.count).max() ?? 0, report.failures.map(\.key.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func right(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var lines = [pad("file", width) + "  " + right("frames", 7) + "  " + right("anomaly", 7) + "  " + right("regions", 7)
            + "  " + right("seconds", 8) + "  " + right("fps", 6)]
        for item in report.items {
            lines.append(pad(item.key, width) + "  " + right("\(item.frames)", 7) + "  " + right("\(item.anomaly_frames)", 7)
                + "  " + right("\(item.regions)", 7) + "  " + right(String(format: "%.1f", item.seconds), 8)
                + "  " + right(String(format: "%.2f", item.fps), 6))
        }
        for failure in report.failures { lines.append(pad(failure.key, width) + "  FAILED: " + failure.error) }
        lines.append(String(format: "%d files, %d failed, %d frames, %d with anomalies, %d regions, %.1f s of processing",
                            report.files, report.failed_files, report.frames, report.anomaly_frames, report.regions,
                            report.seconds))
        return lines.joined(separator: "\n") + "\n"
    }
}
