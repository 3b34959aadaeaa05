import ArgumentParser
import Foundation
import VideoIO

/// `roadwatch bench`: throughput measurements (benchmarks, not tests).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput on this machine.",
        subcommands: [VideoBench.self]
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
