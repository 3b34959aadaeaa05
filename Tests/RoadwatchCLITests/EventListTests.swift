import Foundation
import Testing
import TestKit
import VideoIO

/// A synthetic development clip: an object pasted on a highway clip from frame 50, with per-frame masks.
struct SyntheticClip {
    let folder: String
    var video: String { folder + "/video.mp4" }

    init(_ name: String) { folder = Shared.path("data/videos/" + name) }

    /// The box (normalized x0, y0, x1, y1) around every pixel the object covers in any frame, and its
    /// first frame.
    func objectPath() throws -> (box: [Double], firstFrame: Int) {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder + "/masks").filter { $0.hasSuffix(".png") }.sorted()
        var x0 = Int.max, y0 = Int.max, x1 = -1, y1 = -1, first = Int.max, w = 1, h = 1
        for (i, name) in names.enumerated() {
            let mask = try StillImage.readGray8(folder + "/masks/" + name)
            w = mask.width
            h = mask.height
            for y in 0..<h {
                for x in 0..<w where mask.samples[y * w + x] == 2 {
                    x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
                    first = min(first, i)
                }
            }
        }
        return ([Double(x0) / Double(w), Double(y0) / Double(h), Double(x1 + 1) / Double(w), Double(y1 + 1) / Double(h)], first)
    }

    /// An ignore-mask polygon over the object's whole path, `margin` wider on each side.
    func maskOverPath(margin: Double = 0.05) throws -> String {
        let b = try objectPath().box
        let x0 = max(0, b[0] - margin), y0 = max(0, b[1] - margin), x1 = min(1, b[2] + margin), y1 = min(1, b[3] + margin)
        return [x0, y0, x1, y0, x1, y1, x0, y1].map { String(format: "%.4f", $0) }.joined(separator: ",")
    }
}

/// Reads an event list: its lines as dictionaries.
func eventLines(_ path: String) throws -> [[String: Any]] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
        try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
}

@Suite("Events with a start and an end through run: the event list, snapshots, clips, ignore masks")
struct EventListTests {
    static let clip = SyntheticClip("synthetic_hedgehog_solidWhiteRightFlipped")

    @Test("the hedgehog clip: new/end pairs while the object is there, a snapshot that decodes, a clip that plays and covers it")
    func events() async throws {
        let scratch = try ScratchDirectory("eventlist")
        let arguments = ["run", Self.clip.video, "-o", scratch.path("out.mp4"), "--size", "512x256", "--quiet",
                         "--evidence", scratch.path("evidence")]
        let run = try await blocking { try RoadwatchBinary.run(arguments, timeout: 600) }
        #expect(run.status == 0, "\(run.stderr)")
        let lines = try eventLines(scratch.path("out.event-list.jsonl"))
        let news = lines.filter { $0["type"] as? String == "new" }
        try #require(!news.isEmpty, "no event: \(run.stdout)")
        let firstObjectTime = Double(try Self.clip.objectPath().firstFrame) / 25
        for new in news {
            let id = try #require(new["id"] as? String)
            let end = try #require(lines.first { $0["type"] as? String == "end" && $0["id"] as? String == id }, "\(id) never ended")
            let start = try #require(new["start"] as? Double), stop = try #require(end["end"] as? Double)
            #expect(start >= firstObjectTime - 0.001 && stop >= start)  // media seconds, while the object is in the lane
            let box = try #require(new["box"] as? [Int])
            #expect(box.count == 4 && box[2] > 0 && box[3] > 0)
            let snapshot = try StillImage.readRGB(scratch.path("evidence/" + (try #require(new["snapshot"] as? String))))
            #expect(snapshot.width == 640 && snapshot.height == 360)
            let clip = scratch.path("evidence/" + (try #require(end["clip"] as? String)))
            let decoded = try MediaCheck.decode(clip)
            #expect(decoded.clean, "\(decoded.errors)")
            // From 3 s before the start (or the clip's beginning) to 3 s after the end (or the clip's end: 221 frames).
            let expected = (min(stop + 3, 220.0 / 25) - max(0, start - 3)) * 25
            #expect(Double(decoded.frames) >= expected - 2, "\(decoded.frames) frames, expected about \(expected)")
        }
        #expect(run.stdout.contains("event list: \(scratch.path("out.event-list.jsonl")) (\(news.count) events)"))
    }

    @Test("the same clip with an ignore mask over the object's path: no event, nothing flagged there")
    func masked() async throws {
        let scratch = try ScratchDirectory("eventmask")
        let polygon = try Self.clip.maskOverPath()
        let arguments = ["run", Self.clip.video, "-o", scratch.path("out.mp4"), "--size", "512x256", "--quiet",
                         "--mask", polygon, "--mask-dir", scratch.path("masks")]
        let run = try await blocking { try RoadwatchBinary.run(arguments, timeout: 600) }
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try eventLines(scratch.path("out.event-list.jsonl")).isEmpty)
        // No mask pixel inside the polygon is ever flagged.
        let b = try Self.clip.objectPath().box
        for name in try FileManager.default.contentsOfDirectory(atPath: scratch.path("masks")) {
            let mask = try StillImage.readGray8(scratch.path("masks/" + name))
            let w = mask.width, h = mask.height
            for y in Int(b[1] * Double(h))..<Int(b[3] * Double(h)) {
                for x in Int(b[0] * Double(w))..<Int(b[2] * Double(w)) { #expect(mask.samples[y * w + x] == 0) }
            }
        }
    }

    @Test("bad masks and rules are refused in one line naming them", arguments: [
        (["--mask", "0,0,1,1"], "three"), (["--mask", "0,0,2,0,1,1"], "outside 0...1"), (["--min-frames", "0"], "min_frames"),
    ])
    func refused(_ extra: [String], _ says: String) throws {
        let scratch = try ScratchDirectory("eventbad")
        let run = try RoadwatchBinary.run(["run", Self.clip.video, "-o", scratch.path("out.mp4")] + extra)
        #expect((1..<128).contains(run.status) && run.stderrLines.count == 1 && run.stderr.contains(says), "\(run.stderr)")
    }
}
