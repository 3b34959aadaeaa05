import Foundation
import Models
import Monitoring
import Pipeline
import Testing
import TestKit
import VideoIO

/// Frames of every small size, odd large sizes and unusual pixel formats, made by the ffmpeg program,
/// decoded, run through the monitor (every overlay layer drawn) and written as H.264. Nothing may crash
/// (the AddressSanitizer run of `.ci/run` also fails on any out-of-bounds access); frames under 2x2 are
/// processed, and only the video refuses them, in one line.
@Suite("Frame sizes and pixel formats through the monitor")
struct FrameFuzzTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var width: Int, height: Int, codec: String, pixels: String, container: String
        var testDescription: String { "\(width)x\(height) \(codec) \(pixels)" }
    }

    static let squares = (1...64).map { Case(width: $0, height: $0, codec: "ffv1", pixels: "yuv444p", container: "nut") }
    /// Thin, odd and large frames, and the pixel formats cameras and phones give: gray, 4:4:4, 10-bit,
    /// MJPEG, planar RGB, packed RGB.
    static let shapes: [Case] = [
        Case(width: 1, height: 64, codec: "ffv1", pixels: "gray", container: "nut"),
        Case(width: 64, height: 1, codec: "ffv1", pixels: "yuv420p", container: "nut"),
        Case(width: 3, height: 5, codec: "ffv1", pixels: "yuv420p10le", container: "nut"),
        Case(width: 33, height: 17, codec: "mjpeg", pixels: "yuvj444p", container: "avi"),
        Case(width: 33, height: 17, codec: "mjpeg", pixels: "yuvj420p", container: "avi"),
        Case(width: 34, height: 18, codec: "libx264", pixels: "yuv420p10le", container: "mp4"),
        Case(width: 33, height: 17, codec: "libx264", pixels: "yuv444p", container: "mp4"),
        Case(width: 33, height: 17, codec: "rawvideo", pixels: "rgb24", container: "nut"),
        Case(width: 33, height: 17, codec: "ffv1", pixels: "gbrp", container: "nut"),
        Case(width: 961, height: 541, codec: "ffv1", pixels: "gray", container: "nut"),
        Case(width: 1279, height: 719, codec: "mjpeg", pixels: "yuvj422p", container: "avi"),
        Case(width: 1921, height: 1081, codec: "ffv1", pixels: "yuv420p10le", container: "nut"),
    ]
    /// Sizes drawn from a fixed seed, so a failure is the same on every run.
    static let drawn: [Case] = {
        var state: UInt64 = 0x5EED_F00D
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound)) + 1
        }
        return (0..<12).map { _ in Case(width: next(1921), height: next(1081), codec: "ffv1", pixels: "yuv420p", container: "nut") }
    }()

    static let model = Task { try await ModelLoader.load(ModelRegistry.defaultName) }

    @Test("through the monitor and the video writer", arguments: squares + shapes + drawn)
    func throughTheMonitor(_ item: Case) async throws {
        let scratch = try ScratchDirectory("fuzz")
        let clip = scratch.path("in.\(item.container)")
        let ffmpeg = try #require(RoadwatchBinary.which("ffmpeg"))
        let made = try RoadwatchBinary.runProgram(ffmpeg, [
            "-v", "error", "-f", "lavfi", "-i", "testsrc=size=\(item.width)x\(item.height):rate=5", "-frames:v", "3",
            "-c:v", item.codec, "-pix_fmt", item.pixels, clip,
        ], timeout: 120)
        try #require(made.status == 0, "ffmpeg: \(made.stderr)")

        let source = try await VideoSource.open(clip)
        var frames: [VideoFrame] = []
        for try await frame in source { frames.append(frame) }
        #expect(frames.count == 3)
        #expect(frames.allSatisfy { $0.image.width == item.width && $0.image.height == item.height })

        var configuration = Monitor.Configuration(size: FrameSize(width: 64, height: 64))
        configuration.overlay = .both
        let monitor = try Monitor(model: try await Self.model.value, configuration: configuration)
        let settings = H264Writer.Settings(width: item.width, height: item.height, frameRate: Rational(5, 1),
                                           timeBase: source.info.timeBase, preset: "ultrafast")
        let output = scratch.path("out.mp4")
        let video: VideoOutput?
        if item.width < 2 || item.height < 2 {
            #expect(throws: JobError.self) { try VideoOutput(path: output, settings: settings, segmentSeconds: nil) }
            video = nil
        } else {
            video = try VideoOutput(path: output, settings: settings, segmentSeconds: nil)
        }
        let summary = try await monitor.run(frames) { done in
            #expect(done.annotated.width == item.width && done.annotated.height == item.height)
            #expect(done.mask.count == item.width * item.height)
            try await video?.append(done.annotated, pts: done.frame.pts, audio: [])
        }
        #expect(summary.frames == 3)
        guard let video else { return }
        try await video.finish()
        let written = try await VideoSource.open(output)
        let expected = VideoOutput.encodedSize(width: item.width, height: item.height)
        #expect(written.info.width == expected.width && written.info.height == expected.height)
        #expect(try await written.countRemainingFrames() == 3)
    }
}
