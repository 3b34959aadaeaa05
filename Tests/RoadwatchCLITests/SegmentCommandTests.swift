import Foundation
import Testing
import TestKit
@testable import Models
import VideoIO

@Suite("roadwatch segment, through the binary")
struct SegmentCommandTests {
    /// The reference argmax (1024x512) resized to the frame (960x540) by nearest neighbour.
    func referenceClasses(_ folder: String) throws -> [Int32] {
        let reference = try SafeTensorsFile(path: Shared.path("\(folder)/reference/ref_1024x512.safetensors"))
        let (shape, values) = try reference.int32s("argmax")
        let (h, w) = (shape[0], shape[1])
        var result: [Int32] = []
        for y in 0..<540 {
            let sy = min(h - 1, Int((Double(y) + 0.5) * Double(h) / 540))
            for x in 0..<960 {
                let sx = min(w - 1, Int((Double(x) + 0.5) * Double(w) / 960))
                result.append(values[sy * w + sx])
            }
        }
        return result
    }

    @Test("the class map agrees with the reference argmax on at least 98% of pixels",
          arguments: [("espnetv2-cityscapes", "models/espnetv2-cityscapes"), ("espnet-cityscapes", "models/espnet-cityscapes"),
                      // ESPNet exported from PyTorch, through the ONNX runner (prepared here at another size than its default).
                      (Shared.repositoryRoot.appendingPathComponent("Tests/ONNXTests/Fixtures/espnet-512x256.onnx").path,
                       "models/espnet-cityscapes")])
    func classMapAgrees(_ model: String, _ folder: String) throws {
        let scratch = try ScratchDirectory("segment")
        let outcome = try RoadwatchBinary.run(
            ["segment", Shared.path("\(folder)/reference/frame100.png"), "-o", scratch.path("blend.png"),
             "--size", "1024x512", "--class-map", scratch.path("classes.png"), "--model", model],
            timeout: 300,
            environment: ["ROADWATCH_MODEL_MIRROR": Shared.path("models"), "XDG_CACHE_HOME": scratch.path("cache")])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let classes = try StillImage.readGray8(scratch.path("classes.png"))
        #expect(classes.width == 960 && classes.height == 540)
        let expected = try referenceClasses(folder)
        let agree = zip(classes.samples, expected).filter { Int32($0) == $1 }.count
        let fraction = Double(agree) / Double(expected.count)
        #expect(fraction >= 0.98, "\(model): \(fraction)")
        print("\(model): class map agrees with the reference argmax on \(String(format: "%.2f", 100 * fraction))% of pixels")
        let blend = try StillImage.readRGB(scratch.path("blend.png"))
        #expect(blend.width == 960 && blend.height == 540)
    }

    @Test("bad sizes, unknown models and broken weights fail with one line", arguments: [
        (["--size", "1000x500"], "multiple of 16"),
        (["--size", "32x32"], "minimum"),
        (["--model", "no-such-model"], "unknown model"),
        (["--size", "big"], "WxH"),
    ])
    func badModelInput(_ extra: [String], _ problem: String) throws {
        let scratch = try ScratchDirectory("segbad")
        let outcome = try RoadwatchBinary.run(
            ["segment", Shared.path("models/espnetv2-cityscapes/reference/frame100.png"), "-o", scratch.path("x.png")] + extra)
        #expect((1..<128).contains(outcome.status))
        #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.contains(problem), "\(outcome.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("x.png")))
    }

    @Test("a truncated or hostile weight file given as --model fails with one line naming it")
    func brokenWeights() throws {
        let scratch = try ScratchDirectory("segweights")
        let whole = try Data(contentsOf: URL(fileURLWithPath: Shared.path("models/espnetv2-cityscapes/espnetv2_s_2.0_city_1024x512.pth")))
        let cut = scratch.path("cut.pth")
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: cut))
        let evil = scratch.path("evil.pth")
        try Data([0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8) + [0x58, 4, 0, 0, 0] + Array("true".utf8) + [0x85, 0x52, 0x2E])
            .write(to: URL(fileURLWithPath: evil))
        for (path, problem) in [(cut, "truncated"), (evil, "refused global 'os.system'")] {
            let outcome = try RoadwatchBinary.run(
                ["segment", Shared.path("models/espnetv2-cityscapes/reference/frame100.png"), "-o", scratch.path("x.png"), "--model", path])
            #expect((1..<128).contains(outcome.status))
            #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
            #expect(outcome.stderr.contains(path) && outcome.stderr.contains(problem), "\(outcome.stderr)")
        }
    }
}

@Suite("roadwatch run with an ONNX model, through the binary")
struct ONNXRunCommandTests {
    @Test("run --model FILE.onnx: every frame out, the same anomaly frames as the native model on the same clip")
    func runWithONNX() throws {
        let scratch = try ScratchDirectory("onnxrun")
        let clip = Shared.path("data/videos/synthetic_fox_solidWhiteRight/video.mp4")
        let onnx = Shared.repositoryRoot.appendingPathComponent("Tests/ONNXTests/Fixtures/espnet-512x256.onnx").path
        let native = Shared.path("models/espnet-cityscapes/espnet_cityscapes_p2q8.safetensors")
        var fractions: [[Double]] = []
        for model in [onnx, native] {
            let events = scratch.path("\(fractions.count).jsonl")
            let run = try RoadwatchBinary.run(["run", clip, "-o", scratch.path("\(fractions.count).mp4"), "--model", model,
                                               "--size", "512x256", "--max-frames", "60", "--events", events, "--quiet"], timeout: 600)
            #expect(run.status == 0, "\(run.stderr)")
            let lines = try MediaCheck.jsonLines(events)
            #expect(lines.count == 60)
            fractions.append(lines.compactMap { ($0 as? [String: Any])?["anomaly_fraction"] as? Double })
        }
        // The two paths differ only in float rounding: per-frame anomaly fractions agree closely.
        let differences = zip(fractions[0], fractions[1]).map { abs($0 - $1) }
        #expect(fractions[0].count == 60 && (differences.max() ?? 1) <= 0.01, "largest difference \(differences.max() ?? -1)")
    }
}

extension ONNXRunCommandTests {
    /// A transformer whose file fixes its input (128x256) and gives logits at a quarter of it, which are also
    /// its features (no definition file): the size defaults to the file's, other sizes are refused in one line.
    @Test("run --model segformer-tiny.onnx: its own size by default, another size refused in one line")
    func transformerRuns() throws {
        let scratch = try ScratchDirectory("onnxsegformer")
        let model = Shared.repositoryRoot.appendingPathComponent("Tests/ONNXTests/Fixtures/segformer-tiny.onnx").path
        let clip = Shared.path("data/videos/solidWhiteRight.mp4")
        let run = try RoadwatchBinary.run(["run", clip, "-o", scratch.path("out.mp4"), "--model", model, "--max-frames", "8",
                                           "--events", scratch.path("e.jsonl"), "--quiet"], timeout: 300)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try MediaCheck.jsonLines(scratch.path("e.jsonl")).count == 8)
        let refused = try RoadwatchBinary.run(["run", clip, "-o", scratch.path("other.mp4"), "--model", model, "--size", "512x256"],
                                              timeout: 300)
        #expect(refused.status != 0 && refused.stderrLines.count == 1 && refused.stderr.contains("takes only 256x128"),
                "\(refused.stderr)")
    }
}
