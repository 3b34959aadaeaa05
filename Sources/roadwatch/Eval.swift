import Anomaly
import ArgumentParser
import Foundation
import Models
import Pipeline
import VideoIO

/// `roadwatch eval`: the method's detection quality on labelled data.
struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure anomaly detection against ground truth: AP, FPR95, AUROC per method.",
        subcommands: [RoadAnomalyEval.self, VideoEval.self]
    )
}

/// Method options shared by the eval commands.
struct MethodOptions: ParsableArguments {
    @Option(help: "Clusters per frame.")
    var k = 4

    @Option(help: "A cluster is anomalous when its mean max-logit is below this.")
    var tau = MethodSettings.default.tau

    @Option(help: "Score map: \(MethodSettings.variantNames.joined(separator: ", ")).")
    var variant = "d2b"

    @Option(help: "k-means++ seed.")
    var seed: UInt64 = 0

    func validate() throws {
        guard k >= 1 && k <= 64 else { throw ValidationError("--k must be between 1 and 64") }
        guard MethodSettings.variant(variant) != nil else {
            throw ValidationError("--variant must be one of \(MethodSettings.variantNames.joined(separator: ", ")), got '\(variant)'")
        }
    }

    var settings: MethodSettings {
        let base = MethodSettings(clusterCounts: [k], tau: tau, seed: seed)
        return MethodSettings.variant(variant, base: base)!
    }
}

/// The four scores every eval reports, in a fixed order.
let evaluatedMethods = ["clusters", "max-logit", "msp", "entropy"]

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
    for name in evaluatedMethods {
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

    @Option(help: "Write the results as one JSON object to this file ('-' for stdout).")
    var json: String?

    @Flag(help: "No progress on stderr.")
    var quiet = false

    func run() async throws {
        let dataset = try RoadAnomalyDataset(folder: folder)
        let (model, size) = try await modelOptions.load()
        let analyzer = try FrameAnalyzer(model: model, width: size.width, height: size.height, settings: method.settings)
        let pool = PixelPool(methods: evaluatedMethods)
        var perImage: [String: Any] = [:]
        let progress = Progress(total: dataset.items.count, unit: "images", quiet: quiet)
        for item in dataset.items {
            let picture = try StillImage.readRGB(item.image)
            let labels = try StillImage.readGray8(item.labels)
            guard labels.width == picture.width, labels.height == picture.height else {
                throw RoadwatchError("label file '\(item.labels)' is \(labels.width)x\(labels.height), its image is \(picture.width)x\(picture.height)")
            }
            let result = analyzer.analyze(rgb: picture.samples, width: picture.width, height: picture.height, warm: false)
            let maps = scoreMaps(result, model: model, settings: analyzer.threshold.settings, width: picture.width, height: picture.height)
            pool.add(labels: labels.samples, scores: maps)
            let single = PixelPool(methods: evaluatedMethods)
            single.add(labels: labels.samples, scores: maps)
            var entry: [String: Any] = single.metrics().mapValues { $0.ap.isNaN ? NSNull() as Any : $0.ap as Any }
            entry["cluster_confidence"] = result.analysis.clusterings[0].confidence.sorted()
            entry["kmeans_iterations"] = result.analysis.clusterings[0].kmeans.iterations
            entry["kmeans_inertia"] = result.analysis.clusterings[0].kmeans.inertia
            perImage[item.name] = entry
            progress.advance(note: item.name)
        }
        progress.finish()
        let metrics = pool.metrics()
        let seconds = progress.elapsed
        print("RoadAnomaly: \(dataset.items.count) images at \(size) (\(model.descriptor.name), K=\(method.settings.clusterCounts.map(String.init).joined(separator: "+")), \(method.variant), tau \(method.tau)); \(pool.count) pixels")
        print(metricsTable(metrics))
        print(String(format: "%.2f s per image", seconds / Double(dataset.items.count)))
        if let json {
            var methods: [String: Any] = [:]
            for (name, m) in metrics { methods[name] = ["AP": m.ap, "FPR95": m.fpr95, "AUROC": m.auroc] }
            try writeJSON([
                "dataset": "road-anomaly", "images": dataset.items.count, "size": [size.width, size.height],
                "model": model.descriptor.name, "variant": method.variant, "k": method.k, "tau": method.tau,
                "pixels": pool.count, "seconds_per_image": seconds / Double(dataset.items.count),
                "methods": methods, "per_image": perImage,
            ], to: json)
        }
    }
}

/// The four score maps of one frame at the output size, in `evaluatedMethods` order.
func scoreMaps(_ result: FrameResult, model: LoadedModel, settings: MethodSettings, width: Int, height: Int) -> [[Float]] {
    let baselines = ScoreMaps.baselines(logits: result.logits, classes: model.descriptor.inDistributionClasses, width: width, height: height)
    let clusters = ScoreMaps.clusters(result.analysis, variant: settings.score, width: width, height: height,
                                      negativeMaxLogit: baselines.maxLogit)
    return [clusters, baselines.maxLogit, baselines.msp, baselines.entropy]
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

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var method: MethodOptions

    @Option(help: "Write the results as one JSON object to this file ('-' for stdout).")
    var json: String?

    @Flag(help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        guard every >= 1 else { throw ValidationError("--every must be at least 1") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: masks, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--masks '\(masks)' is not a folder")
        }
    }

    func run() async throws {
        let (model, size) = try await modelOptions.load()
        let settings = method.settings
        let analyzer = try FrameAnalyzer(model: model, width: size.width, height: size.height, settings: settings)
        let cold = KMeans(clusters: settings.clusterCounts[0], maxIterations: settings.maxIterations,
                          tolerance: settings.tolerance, seed: settings.seed)
        let source = try await VideoSource.open(video, options: InputOptions(onWarning: { Console.warning($0) }))
        // Fail before any work when the container says how many frames there are and a mask is missing.
        if let frames = source.info.frameCount {
            for index in stride(from: 0, to: frames, by: every) {
                let path = URL(fileURLWithPath: masks).appendingPathComponent(String(format: "%05d.png", index)).path
                guard FileManager.default.fileExists(atPath: path) else {
                    throw RoadwatchError("mask '\(path)' for frame \(index) is missing")
                }
            }
        }
        let pool = PixelPool(methods: evaluatedMethods)
        var warmIterations: [Int] = [], coldIterations: [Int] = [], inertiaRatios: [Double] = []
        var firstIterations: Int?
        var cleanFlagged = 0, cleanPixels = 0, cleanFrames = 0, scored = 0
        let progress = Progress(total: source.info.frameCount.map { ($0 + every - 1) / every }, unit: "frames", quiet: quiet)
        for try await frame in source where frame.index % every == 0 {
            let maskPath = URL(fileURLWithPath: masks).appendingPathComponent(String(format: "%05d.png", frame.index)).path
            guard FileManager.default.fileExists(atPath: maskPath) else {
                throw RoadwatchError("mask '\(maskPath)' for frame \(frame.index) is missing")
            }
            let mask = try StillImage.readGray8(maskPath)
            let image = frame.image
            guard mask.width == image.width, mask.height == image.height else {
                throw RoadwatchError("mask '\(maskPath)' is \(mask.width)x\(mask.height), the video is \(image.width)x\(image.height)")
            }
            let result = analyzer.analyze(rgb: image.samples, width: image.width, height: image.height, warm: true)
            let kmeans = result.analysis.clusterings[0].kmeans
            if kmeans.warm {
                warmIterations.append(kmeans.iterations)
                let reference = cold.run(FeatureVectors.normalized(result.features))
                coldIterations.append(reference.iterations)
                inertiaRatios.append(kmeans.inertia / max(reference.inertia, 1e-12))
            } else if firstIterations == nil {
                firstIterations = kmeans.iterations
            }
            pool.add(labels: mask.samples, scores: scoreMaps(result, model: model, settings: settings, width: image.width, height: image.height))
            if !mask.samples.contains(GroundTruth.anomaly) {
                let flagged = ScoreMaps.upsample(result.analysis.oodCells.map { $0 ? 1 : 0 }, gridWidth: result.analysis.gridWidth,
                                                 gridHeight: result.analysis.gridHeight, width: image.width, height: image.height, bilinear: false)
                cleanFlagged += flagged.filter { $0 > 0.5 }.count
                cleanPixels += flagged.count
                cleanFrames += 1
            }
            scored += 1
            progress.advance()
        }
        progress.finish()
        guard scored > 0 else { throw RoadwatchError("'\(video)' has no frames to score") }
        let metrics = pool.metrics()
        let falseAlarms = cleanPixels > 0 ? Double(cleanFlagged) / Double(cleanPixels) : 0
        func mean<T: BinaryInteger>(_ xs: [T]) -> Double { xs.isEmpty ? .nan : Double(xs.reduce(0, +)) / Double(xs.count) }
        let ratio = inertiaRatios.isEmpty ? Double.nan : inertiaRatios.reduce(0, +) / Double(inertiaRatios.count)
        print("\(video): \(scored) frames at \(size) (\(model.descriptor.name), K=\(method.k), every \(every)); \(pool.count) pixels")
        print(metricsTable(metrics, columns: ["AP", "FPR95"]))
        print(String(format: "false alarms on %d clean frames: %.3f%% of pixels flagged at tau %.3f", cleanFrames, 100 * falseAlarms, method.tau))
        print(String(format: "K-Means iterations: first frame %d, warm %.2f, cold k-means++ on the same frames %.2f; warm/cold inertia %.4f",
                     firstIterations ?? 0, mean(warmIterations), mean(coldIterations), ratio))
        print(String(format: "%.2f s per frame", progress.elapsed / Double(scored)))
        if let json {
            var methods: [String: Any] = [:]
            for (name, m) in metrics { methods[name] = ["AP": m.ap, "FPR95": m.fpr95] }
            func number(_ x: Double) -> Any { x.isNaN ? NSNull() : x }
            try writeJSON([
                "video": video, "frames": scored, "every": every, "size": [size.width, size.height],
                "model": model.descriptor.name, "methods": methods,
                "clean_frames": cleanFrames, "clean_false_alarm_fraction": falseAlarms,
                "kmeans": ["first_iterations": firstIterations ?? 0, "warm_iterations": number(mean(warmIterations)),
                           "cold_iterations": number(mean(coldIterations)), "inertia_ratio": number(ratio)],
            ], to: json)
        }
    }
}
