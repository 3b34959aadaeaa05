import Anomaly
import ArgumentParser
import Foundation
import Models
import Monitoring
import Pipeline
import Tensors
import VideoIO

/// `roadwatch bench`: throughput measurements (benchmarks, not tests).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput on this machine.",
        subcommands: [SuiteBench.self, ModelBench.self, PipelineBench.self, VideoBench.self],
        defaultSubcommand: SuiteBench.self
    )
}

/// `roadwatch bench video`: decode and encode frames per second.
struct VideoBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "video",
        abstract: "Decode a clip to RGB, then encode those frames as H.264; print frames per second of each.",
        discussion: "Frames are held in memory between the two passes, so keep the clip short (a few hundred frames)."
    )

    @Argument(help: "Video to decode.")
    var input: String

    @Option(help: "Output size WxH of the decoded frames and the encoded video (default: the source's).")
    var size: String?

    @Option(help: "x264 preset for the encode pass.")
    var preset = "veryfast"

    @Option(help: "x264 constant rate factor for the encode pass.")
    var crf = 20

    @Option(help: "Frames at most.")
    var maxFrames = 500

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if let size, FrameSize(parsing: size) == nil { throw ValidationError("--size must be WxH, e.g. 1024x512, got '\(size)'") }
        guard maxFrames > 0 else { throw ValidationError("--max-frames must be positive") }
    }

    func run() async throws {
        let requested = size.flatMap(FrameSize.init(parsing:))
        let clock = ContinuousClock()
        let source = try await VideoSource.open(input, options: InputOptions(size: requested, onWarning: { Console.warning($0) }))
        var frames: [VideoFrame] = []
        let decodeTime = try await clock.measure {
            for try await frame in source {
                frames.append(frame)
                if frames.count == maxFrames { break }
            }
        }
        guard let first = frames.first else { throw RoadwatchError("'\(input)' has no frames to measure") }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("roadwatch-bench-\(getpid()).mp4").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let settings = H264Writer.Settings(width: first.image.width, height: first.image.height,
                                           frameRate: source.info.frameRate ?? Rational(25, 1),
                                           timeBase: source.info.timeBase, crf: crf, preset: preset)
        let encodeTime = try await clock.measure {
            try await H264Writer.write(to: output, settings: settings) { writer in
                for frame in frames { try await writer.append(frame) }
            }
        }
        let decodeFPS = Double(frames.count) / decodeTime.seconds
        let encodeFPS = Double(frames.count) / encodeTime.seconds
        let sizeText = "\(first.image.width)x\(first.image.height)"
        if json {
            print(#"{"frames":\#(frames.count),"size":"\#(sizeText)","decode_fps":\#(decodeFPS.rounded2),"encode_fps":\#(encodeFPS.rounded2),"preset":"\#(preset)","crf":\#(crf)}"#)
        } else {
            print("frames \(frames.count) at \(sizeText) (source \(first.sourceSize))")
            print("decode + RGB conversion  \(String(format: "%8.1f", decodeFPS)) frames/s")
            print("H.264 encode (\(preset), crf \(crf))  \(String(format: "%8.1f", encodeFPS)) frames/s")
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

extension Double {
    var rounded2: Double { (self * 100).rounded() / 100 }
}

/// `roadwatch bench model`: forward-pass time and achieved GFLOP/s.
struct ModelBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Time the forward pass (backbone + decoder) of each model at each size and thread count.",
        discussion: """
            Prints milliseconds per forward (median of --runs after two warm-up passes) and the GFLOP/s that \
            achieves, counting 2 FLOPs per multiply-accumulate of every convolution. Run it with nothing else busy.
            """
    )

    @Option(help: "Models, comma-separated (default: every registry model).")
    var models: String?

    @Option(help: "Input sizes WxH, comma-separated.")
    var sizes = "512x256,1024x512"

    @Option(help: "Thread counts, comma-separated.")
    var threads = "1,2"

    @Option(help: "Timed passes per setting.")
    var runs = 10

    @Flag(help: "Print one JSON object per line.")
    var json = false

    @Flag(help: "Also print the time spent up to each named block of one pass (where the time goes).")
    var blocks = false

    func validate() throws {
        guard runs > 0 else { throw ValidationError("--runs must be positive") }
        for size in sizes.split(separator: ",") where FrameSize(parsing: String(size)) == nil {
            throw ValidationError("--sizes must be WxH values, got '\(size)'")
        }
        for t in threads.split(separator: ",") where (Int(t) ?? 0) < 1 {
            throw ValidationError("--threads must be positive integers, got '\(t)'")
        }
    }

    func run() async throws {
        let names = models?.split(separator: ",").map(String.init) ?? ModelRegistry.all.map(\.name)
        let clock = ContinuousClock()
        for name in names {
            let loaded = try await ModelLoader.load(name, progress: { Console.info($0) })
            for sizeText in sizes.split(separator: ",") {
                let size = FrameSize(parsing: String(sizeText))!
                try loaded.network.checkInputSize(width: size.width, height: size.height)
                let input = Tensor(shape: [3, size.height, size.width])
                for i in 0..<input.count { input.buffer[i] = Float((i * 7919) % 255) / 255 - 0.5 }
                for threadText in threads.split(separator: ",") {
                    let threadCount = Int(threadText)!
                    ComputeThreads.set(threadCount)
                    OperationCounter.reset()
                    _ = loaded.network.forward(input)
                    let macs = OperationCounter.macs
                    _ = loaded.network.forward(input)
                    var times: [Double] = []
                    for _ in 0..<runs {
                        let elapsed = clock.measure { _ = loaded.network.forward(input) }
                        times.append(elapsed.seconds)
                    }
                    times.sort()
                    let median = times[times.count / 2]
                    if blocks, let onnx = loaded.network as? ONNXSegmentation {
                        // An ONNX graph has no named blocks: the time per operator type, fastest of --runs.
                        var fastest: [String: Double] = [:]
                        for _ in 0..<runs {
                            for (op, seconds) in try onnx.operatorProfile(input) { fastest[op] = min(fastest[op] ?? .infinity, seconds) }
                        }
                        for (op, seconds) in fastest.sorted(by: { $0.value > $1.value }) where seconds > 0.0005 {
                            print("    " + op.padding(toLength: 32, withPad: " ", startingAt: 0) + String(format: "%7.2f ms", seconds * 1000))
                        }
                        print(String(format: "    sum of fastest operators %.1f ms", fastest.values.reduce(0, +) * 1000))
                    } else if blocks {
                        // The fastest of --runs passes for each block: the machine's noise only ever adds time.
                        var fastest: [(String, Double)] = []
                        var fastestTotal = Double.infinity
                        for _ in 0..<runs {
                            var spent: [(String, Double)] = []
                            let start = ContinuousClock.now
                            var last = start
                            let record: Capture = { name, _ in
                                let now = ContinuousClock.now
                                spent.append((name, (now - last).seconds))
                                last = now
                            }
                            let encoded = loaded.network.backbone(input, capture: record)
                            spent.append(("(backbone end)", (ContinuousClock.now - last).seconds))
                            last = .now
                            _ = loaded.network.decoder(encoded, capture: record)
                            spent.append(("(decoder end: final resize)", (ContinuousClock.now - last).seconds))
                            fastestTotal = min(fastestTotal, (ContinuousClock.now - start).seconds)
                            fastest = fastest.isEmpty ? spent : zip(fastest, spent).map { ($0.0, min($0.1, $1.1)) }
                        }
                        for (name, seconds) in fastest where seconds > 0.0005 {
                            print("    " + name.padding(toLength: 32, withPad: " ", startingAt: 0) + String(format: "%7.2f ms", seconds * 1000))
                        }
                        print(String(format: "    sum of fastest blocks %.1f ms, fastest pass %.1f ms",
                                     fastest.reduce(0) { $0 + $1.1 } * 1000, fastestTotal * 1000))
                    }
                    let gflops = 2 * Double(macs) / median / 1e9
                    if json {
                        print(#"{"model":"\#(name)","size":"\#(size)","threads":\#(threadCount),"kernels":"\#(Kernels.current)","ms":\#((median * 1000).rounded2),"min_ms":\#((times[0] * 1000).rounded2),"gmacs":\#((Double(macs) / 1e9).rounded2),"gflops":\#(gflops.rounded2)}"#)
                    } else {
                        print("\(name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(size.description.padding(toLength: 9, withPad: " ", startingAt: 0)) \(threadCount) thread(s) \(Kernels.current)  \(String(format: "%8.1f", median * 1000)) ms/forward (min \(String(format: "%.1f", times[0] * 1000)))  \(String(format: "%6.2f", Double(macs) / 1e9)) GMAC  \(String(format: "%6.1f", gflops)) GFLOP/s")
                    }
                }
            }
        }
    }
}

/// `roadwatch bench pipeline`: the monitor's stages overlapped against the same work in one loop.
struct PipelineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Frames per second of the monitor (stages overlapped) and of the same work done sequentially.",
        discussion: "Frames are decoded into memory first, so decoding is not timed; the annotated frames are not encoded."
    )

    @Argument(help: "Video to read frames from.")
    var input: String

    @Option(help: "Frames to run through each.")
    var frames = 100

    @OptionGroup var modelOptions: ModelOptions

    func run() async throws {
        let source = try await VideoSource.open(input)
        var decoded: [VideoFrame] = []
        for try await frame in source {
            decoded.append(frame)
            if decoded.count == frames { break }
        }
        let (model, size) = try await modelOptions.load()
        // Both at the same compute threads (the machine's cores unless --threads), so only the overlap differs.
        let configuration = Monitor.Configuration(size: size, computeThreads: modelOptions.threads ?? ComputeThreads.count)
        let held = FrameList(decoded)
        let sequential = try await Monitor(model: model, configuration: configuration).runSequentially(held) { _ in }
        let overlapped = try await Monitor(model: model, configuration: configuration).run(held) { _ in }
        func line(_ name: String, _ s: RunSummary) -> String {
            let stages = zip(StageTimings.names, s.stageSeconds).map { "\($0) \(String(format: "%.0f", $1 * 1000))" }.joined(separator: ", ")
            return "\(name.padding(toLength: 11, withPad: " ", startingAt: 0)) \(String(format: "%6.2f", s.framesPerSecond)) fps  (ms per frame: \(stages))"
        }
        print("\(decoded.count) frames of \(input) at \(size), \(ComputeThreads.count) compute thread(s)")
        print(line("sequential", sequential))
        print(line("pipelined", overlapped))
        print(String(format: "pipelined / sequential = %.2f", overlapped.framesPerSecond / max(sequential.framesPerSecond, 1e-9)))
    }
}

/// Frames held in memory, replayed as a sequence.
struct FrameList: AsyncSequence, Sendable {
    let frames: [VideoFrame]
    init(_ frames: [VideoFrame]) { self.frames = frames }
    struct Iterator: AsyncIteratorProtocol {
        var index = 0
        let frames: [VideoFrame]
        mutating func next() async -> VideoFrame? {
            guard index < frames.count else { return nil }
            defer { index += 1 }
            return frames[index]
        }
    }
    func makeAsyncIterator() -> Iterator { Iterator(frames: frames) }
}

extension SuiteBench {
    /// Median forward time and GFLOP/s of `model` at 512x256 and 1024x512 with 1 and 2 threads:
    /// `[size: [threads: ["ms", "gflops"]]]`, each setting printed as it is measured.
    static func forwardTimes(_ model: LoadedModel, label: String, runs: Int) -> [String: Any] {
        let clock = ContinuousClock()
        var forward: [String: Any] = [:]
        for sizeText in ["512x256", "1024x512"] {
            let size = FrameSize(parsing: sizeText)!
            let input = Tensor(shape: [3, size.height, size.width])
            for i in 0..<input.count { input.buffer[i] = Float((i * 7919) % 255) / 255 - 0.5 }
            var perThreads: [String: Any] = [:]
            for threads in [1, 2] {
                ComputeThreads.set(threads)
                OperationCounter.reset()
                _ = model.network.forward(input)
                let macs = OperationCounter.macs
                var times: [Double] = []
                for _ in 0..<runs { times.append(clock.measure { _ = model.network.forward(input) }.seconds) }
                let median = times.sorted()[times.count / 2]
                let gflops = 2 * Double(macs) / median / 1e9
                perThreads["\(threads)"] = ["ms": (median * 1000).rounded2, "gflops": gflops.rounded2]
                print("\(label) \(sizeText) \(threads) thread(s): \(String(format: "%.1f", median * 1000)) ms, \(String(format: "%.1f", gflops)) GFLOP/s")
            }
            forward[sizeText] = perThreads
        }
        return forward
    }

    /// Runs `roadwatch run CLIP --size SIZE` as a child process and reads its summary: frames per second and
    /// the child's own peak memory.
    static func runProcess(clip: String, size: String) throws -> (fps: Double, peakMB: Double) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("roadwatch-bench-run-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let summaryPath = folder.appendingPathComponent("summary.json").path
        let process = Process()
        process.executableURL = Bundle.main.executableURL
        process.arguments = ["run", clip, "-o", folder.appendingPathComponent("out.mp4").path, "--size", size, "--quiet",
                             "--no-events-log", "--summary-json", summaryPath]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let data = FileManager.default.contents(atPath: summaryPath) else {
            throw RoadwatchError("bench: 'roadwatch run \(clip) --size \(size)' failed (exit \(process.terminationStatus))")
        }
        let summary = try JSONDecoder().decode(RunSummary.self, from: data)
        return (summary.framesPerSecond, summary.peakMemoryMB ?? .nan)
    }
}

/// `roadwatch bench` (`bench all`): the figures the speed work is judged by, in one run, as a table and JSON.
struct SuiteBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Forward pass of both models at both sizes and thread counts, sgemm, pipeline vs sequential, warm vs cold K-Means, run end to end with its peak memory.",
        discussion: """
            JSON keys: forward.<WxH>.<threads>.{ms, gflops}, espnet_forward.<WxH>.<threads>.{ms, gflops}, sgemm_gflops.<threads>, \
            pipeline.{fps, sequential_fps, forward_fps, ratio}, kmeans.{warm_iterations, cold_iterations, iteration_ratio, \
            inertia_ratio}, run.<WxH>.{fps, peak_rss_mb} (roadwatch run end to end in its own process, annotated video \
            written), peak_rss_mb (this process). \
            Takes a few minutes on 2 cores; run it with nothing else busy.
            """
    )

    @Option(help: "Write the results as JSON to this file ('-' for stdout).")
    var json: String?

    @Option(help: "Timed forward passes per setting (median).")
    var runs = 5

    @Option(help: "Frames for the pipeline and K-Means figures.")
    var frames = 30

    @Option(help: "Clip for the pipeline and K-Means figures (default: the bundled sample).")
    var clip: String?

    @Option(help: "Network size of the pipeline and K-Means figures.")
    var pipelineSize = "1024x512"

    func validate() throws {
        guard runs > 0, frames > 1 else { throw ValidationError("--runs must be positive and --frames at least 2") }
        guard FrameSize(parsing: pipelineSize) != nil else { throw ValidationError("--pipeline-size must be WxH") }
    }

    func run() async throws {
        if let json, json != "-" { try OutputChecks.writable(json, what: "JSON file") }
        let model = try await ModelLoader.load(ModelRegistry.defaultName, progress: { Console.info($0) })
        var result: [String: Any] = [:]

        // Forward pass of the default model, and the same threads' sgemm.
        var sgemm: [String: Any] = [:]
        let forward = Self.forwardTimes(model, label: "forward", runs: runs)
        for threads in [1, 2] {
            ComputeThreads.set(threads)
            let g = GemmProbe.sgemmGFLOPS()
            sgemm["\(threads)"] = g.rounded2
            print("sgemm 1024^3 \(threads) thread(s): \(String(format: "%.1f", g)) GFLOP/s")
        }
        result["forward"] = forward
        result["sgemm_gflops"] = sgemm

        // Pipeline against the same work one frame at a time, on decoded frames held in memory.
        let size = FrameSize(parsing: pipelineSize)!
        let source = try await VideoSource.open(try clip ?? Demo.sample())
        var decoded: [VideoFrame] = []
        for try await frame in source {
            decoded.append(frame)
            if decoded.count == frames { break }
        }
        await source.close()
        let configuration = Monitor.Configuration(size: size)  // the monitor's policy: one thread per stage
        let held = FrameList(decoded)
        let sequential = try await Monitor(model: model, configuration: configuration).runSequentially(held) { _ in }
        let pipelined = try await Monitor(model: model, configuration: configuration).run(held) { _ in }
        let forwardMS = (((forward[pipelineSize] as? [String: Any])?["2"] as? [String: Any])?["ms"] as? Double)
        let forwardFPS = forwardMS.map { 1000 / $0 }
        var pipeline: [String: Any] = ["fps": pipelined.framesPerSecond.rounded2, "sequential_fps": sequential.framesPerSecond.rounded2]
        if let forwardFPS {
            pipeline["forward_fps"] = forwardFPS.rounded2
            pipeline["ratio"] = (pipelined.framesPerSecond / forwardFPS).rounded2
        }
        result["pipeline"] = pipeline
        print("pipeline \(pipelineSize): \(String(format: "%.2f", pipelined.framesPerSecond)) fps overlapped, \(String(format: "%.2f", sequential.framesPerSecond)) sequential" + (forwardFPS.map { String(format: ", forward alone (2 threads) %.2f fps", $0) } ?? ""))

        // K-Means on the same frames' features: warm-started from the previous frame against k-means++.
        let preprocessor = Preprocessor(normalization: model.descriptor.normalization)
        let kmeans = KMeans(clusters: MethodSettings.default.clusterCounts.first ?? 4)
        var warm = WarmStartKMeans(kmeans: kmeans)
        var warmIterations = 0, coldIterations = 0, warmInertia = 0.0, coldInertia = 0.0, counted = 0
        for (i, frame) in decoded.enumerated() {
            let image = frame.image
            let input = preprocessor.tensor(rgb: image.samples, sourceWidth: image.width, sourceHeight: image.height,
                                            width: size.width, height: size.height)
            let points = FeatureVectors.normalized(model.network.backbone(input, capture: nil).features)
            let w = warm.cluster(points)
            let c = kmeans.run(points)
            guard i > 0 else { continue }  // the first frame has nothing to start from
            warmIterations += w.iterations
            coldIterations += c.iterations
            warmInertia += w.inertia
            coldInertia += c.inertia
            counted += 1
        }
        let kmeansResult: [String: Any] = [
            "warm_iterations": (Double(warmIterations) / Double(counted)).rounded2,
            "cold_iterations": (Double(coldIterations) / Double(counted)).rounded2,
            "iteration_ratio": (Double(warmIterations) / Double(max(coldIterations, 1))).rounded2,
            "inertia_ratio": ((warmInertia / coldInertia) * 10000).rounded() / 10000,
        ]
        result["kmeans"] = kmeansResult
        print("K-Means K=\(kmeans.clusters) over \(counted) frames: warm \(kmeansResult["warm_iterations"]!) iterations, cold \(kmeansResult["cold_iterations"]!), inertia warm/cold \(kmeansResult["inertia_ratio"]!)")

        // ESPNet's forward at the same settings (skipped, with a line, when its weights cannot be had).
        do {
            let espnet = try await ModelLoader.load("espnet-cityscapes", progress: { Console.info($0) })
            result["espnet_forward"] = Self.forwardTimes(espnet, label: "ESPNet forward", runs: runs)
        } catch {
            print("ESPNet forward: not measured (\(error))")
        }

        // `run` end to end (decode, monitor, annotated H.264 out) in a process of its own, so its peak memory
        // is the run's, not this benchmark's.
        var runFigures: [String: Any] = [:]
        for sizeText in ["512x256", "1024x512"] {
            let figures = try Self.runProcess(clip: try clip ?? Demo.sample(), size: sizeText)
            runFigures[sizeText] = ["fps": figures.fps.rounded2, "peak_rss_mb": figures.peakMB.rounded2]
            print("run \(sizeText) end to end: \(String(format: "%.2f", figures.fps)) fps, peak memory \(String(format: "%.0f", figures.peakMB)) MB")
        }
        result["run"] = runFigures

        let peak = PeakMemory.megabytes
        result["peak_rss_mb"] = peak.rounded2
        print("peak RSS of this benchmark process \(String(format: "%.1f", peak)) MB")
        if let json { try writeJSON(result, to: json) }
    }
}
