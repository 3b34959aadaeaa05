import Foundation
import Testing
import TestKit
import VideoIO

/// `roadwatch watch` through the binary, with loopback senders standing in for cameras. Every wait has a
/// generous bound (minutes for what takes seconds on an idle machine) and only catches hangs.
@Suite("roadwatch watch: many cameras in one process, through the binary", .serialized)
struct WatchCommandTests {
    /// The cameras' state from `<output>/status.json` (empty until the service wrote it).
    static func status(_ output: String) -> [String: [String: Any]] {
        guard let data = FileManager.default.contents(atPath: output + "/status.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cameras = object["cameras"] as? [[String: Any]] else { return [:] }
        var byName: [String: [String: Any]] = [:]
        for camera in cameras { if let name = camera["name"] as? String { byName[name] = camera } }
        return byName
    }

    static func frames(_ output: String, _ camera: String) -> Int { status(output)[camera]?["frames"] as? Int ?? 0 }

    @Test("--check: a valid config exits 0; a bad key exits 64 with one line naming the key and its line")
    func check() throws {
        let scratch = try ScratchDirectory("watchcheck")
        let good = scratch.path("good.yaml"), bad = scratch.path("bad.yaml")
        try "output: \(scratch.path("out"))\ncameras:\n  a:\n    input: /nonexistent.mp4\n".write(toFile: good, atomically: true, encoding: .utf8)
        try "output: o\ncameras:\n  a:\n    input: x.mp4\n    overlay: sparkles\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let ok = try RoadwatchBinary.run(["watch", "--check", good])
        #expect(ok.status == 0 && ok.stdout.contains("valid; 1 cameras"), "\(ok.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out")))  // nothing opened or made
        let refused = try RoadwatchBinary.run(["watch", "--check", bad])
        #expect(refused.status == 64 && refused.stderrLines.count == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("bad.yaml:5: cameras.a.overlay: expected heat, segmentation, both or none"), "\(refused.stderr)")
        // The same config without --check fails the same way before loading anything.
        let run = try RoadwatchBinary.run(["watch", bad])
        #expect(run.status == 64 && run.stderrLines.count == 1)
    }

    @Test("three loopback senders (TCP, TCP, UDP) and a looped file: one sender killed and restarted reconnects, the others never stop; retention keeps the recording under its limit")
    func manyCameras() async throws {
        let scratch = try ScratchDirectory("watchmany")
        let clip = try StreamSender.smallClip(from: "data/videos/solidWhiteRight.mp4", in: scratch)
        let senders = try [StreamSender(clip: clip, transport: .tcp, rate: 1), StreamSender(clip: clip, transport: .tcp, rate: 1),
                           StreamSender(clip: clip, transport: .udp, rate: 1)]
        for sender in senders { try sender.start() }
        defer { senders.forEach { $0.stop() } }
        let output = scratch.path("out")
        let config = scratch.path("watch.yaml")
        try """
            output: \(output)
            retention_interval: 1
            defaults:
              size: 256x128
            cameras:
              tcp1:
                input: \(senders[0].url)
                timeout: 5
              tcp2:
                input: \(senders[1].url)
              udp:
                input: \(senders[2].url)
              file:
                input: \(clip)
                loop: true
                record: {segment_seconds: 1}
                retention: {max_size_mb: 0.15}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let watch = try RunningBinary(["watch", config])
        let names = ["tcp1", "tcp2", "udp", "file"]
        #expect(try await blocking { waitUntil(timeout: 120) { names.allSatisfy { Self.frames(output, $0) >= 20 } } },
                "\(Self.status(output))")

        // The first sender dies, as a camera losing power; the others must keep producing meanwhile.
        senders[0].stop()
        var windows: [[Int]] = []
        var previous = names.map { Self.frames(output, $0) }
        for _ in 0..<4 {
            try await Task.sleep(for: .seconds(1.5))
            let now = names.map { Self.frames(output, $0) }
            windows.append(zip(now, previous).map { $0 - $1 })
            previous = now
        }
        try senders[0].start()
        #expect(try await blocking {
            waitUntil(timeout: 120) {
                let tcp1 = Self.status(output)["tcp1"]
                return (tcp1?["reconnects"] as? Int ?? 0) >= 1 && (tcp1?["state"] as? String) == "up"
            }
        }, "\(Self.status(output))")
        let resumed = Self.frames(output, "tcp1")
        #expect(try await blocking { waitUntil(timeout: 60) { Self.frames(output, "tcp1") >= resumed + 10 } })
        // Every 1.5 s window while tcp1 was away: the other three cameras each processed frames.
        for window in windows { #expect(window[1] > 0 && window[2] > 0 && window[3] > 0, "\(windows)") }

        watch.signal(SIGINT)
        let outcome = try await blocking { watch.wait(timeout: 60) }
        #expect(!outcome.timedOut && [0, 130].contains(outcome.status), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("camera=tcp1") && outcome.stderr.contains("source back after"), "\(outcome.stderr)")
        for name in names { #expect(FileManager.default.fileExists(atPath: "\(output)/\(name)/events.jsonl")) }
        // Retention: the first segments are gone, what is left is within the limit plus the open one, and plays.
        let recordings = try FileManager.default.contentsOfDirectory(atPath: "\(output)/file/recordings").filter { !$0.hasPrefix(".") }.sorted()
        #expect(!recordings.isEmpty && !recordings.contains { $0.hasSuffix("-000.mp4") }, "\(recordings)")
        let bytes = try recordings.reduce(0) { $0 + ((try FileManager.default.attributesOfItem(atPath: "\(output)/file/recordings/\($1)")[.size] as? Int) ?? 0) }
        #expect(bytes <= 150_000 + 200_000, "\(bytes) bytes in \(recordings)")
        let newest = try MediaCheck.decode("\(output)/file/recordings/\(recordings.last!)")
        #expect(newest.clean && newest.frames > 0, "\(newest.errors)")
        #expect(outcome.stdout.contains("tcp1:") && outcome.stdout.contains("status: \(output)/status.json"))
    }

    /// The clip as two archive cameras (every frame, as `run` reads it, so the decisions do not depend on how
    /// busy the machine is: the live policy would drop frames under load and the alarm with them).
    @Test("a synthetic clip as a camera: a new/end pair over the object whose clip plays and covers it and whose snapshot decodes; the same clip with a mask over the object's path: no event")
    func syntheticEvents() async throws {
        let scratch = try ScratchDirectory("watchsynth")
        let synthetic = SyntheticClip("synthetic_hedgehog_solidWhiteRightFlipped")
        let (path, firstFrame) = try synthetic.objectPath()
        let output = scratch.path("out")
        let config = scratch.path("watch.yaml")
        try """
            output: \(output)
            defaults:
              size: 512x256
              realtime: false
            cameras:
              plain:
                input: \(synthetic.video)
              masked:
                input: \(synthetic.video)
                mask: ["\(try synthetic.maskOverPath())"]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        // Both files end, and then the service does.
        let run = try await blocking { try RoadwatchBinary.run(["watch", config], timeout: 600) }
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("camera=plain") && run.stderr.contains("the file ended after 221 frames"), "\(run.stderr)")

        let lines = try eventLines("\(output)/plain/events.jsonl")
        let news = lines.filter { $0["type"] as? String == "new" }
        try #require(!news.isEmpty, "no event: \(run.stdout)")
        for new in news {
            let id = try #require(new["id"] as? String)
            let end = try #require(lines.first { $0["type"] as? String == "end" && $0["id"] as? String == id })
            let start = try #require(new["start"] as? Double), stop = try #require(end["end"] as? Double)
            // Media seconds (read whole), while the object is there.
            #expect(start >= Double(firstFrame) / 25 - 0.001 && stop <= 221.0 / 25)
            let b = try #require(end["box"] as? [Int])
            #expect(Double(b[0]) / 960 < path[2] && path[0] < Double(b[0] + b[2]) / 960
                    && Double(b[1]) / 540 < path[3] && path[1] < Double(b[1] + b[3]) / 540, "box \(b) is not over the object")
            let snapshot = try StillImage.readRGB("\(output)/plain/" + (try #require(new["snapshot"] as? String)))
            #expect(snapshot.width == 640 && snapshot.height == 360)
            let clip = "\(output)/plain/" + (try #require(end["clip"] as? String))
            let decoded = try MediaCheck.decode(clip)
            #expect(decoded.clean, "\(decoded.errors)")
            let expected = (min(stop + 3, 220.0 / 25) - max(0, start - 3)) * 25
            #expect(Double(decoded.frames) >= expected - 2, "\(decoded.frames) frames, expected about \(expected)")
        }
        #expect(try eventLines("\(output)/masked/events.jsonl").isEmpty)
        #expect(run.stdout.contains("masked: 221 frames"), "\(run.stdout)")
    }
}
