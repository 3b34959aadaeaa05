import Foundation
import Testing
import TestKit

@Suite("roadwatch eval: bad datasets fail with one line naming the file")
struct EvalCommandTests {
    let dev = Shared.path("data/road_anomaly_dev/frames")
    let name = "animals01_Guiguinto_railway_station_Calves"

    /// A one-image copy of the development layout, to break in different ways.
    func dataset(in scratch: ScratchDirectory) throws -> URL {
        let frames = scratch.url.appendingPathComponent("ds/frames")
        try FileManager.default.createDirectory(at: frames.appendingPathComponent("\(name).labels"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(dev)/\(name).jpg", toPath: frames.appendingPathComponent("\(name).jpg").path)
        return frames.deletingLastPathComponent()
    }

    func expectOneLine(_ arguments: [String], naming: String, saying problem: String) throws {
        let outcome = try RoadwatchBinary.run(arguments, timeout: 120)
        #expect((1..<128).contains(outcome.status), "exit \(outcome.status)")
        #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.contains(naming) && outcome.stderr.contains(problem), "\(outcome.stderr)")
    }

    @Test("a missing label file")
    func missingLabels() throws {
        let scratch = try ScratchDirectory("evalmissing")
        let folder = try dataset(in: scratch)
        try expectOneLine(["eval", "road-anomaly", folder.path, "--quiet"], naming: "labels_semantic.png", saying: "missing")
    }

    @Test("a label image of the wrong size")
    func wrongSizeLabels() throws {
        let scratch = try ScratchDirectory("evalsize")
        let folder = try dataset(in: scratch)
        // A real label PNG of another size: the fox video's mask (960x540) against a 1280x720 image.
        let labels = folder.appendingPathComponent("frames/\(name).labels/labels_semantic.png").path
        try FileManager.default.copyItem(atPath: Shared.path("data/videos/synthetic_fox_solidWhiteRight/masks/00100.png"), toPath: labels)
        try expectOneLine(["eval", "road-anomaly", folder.path, "--quiet", "--size", "512x256"], naming: labels, saying: "960x540")
    }

    @Test("an empty folder and a folder without frames/")
    func emptyFolders() throws {
        let scratch = try ScratchDirectory("evalempty")
        let empty = scratch.url.appendingPathComponent("empty/frames")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try expectOneLine(["eval", "road-anomaly", empty.deletingLastPathComponent().path], naming: empty.path, saying: "no images")
        try expectOneLine(["eval", "road-anomaly", scratch.url.path], naming: scratch.url.path, saying: "no frames/")
    }

    @Test("masks missing for some frames of a video")
    func missingMasks() throws {
        let scratch = try ScratchDirectory("evalmasks")
        let masks = scratch.url.appendingPathComponent("masks")
        try FileManager.default.createDirectory(at: masks, withIntermediateDirectories: true)
        let source = Shared.path("data/videos/synthetic_fox_solidWhiteRight/masks")
        for index in 0..<221 where index != 137 {
            let file = String(format: "%05d.png", index)
            try FileManager.default.copyItem(atPath: "\(source)/\(file)", toPath: masks.appendingPathComponent(file).path)
        }
        try expectOneLine(["eval", "video", Shared.path("data/videos/synthetic_fox_solidWhiteRight/video.mp4"), "--masks", masks.path, "--quiet"],
                          naming: "00137.png", saying: "missing")
    }

    @Test("an unknown variant is a usage error")
    func unknownVariant() throws {
        try expectOneLine(["eval", "road-anomaly", Shared.path("data/road_anomaly_dev"), "--variant", "d9"], naming: "d9", saying: "--variant")
    }

    /// `--pixel-stride` pools every Nth row and column: the pooled count follows, the stride is reported, the
    /// alarm metrics (every pixel) do not change, and the AP of the same clip stays close.
    @Test("eval video --pixel-stride: pooled pixels, the stride in the JSON, alarms unchanged")
    func pixelStride() throws {
        let scratch = try ScratchDirectory("evalstride")
        let clip = Shared.path("data/videos/synthetic_fox_solidWhiteRight")
        var reports: [[String: Any]] = []
        for stride in [1, 4] {
            let json = scratch.path("s\(stride).json")
            let run = try RoadwatchBinary.run(["eval", "video", clip + "/video.mp4", "--masks", clip + "/masks", "--size", "512x256",
                                               "--every", "8", "--pixel-stride", String(stride), "--quiet", "--json", json], timeout: 600)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains(stride == 1 ? "(every pixel)" : "(every 4th row and column)"), "\(run.stdout)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
            #expect(object["pixel_stride"] as? Int == stride)
            reports.append(object)
        }
        let frames = try #require(reports[0]["frames"] as? Int), full = try #require(reports[0]["pixels"] as? Int)
        let strided = try #require(reports[1]["pixels"] as? Int)
        #expect(frames == 28 && full <= frames * 960 * 540 && full > frames * 960 * 540 * 9 / 10, "\(full)")
        #expect(strided <= frames * 240 * 135 && abs(Double(strided) * 16 / Double(full) - 1) < 0.02, "\(strided) of \(full)")
        #expect(NSDictionary(dictionary: reports[0]["alarms"] as? [String: Any] ?? [:]) == NSDictionary(dictionary: reports[1]["alarms"] as? [String: Any] ?? ["": 1]))
        let ap = { (r: [String: Any]) in ((r["methods"] as? [String: Any])?["max-logit"] as? [String: Any])?["AP"] as? Double ?? -1 }
        #expect(ap(reports[0]) > 0 && abs(ap(reports[0]) - ap(reports[1])) < 0.25 * ap(reports[0]), "\(ap(reports[0])) vs \(ap(reports[1]))")
    }
}
