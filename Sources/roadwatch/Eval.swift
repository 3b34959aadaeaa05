import Anomaly
import ArgumentParser
import Foundation
import Models
import Monitoring
import Pipeline
import VideoIO

/// `roadwatch eval`: the method's detection quality on labelled data.
struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure anomaly detection against ground truth: AP, FPR95, AUROC per method.",
        subcommands: [RoadAnomalyEval.self, VideoEval.self, VideosEval.self]
    )
}

extension AlarmRule: ExpressibleByArgument {}

/// The method's parameters as flags, shared by run, batch, demo and eval; every default is MethodSettings'.
struct MethodOptions: ParsableArguments {
    @Option(help: "Clusters per frame.")
    var k = MethodSettings.default.clusterCounts[0]

    @Option(help: "A cluster is anomalous when its mean max-logit is below this.")
    var tau = MethodSettings.default.tau

    @Option(help: "Score map: \(MethodSettings.variantNames.joined(separator: ", ")).")
    var variant = MethodSettings.default.variantName

    @Option(help: "k-means++ seed.")
    var seed = MethodSettings.default.seed

    @Option(help: "Weight of the newest frame in each cluster's moving average of confidence (1 = none).")
    var smoothing = MethodSettings.default.smoothing

    @Option(help: "A flagged cluster clears only once its smoothed confidence is above tau + this.")
    var hysteresis = MethodSettings.default.hysteresis

    @Option(help: "Re-seed K-Means when a frame's first warm assignment costs more than this multiple of the running mean.")
    var sceneCut = MethodSettings.default.sceneCutFactor

    @Option(help: "Regions smaller than this many frame pixels are not reported.")
    var minRegionArea = MethodSettings.default.minimumRegionArea

    @Option(help: "Alarm rule: memory (features novel against this stream's memory of normal road, followed as tracks), change (a drop in confidence and novel features against the previous moment) or clusters (a cluster's smoothed confidence below tau).")
    var alarm = MethodSettings.default.alarm

    @Option(help: "The change rule alarms where a cell's change score exceeds this.")
    var alarmThreshold = MethodSettings.default.alarmThreshold

    @Option(name: .customLong("set"), help: ArgumentHelp("Any method setting by its JSON key, e.g. --set novelty_threshold=3 (repeatable).",
                                                         valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: ArgumentHelp("A calibrated memory of normal road (made by `roadwatch calibrate`) that the memory rule consults beside the stream's own.",
                               valueName: "file.rwmem"))
    var memory: String?

    /// The file `--memory` names, read (nil without one).
    func loadMemory() throws -> MemoryBank? {
        guard let memory else { return nil }
        do { return try MemoryBank(contentsOf: memory) } catch { throw JobError(error.description) }
    }

    func validate() throws {
        guard k >= 1 && k <= 64 else { throw ValidationError("--k must be between 1 and 64") }
        guard smoothing > 0 && smoothing <= 1 else { throw ValidationError("--smoothing must be in (0, 1], got \(smoothing)") }
        guard hysteresis >= 0 else { throw ValidationError("--hysteresis must not be negative") }
        guard sceneCut >= 1 else { throw ValidationError("--scene-cut must be at least 1, got \(sceneCut)") }
        guard minRegionArea >= 0 else { throw ValidationError("--min-region-area must not be negative") }
        guard MethodSettings.variant(variant) != nil else {
            throw ValidationError("--variant must be one of \(MethodSettings.variantNames.joined(separator: ", ")), got '\(variant)'")
        }
        do {
            _ = try MethodSettings.overriding(flagSettings, with: overrides)
            try settings.validate()
        } catch {
            throw ValidationError(error.description)
        }
    }

    var settings: MethodSettings {
        (try? MethodSettings.overriding(flagSettings, with: overrides)) ?? flagSettings
    }

    private var flagSettings: MethodSettings {
        var base = MethodSettings.default
        base.clusterCounts = [k]
        base.tau = tau
        base.seed = seed
        base.smoothing = smoothing
        base.hysteresis = hysteresis
        base.sceneCutFactor = sceneCut
        base.minimumRegionArea = minRegionArea
        base.alarm = alarm
        base.alarmThreshold = alarmThreshold
        return MethodSettings.variant(variant, base: base) ?? base
    }
}

/// Where an eval's results go besides the table: `--json`, and whether progress shows.
struct EvalOutput: ParsableArguments {
    @Option(help: "Write the results as one JSON object to this file ('-' for stdout).")
    var json: String?

    @Flag(help: "No progress on stderr.")
    var quiet = false

    /// A JSON file that cannot be written fails before the work, not after it.
    func validate() throws {
        guard let json, json != "-" else { return }
        do {
            try OutputChecks.writable(json, what: "JSON file")
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// Writes `object` as JSON to `path` ("-" for stdout).
func writeJSON(_ object: [String: Any], to path: String) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    if path == "-" {
        print(String(decoding: data, as: UTF8.self))
    } else {
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw RoadwatchError("cannot write '\(path)': \(error.localizedDescription)")
        }
    }
}

func metricsTable(_ metrics: [String: DetectionMetrics], columns: [String] = ["AP", "FPR95", "AUROC"]) -> String {
    var lines = ["method        " + columns.map { $0.padding(toLength: 8, withPad: " ", startingAt: 0) }.joined()]
    for name in Evaluation.methods {
        guard let m = metrics[name] else { continue }
        let values = columns.map { column -> Double in
            switch column {
            case "AP": m.ap
            case "FPR95": m.fpr95
            default: m.auroc
            }
        }
        lines.append(name.padding(toLength: 14, withPad: " ", startingAt: 0) + values.map { String(format: "%-8.2f", 100 * $0) }.joined())
    }
    return lines.joined(separator: "\n")
}

struct RoadAnomalyEval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "road-anomaly",
        abstract: "Score every image of a RoadAnomaly folder (frames/<name>.jpg + labels) at its full resolution.",
        discussion: """
            Pixels of all images are pooled; anomaly (label 2) is positive, label 0 negative, anything else \
            ignored. Methods: clusters (this method), max-logit, msp (max softmax probability) and entropy, all \
            on the same logits. Each image is clustered from k-means++ with the fixed seed.
            """
    )

    @Argument(help: "Dataset folder (holding frames/).")
    var folder: String

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var method: MethodOptions

    @OptionGroup var output: EvalOutput

    func run() async throws {
        let dataset = try RoadAnomalyDataset(folder: folder)
        let (model, size) = try await modelOptions.load()
        let settings = method.settings
        let progress = Progress(total: dataset.items.count, unit: "images", quiet: output.quiet)
        let result = try await ImageEvaluation.run(dataset, model: model, size: size, settings: settings) { image in
            progress.advance(note: image.name)
        }
        progress.finish()
        let metrics = result.metrics
        let seconds = result.seconds
        print("RoadAnomaly: \(dataset.items.count) images at \(size) (\(model.descriptor.name), K=\(settings.clusterCounts.map(String.init).joined(separator: "+")), \(method.variant), tau \(method.tau)); \(result.pixels) pixels")
        print(metricsTable(metrics))
        print(String(format: "%.2f s per image", seconds / Double(dataset.items.count)))
        if let json = output.json {
            var methods: [String: Any] = [:]
            for (name, m) in metrics { methods[name] = ["AP": m.ap, "FPR95": m.fpr95, "AUROC": m.auroc] }
            var perImage: [String: Any] = [:]
            for image in result.images {
                var entry: [String: Any] = image.ap.mapValues { $0.isNaN ? NSNull() as Any : $0 as Any }
                entry["cluster_confidence"] = image.clusterConfidence
                entry["kmeans_iterations"] = image.iterations
                entry["kmeans_inertia"] = image.inertia
                perImage[image.name] = entry
            }
            try writeJSON([
                "dataset": "road-anomaly", "images": dataset.items.count, "size": [size.width, size.height],
                "model": model.descriptor.name, "variant": method.variant, "k": method.k, "tau": method.tau,
                "pixels": result.pixels, "seconds_per_image": seconds / Double(dataset.items.count),
                "methods": methods, "per_image": perImage, "method": try settingsObject(settings),
            ], to: json)
        }
    }
}

/// The method's settings as a JSON object, for the eval outputs.
func settingsObject(_ settings: MethodSettings) throws -> Any {
    try JSONSerialization.jsonObject(with: try JSONEncoder().encode(settings))
}

struct VideoEval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "video",
        abstract: "Score a video's frames against per-frame masks, with K-Means warm-started from frame to frame.",
        discussion: """
            Masks are DIR/NNNNN.png per frame index from 0 (0 = in-distribution, 2 = anomaly). Reports pooled AP \
            and FPR95 per method, the fraction of pixels flagged (at tau) on frames whose mask has no anomaly, and \
            K-Means iterations warm-started against a cold k-means++ run on the same frames.
            """
    )

    @Argument(help: "Video file.")
    var video: String

    @Option(help: "Folder of per-frame masks NNNNN.png.")
    var masks: String

    @Option(help: "Score every Nth frame (K-Means is warm-started across the frames scored).")
    var every = 1

    @Option(help: ArgumentHelp("Pool every Nth row and column of each frame for AP/FPR95 (1: every pixel).",
                               discussion: "Past 2 M pooled pixels they are sorted and spilled to an unlinked temporary file, so memory stays flat however long the clip: at the default 8 a 1,000-frame 720p clip pools 14.4 M pixels. The metrics are exact on the pixels pooled; the alarm metrics always use every pixel."))
    var pixelStride = 8

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var method: MethodOptions

    @OptionGroup var output: EvalOutput

    func validate() throws {
        guard every >= 1 else { throw ValidationError("--every must be at least 1") }
        guard pixelStride >= 1 else { throw ValidationError("--pixel-stride must be at least 1") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: masks, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--masks '\(masks)' is not a folder")
        }
    }

    func run() async throws {
        let (model, size) = try await modelOptions.load()
        let settings = method.settings
        let total = try await VideoSource.open(video).info.frameCount.map { ($0 + every - 1) / every }
        let progress = Progress(total: total, unit: "frames", quiet: output.quiet)
        let r = try await VideoEvaluation.run(video: video, masks: masks, every: every, model: model, size: size,
                                              memory: try method.loadMemory(),
                                              settings: settings, pixelStride: pixelStride,
                                              onWarning: { Console.warning($0) }) { _ in progress.advance() }
        progress.finish()
        let pooled = pixelStride == 1 ? "every pixel" : "every \(pixelStride)th row and column"
        print("\(video): \(r.frames) frames at \(size) (\(model.descriptor.name), K=\(method.k), every \(every)); \(r.pixels) pixels (\(pooled))")
        print(metricsTable(r.metrics, columns: ["AP", "FPR95"]))
        print(String(format: "false alarms on %d clean frames: %.3f%% of pixels flagged at tau %.3f", r.cleanFrames, 100 * r.cleanFalseAlarmFraction, method.tau))
        print(String(format: "K-Means iterations: first frame %d, warm %.2f, cold k-means++ on the same frames %.2f; warm/cold inertia %.4f",
                     r.firstIterations, r.warmIterations, r.coldIterations, r.inertiaRatio))
        print(AlarmTable.header)
        print(AlarmTable.row(video, r.alarms))
        print(String(format: "%.2f s per frame", r.seconds / Double(r.frames)))
        if let json = output.json {
            var methods: [String: Any] = [:]
            for (name, m) in r.metrics { methods[name] = ["AP": m.ap, "FPR95": m.fpr95] }
            func number(_ x: Double) -> Any { x.isNaN ? NSNull() : x }
            try writeJSON([
                "video": video, "frames": r.frames, "every": every, "size": [size.width, size.height],
                "pixels": r.pixels, "pixel_stride": r.pixelStride,
                "model": model.descriptor.name, "methods": methods, "method": try settingsObject(settings),
                "clean_frames": r.cleanFrames, "clean_false_alarm_fraction": r.cleanFalseAlarmFraction,
                "alarms": AlarmTable.object(r.alarms),
                "kmeans": ["first_iterations": r.firstIterations, "warm_iterations": number(r.warmIterations),
                           "cold_iterations": number(r.coldIterations), "inertia_ratio": number(r.inertiaRatio)],
            ], to: json)
        }
    }
}

/// The alarm metrics as a table row and as JSON.
enum AlarmTable {
    static let header = "clip                                          frames  hit    clean  stray  first hit  precision  recall  F1"

    static func cell(_ x: Double) -> String { x.isNaN ? "  -  " : String(format: "%.3f", x) }

    static func row(_ name: String, _ a: AlarmMetrics) -> String {
        let shown = name.count > 44 ? "..." + name.suffix(41) : name
        let delay = a.firstObjectFrame == nil ? "-" : (a.firstHitDelay.map(String.init) ?? "never")
        return shown.padding(toLength: 46, withPad: " ", startingAt: 0) + String(format: "%6d  ", a.frames)
            + [a.hitRate, a.cleanAlarmRate, a.strayAlarmRate].map(cell).joined(separator: "  ")
            + "  " + delay.padding(toLength: 9, withPad: " ", startingAt: 0) + "  " + cell(a.precision) + "      "
            + cell(a.recall) + "   " + cell(a.f1)
    }

    static func object(_ a: AlarmMetrics) -> [String: Any] {
        func number(_ x: Double) -> Any { x.isNaN ? NSNull() : x }
        return ["frames": a.frames, "object_frames": a.objectFrames, "clean_frames": a.cleanFrames,
                "hit_rate": number(a.hitRate), "clean_alarm_rate": number(a.cleanAlarmRate),
                "stray_alarm_rate": number(a.strayAlarmRate), "first_hit_delay": a.firstHitDelay.map { $0 as Any } ?? NSNull(),
                "precision": number(a.precision), "recall": number(a.recall), "f1": number(a.f1)]
    }
}

/// The event-level figures as a table row, a summary line and JSON.
enum EventTable {
    static let header = "clip                                          delay s  in event  events  false  comp. precision  recall  F1"

    static func row(_ name: String, _ e: EventMetrics) -> String {
        let shown = name.count > 44 ? "..." + name.suffix(41) : name
        let delay = e.tallAt == nil ? "-" : (e.delay.map { String(format: "%.2f", $0) } ?? "never")
        return shown.padding(toLength: 46, withPad: " ", startingAt: 0) + delay.padding(toLength: 9, withPad: " ", startingAt: 0)
            + AlarmTable.cell(e.coverage) + "     " + String(format: "%6d  %5d  ", e.events, e.falseEvents)
            + AlarmTable.cell(e.componentPrecision) + "            " + AlarmTable.cell(e.componentRecall) + "   "
            + AlarmTable.cell(e.componentF1)
    }

    static func object(_ e: EventMetrics) -> [String: Any] {
        func number(_ x: Double?) -> Any { x.map { $0.isNaN ? NSNull() as Any : $0 as Any } ?? NSNull() }
        return ["tall_at": number(e.tallAt), "first_alarm_at": number(e.firstAlarmAt), "delay": number(e.delay),
                "coverage": number(e.coverage), "events": e.events, "false_events": e.falseEvents,
                "seconds": e.seconds, "component_precision": number(e.componentPrecision),
                "component_recall": number(e.componentRecall), "component_f1": number(e.componentF1)]
    }

    /// Over the clips: the object clips' mean delay and coverage, how many were flagged within 1 s of being
    /// 32 px tall, false events per hour of the clips without objects, the pooled component figures.
    struct Summary {
        var withObjects = 0, withinOneSecond = 0
        var meanDelay = Double.nan, meanCoverage = Double.nan, falseEventsPerCleanHour = Double.nan
        var cleanHours = 0.0
        var pooled = EventMetrics()

        init(_ clips: [EventMetrics]) {
            let objects = clips.filter { $0.objectFrames > 0 }
            withObjects = objects.count
            withinOneSecond = objects.filter { ($0.delay ?? .infinity) <= 1 }.count
            let delays = objects.map { $0.delay ?? .nan }.filter { !$0.isNaN }
            if !delays.isEmpty { meanDelay = delays.reduce(0, +) / Double(delays.count) }
            if !objects.isEmpty { meanCoverage = objects.map(\.coverage).reduce(0, +) / Double(objects.count) }
            let clean = clips.filter { $0.objectFrames == 0 }
            cleanHours = clean.map(\.seconds).reduce(0, +) / 3600
            if cleanHours > 0 { falseEventsPerCleanHour = Double(clean.map(\.falseEvents).reduce(0, +)) / cleanHours }
            for c in clips { pooled.merge(c) }
        }

        var line: String {
            String(format: "events: %d of %d objects flagged within 1 s of being 32 px tall (mean delay %.2f s), in an event %.3f of their time; %.1f false events per clean hour (%.3f h of clean clips); components precision %@ recall %@ F1 %@",
                   withinOneSecond, withObjects, meanDelay, meanCoverage, falseEventsPerCleanHour, cleanHours,
                   AlarmTable.cell(pooled.componentPrecision), AlarmTable.cell(pooled.componentRecall), AlarmTable.cell(pooled.componentF1))
        }

        var object: [String: Any] {
            func number(_ x: Double) -> Any { x.isNaN ? NSNull() : x }
            return ["objects": withObjects, "within_1s": withinOneSecond, "mean_delay": number(meanDelay),
                    "mean_coverage": number(meanCoverage), "false_events_per_clean_hour": number(falseEventsPerCleanHour),
                    "clean_hours": cleanHours, "component_precision": number(pooled.componentPrecision),
                    "component_recall": number(pooled.componentRecall), "component_f1": number(pooled.componentF1)]
        }
    }
}

/// `roadwatch eval videos`: the alarm metrics of several clips, a row each and the mean.
struct VideosEval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "videos",
        abstract: "The binary alarm on several clips: hit, clean-alarm and stray-alarm rates, first hit, pixel F1.",
        discussion: """
            Each PATH is a folder holding video.mp4 and masks/NNNNN.png (the synthetic_* layout: 0 = in \
            distribution, 2 = anomaly), or a plain video, whose frames all count as clean. Every clip runs \
            through the monitor's own stages, warm-started across the frames scored, so the mask measured is \
            the one `run` writes. "clean" pools the clean frames of every clip (the plain videos and the \
            object clips' frames before the object); the other columns are means over the clips with objects.
            """
    )

    @Argument(help: "Clip folders (video.mp4 + masks/) or plain videos.")
    var paths: [String]

    @Option(help: "Score every Nth frame.")
    var every = 1

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var method: MethodOptions

    @OptionGroup var output: EvalOutput

    func validate() throws {
        guard every >= 1 else { throw ValidationError("--every must be at least 1") }
        guard !paths.isEmpty else { throw ValidationError("give at least one clip folder or video") }
    }

    /// The video and the masks folder of a PATH.
    static func clip(_ path: String) throws -> (video: String, masks: String?) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RoadwatchError("clip '\(path)' does not exist")
        }
        guard isDirectory.boolValue else { return (path, nil) }
        let video = path + "/video.mp4", masks = path + "/masks"
        guard FileManager.default.fileExists(atPath: video) else { throw RoadwatchError("clip folder '\(path)' has no video.mp4") }
        guard FileManager.default.fileExists(atPath: masks, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RoadwatchError("clip folder '\(path)' has no masks/ folder")
        }
        return (video, masks)
    }

    func run() async throws {
        let clips = try paths.map(Self.clip)
        let (model, size) = try await modelOptions.load()
        let settings = method.settings
        let memory = try method.loadMemory()
        var rows: [(String, AlarmMetrics, Double)] = []
        var eventRows: [(String, EventMetrics)] = []
        print("\(clips.count) clips at \(size) (\(model.descriptor.name), K=\(method.k), \(method.variant), tau \(method.tau), every \(every))")
        print(AlarmTable.header)
        for (path, clip) in zip(paths, clips) {
            let progress = Progress(total: nil, unit: "frames", quiet: output.quiet)
            let r = try await VideoEvaluation.run(video: clip.video, masks: clip.masks, every: every, model: model, size: size,
                                                  memory: memory,
                                                  settings: settings, poolsPixels: false,
                                                  onWarning: { Console.warning($0) }) { _ in progress.advance(note: path) }
            progress.finish()
            let name = URL(fileURLWithPath: path).lastPathComponent
            rows.append((name, r.alarms, r.seconds / Double(max(1, r.frames))))
            eventRows.append((name, r.events))
            print(AlarmTable.row(name, r.alarms))
        }
        let withObjects = rows.filter { $0.1.objectFrames > 0 }
        var clean = AlarmMetrics()
        for row in rows { clean.merge(row.1) }
        // Means over the clips where the figure is defined (precision is not, on a clip with nothing flagged).
        func mean(_ f: (AlarmMetrics) -> Double) -> Double {
            let values = withObjects.map { f($0.1) }.filter { !$0.isNaN }
            return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
        }
        let means: [String: Double] = ["hit_rate": mean(\.hitRate), "stray_alarm_rate": mean(\.strayAlarmRate),
                                       "precision": mean(\.precision), "recall": mean(\.recall), "f1": mean(\.f1),
                                       "clean_alarm_rate": clean.cleanAlarmRate]
        print(String(format: "mean over %d clips with objects: hit %@, stray %@, F1 %@; clean alarm rate over all %d clean frames %@",
                     withObjects.count, AlarmTable.cell(means["hit_rate"]!), AlarmTable.cell(means["stray_alarm_rate"]!),
                     AlarmTable.cell(means["f1"]!), clean.cleanFrames, AlarmTable.cell(clean.cleanAlarmRate)))
        print(EventTable.header)
        for (name, e) in eventRows { print(EventTable.row(name, e)) }
        let summary = EventTable.Summary(eventRows.map(\.1))
        print(summary.line)
        let secondsPerFrame = rows.map(\.2).reduce(0, +) / Double(max(1, rows.count))
        print(String(format: "%.3f s per frame", secondsPerFrame))
        if let json = output.json {
            var clipObjects: [[String: Any]] = []
            for (name, a, _) in rows {
                var o = AlarmTable.object(a)
                o["clip"] = name
                clipObjects.append(o)
            }
            for (i, (_, e)) in eventRows.enumerated() { clipObjects[i]["events"] = EventTable.object(e) }
            try writeJSON(["clips": clipObjects, "mean": means.mapValues { $0.isNaN ? NSNull() as Any : $0 as Any },
                           "events": summary.object,
                           "clean_frames": clean.cleanFrames, "every": every, "size": [size.width, size.height],
                           "model": model.descriptor.name, "method": try settingsObject(settings),
                           "seconds_per_frame": secondsPerFrame], to: json)
        }
    }
}
