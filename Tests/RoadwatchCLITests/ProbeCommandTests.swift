import Foundation
import Testing
import TestKit

@Suite("roadwatch probe and bad input, through the binary")
struct ProbeCommandTests {
    let clip = Shared.path("data/videos/solidWhiteRight.mp4")

    @Test("--version prints the version")
    func version() throws {
        let outcome = try RoadwatchBinary.run(["--version"])
        #expect(outcome.status == 0)
        #expect(outcome.stdout.range(of: #"^\d+\.\d+\.\d+\s*$"#, options: .regularExpression) != nil, "\(outcome.stdout)")
    }

    @Test("probe --json reports 221 frames of 960x540 at 25 fps")
    func probeJSON() throws {
        let outcome = try RoadwatchBinary.run(["probe", clip, "--json"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect(object["width"] as? Int == 960)
        #expect(object["height"] as? Int == 540)
        #expect(object["fps"] as? Double == 25)
        #expect(object["frames"] as? Int == 221)
        #expect(object["codec"] as? String == "h264")
        #expect(abs((object["duration"] as? Double ?? 0) - 8.84) < 0.01)
    }

    @Test("probe counts frames by decoding when the container does not say")
    func probeCountsFrames() throws {
        // MPEG-TS keeps no frame count; make one from the clip with the ffmpeg program.
        let scratch = try ScratchDirectory("ts")
        let ts = scratch.path("clip.ts")
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        ffmpeg.arguments = ["-v", "error", "-i", clip, "-c", "copy", "-an", "-f", "mpegts", ts]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        try #require(ffmpeg.terminationStatus == 0)
        let outcome = try RoadwatchBinary.run(["probe", ts, "--json"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect(object["frames"] as? Int == 221)
        #expect(object["frames_counted"] as? Bool == true)
    }

    @Test("an image is accepted as a one-frame video")
    func imageAsVideo() throws {
        let outcome = try RoadwatchBinary.run(["probe", Shared.path("models/espnet-cityscapes/reference/frame100.png"), "--json"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect(object["frames"] as? Int == 1)
        #expect(object["width"] as? Int == 960)
    }

    /// Bad inputs: exit status 1...127, one stderr line naming the input and the problem, under 10 s.
    @Test("bad inputs fail cleanly", arguments: BadInput.allCases)
    func badInput(_ input: BadInput) throws {
        let scratch = try ScratchDirectory("badcli")
        let server = try SilentServer()
        let (arguments, named, problem) = try input.prepare(in: scratch, clip: clip, silentPort: server.port)
        let outcome = try RoadwatchBinary.run(arguments, timeout: 20)
        #expect(!outcome.timedOut)
        #expect((1..<128).contains(outcome.status), "exit status \(outcome.status)")
        #expect(outcome.seconds < 10, "took \(outcome.seconds) s")
        #expect(outcome.stderrLines.count == 1, "stderr: \(outcome.stderr)")
        let line = outcome.stderrLines.first ?? ""
        #expect(line.contains(named), "\(line) does not name \(named)")
        #expect(line.lowercased().contains(problem), "\(line) does not say \(problem)")
        #expect(outcome.stdout.isEmpty)
    }
}

enum BadInput: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case missingFile, emptyFile, textFile, truncatedMP4, directory, unknownFlag, refusedURL, silentURL, missingCamera, missingCameraURL

    var testDescription: String { rawValue }

    /// The arguments, the text the error must name, and a word of the problem it must say.
    func prepare(in scratch: ScratchDirectory, clip: String, silentPort: UInt16) throws -> ([String], String, String) {
        switch self {
        case .missingFile:
            let path = scratch.path("missing.mp4")
            return (["probe", path], path, "no such file")
        case .emptyFile:
            let path = scratch.path("empty.mp4")
            try Data().write(to: URL(fileURLWithPath: path))
            return (["probe", path], path, "empty")
        case .textFile:
            let path = scratch.path("notes.mp4")
            try Data("these are notes, not a video\n".utf8).write(to: URL(fileURLWithPath: path))
            return (["probe", path], path, "invalid data")
        case .truncatedMP4:
            let path = scratch.path("truncated.mp4")
            let whole = try Data(contentsOf: URL(fileURLWithPath: clip))
            try whole.prefix(whole.count / 3).write(to: URL(fileURLWithPath: path))
            return (["probe", path], path, "truncated")
        case .directory:
            return (["probe", scratch.url.path], scratch.url.path, "directory")
        case .unknownFlag:
            return (["probe", clip, "--frobnicate"], "--frobnicate", "unknown option")
        case .refusedURL:
            let url = "tcp://127.0.0.1:\(try closedLoopbackPort())"
            return (["probe", url, "--timeout", "2"], url, "refused")
        case .silentURL:
            let url = "tcp://127.0.0.1:\(silentPort)"
            return (["probe", url, "--timeout", "2"], url, "timed out")
        case .missingCamera:  // no machine here has /dev/video97
            return (["probe", "/dev/video97"], "/dev/video97", "no such video device")
        case .missingCameraURL:
            return (["run", "v4l2:///dev/video97", "-o", scratch.path("cam.mp4")], "v4l2:///dev/video97", "no such video device")
        }
    }
}
