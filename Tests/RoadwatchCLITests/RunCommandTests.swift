import Foundation
import Testing
import TestKit
import VideoIO

@Suite("roadwatch run, through the binary")
struct RunCommandTests {
    @Test("an odd-sized input is written one pixel smaller, said on stderr; a 1x1 input is refused in one line")
    func oddSizes() async throws {
        let scratch = try ScratchDirectory("odd")
        let odd = scratch.path("odd.png"), one = scratch.path("one.png")
        try StillImage.writePNG(RGBImage(width: 41, height: 23, channels: 3, repeating: 90), to: odd)
        try StillImage.writePNG(RGBImage(width: 1, height: 1, channels: 3, repeating: 90), to: one)
        let run = try RoadwatchBinary.run(["run", odd, "-o", scratch.path("odd.mp4"), "--size", "256x128", "--quiet"], timeout: 120)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("is 41x23") && run.stderr.contains("is 40x22"), "\(run.stderr)")
        let produced = try await VideoSource.open(scratch.path("odd.mp4"))
        #expect(produced.info.width == 40 && produced.info.height == 22)
        let refused = try RoadwatchBinary.run(["run", one, "-o", scratch.path("one.mp4"), "--size", "256x128", "--quiet"], timeout: 120)
        #expect(refused.status != 0)
        #expect(refused.stderr.split(separator: "\n").count == 1 && refused.stderr.contains("at least 2x2, these are 1x1"),
                "\(refused.stderr)")
    }

    /// swscale's vector code read and wrote past the end of such frames' exact-size buffers (heap corruption,
    /// exit 134/139 on every run before the fix); every overlay draws on them too.
    @Test("tiny frames (2x2, 4x4, 8x8) are processed and encoded, with every overlay", arguments: [2, 4, 8])
    func tinyFrames(side: Int) async throws {
        let scratch = try ScratchDirectory("tiny")
        let input = scratch.path("tiny.mp4")
        let settings = H264Writer.Settings(width: side, height: side, frameRate: Rational(5, 1), crf: 23, preset: "ultrafast")
        try await H264Writer.write(to: input, settings: settings) { writer in
            for i in 0..<5 {
                let samples = (0..<(side * side * 3)).map { UInt8(truncatingIfNeeded: $0 * 37 + i * 11) }
                try await writer.append(RGBImage(width: side, height: side, channels: 3, samples: samples), pts: Int64(i))
            }
        }
        for overlay in ["heat", "both", "none"] {
            let output = scratch.path("out-\(overlay).mp4")
            let run = try RoadwatchBinary.run(["run", input, "-o", output, "--overlay", overlay, "--size", "256x128", "--quiet"],
                                              timeout: 120)
            #expect(run.status == 0, "\(side)x\(side) --overlay \(overlay): \(run.stderr)")
            let produced = try await VideoSource.open(output)
            #expect(produced.info.width == side && produced.info.height == side)
            #expect(try await produced.countRemainingFrames() == 5)
        }
    }

    @Test("the fox clip: 221 frames at 960x540 and 25 fps with the input's timestamps, 221 events, warm K-Means")
    func foxClip() async throws {
        let scratch = try ScratchDirectory("run")
        let input = Shared.path("data/videos/synthetic_fox_solidWhiteRight/video.mp4")
        let output = scratch.path("out.mp4"), events = scratch.path("events.jsonl")
        let outcome = try RoadwatchBinary.run(["run", input, "-o", output, "--events", events, "--size", "512x256",
                                               "--mask-dir", scratch.path("masks"), "--quiet"], timeout: 600)
        #expect(outcome.status == 0, "\(outcome.stderr)")

        let expected = try await VideoSource.open(input)
        var inputTimes: [Double] = []
        for try await frame in expected { inputTimes.append(frame.time) }
        let produced = try await VideoSource.open(output)
        #expect(produced.info.width == 960 && produced.info.height == 540)
        #expect(produced.info.frameRate == Rational(25, 1))
        var outputTimes: [Double] = []
        for try await frame in produced { outputTimes.append(frame.time) }
        #expect(outputTimes.count == 221)
        #expect(outputTimes == inputTimes)

        let lines = try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 221)
        for (i, line) in lines.enumerated() {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["frame"] as? Int == i)
            #expect(abs((object["t"] as? Double ?? -1) - Double(i) / 25) < 1e-6)
            let kmeans = try #require(object["kmeans"] as? [String: Any])
            let warm = kmeans["warm"] as? Bool, reseeded = kmeans["reseeded"] as? Bool
            #expect(i == 0 ? warm == false : (warm == true || reseeded == true), "frame \(i): \(kmeans)")
            #expect(object["anomaly_fraction"] is Double && object["regions"] is [Any])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path("masks")).count == 221)
    }

    @Test("SIGINT a few seconds in: exit 130, the video decodes, every event line parses")
    func interrupted() async throws {
        let scratch = try ScratchDirectory("sigint")
        let output = scratch.path("out.mp4"), events = scratch.path("events.jsonl")
        let running = try RunningBinary(["run", Shared.path("data/videos/solidYellowLeft.mp4"), "-o", output, "--events", events,
                                         "--size", "512x256", "--quiet"])
        // Interrupt once some frames are out. A blocking wait: Task.sleep can resume late when other tests
        // hold the cooperative threads, and the run would finish first.
        #expect(waitUntil(timeout: 120) {
            ((try? String(contentsOfFile: events, encoding: .utf8))?.split(separator: "\n").count ?? 0) >= 3
        })
        running.signal(SIGINT)
        let outcome = running.wait(timeout: 60)
        #expect(!outcome.timedOut)
        #expect(outcome.status == 130)
        let lines = try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 1 && lines.count < 681)
        for line in lines { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil) }
        let produced = try await VideoSource.open(output)
        var frames = 0
        for try await _ in produced { frames += 1 }
        #expect(frames >= 1 && frames == lines.count)
    }

    @Test("bad run arguments fail before any work", arguments: [
        (["--k", "0"], "--k"),
        (["--size", "100x37"], "multiple of 16"),
        (["-o", "/nonexistent-folder/out.mp4"], "does not exist"),
        (["--overlay", "sparkles"], "overlay"),
    ])
    func badArguments(_ extra: [String], _ problem: String) throws {
        let scratch = try ScratchDirectory("runbad")
        var arguments = ["run", Shared.path("data/videos/solidWhiteRight.mp4")]
        if !extra.contains("-o") { arguments += ["-o", scratch.path("out.mp4")] }
        let outcome = try RoadwatchBinary.run(arguments + extra)
        #expect((1..<128).contains(outcome.status))
        #expect(outcome.stderrLines.count == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.contains(problem), "\(outcome.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out.mp4")))
    }

    @Test("an output that is the input is refused, and the input is untouched")
    func outputIsInput() throws {
        let scratch = try ScratchDirectory("runsame")
        let copy = scratch.path("clip.mp4")
        try FileManager.default.copyItem(atPath: Shared.path("data/videos/solidWhiteRight.mp4"), toPath: copy)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        let outcome = try RoadwatchBinary.run(["run", copy, "-o", copy])
        #expect((1..<128).contains(outcome.status) && outcome.stderr.contains("is the input"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
    }
}

@Suite("roadwatch run keeps the soundtrack")
struct RunAudioTests {
    /// MD5 of a file's audio packets, as the ffmpeg program reports it.
    func audioDigest(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        process.arguments = ["-v", "error", "-i", path, "-map", "0:a", "-c", "copy", "-f", "md5", "-"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("the input's AAC stream is copied to the output packet for packet")
    func audioCopied() throws {
        let scratch = try ScratchDirectory("audio")
        let input = Shared.path("data/videos/solidWhiteRight.mp4")
        let output = scratch.path("out.mp4")
        let outcome = try RoadwatchBinary.run(["run", input, "-o", output, "--size", "128x64", "--overlay", "none", "--quiet"], timeout: 300)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let original = try audioDigest(input)
        #expect(original.hasPrefix("MD5="))
        #expect(try audioDigest(output) == original)
    }
}
