import Foundation
import Testing
import TestKit
@testable import VideoIO

@Suite("Writing H.264 MP4")
struct EncodeTests {
    let clip = Shared.path("data/videos/solidWhiteRight.mp4")

    /// The first `count` frames of the clip.
    func sourceFrames(_ count: Int) async throws -> (MediaInfo, [VideoFrame]) {
        let source = try await VideoSource.open(clip)
        var frames: [VideoFrame] = []
        for try await frame in source {
            frames.append(frame)
            if frames.count == count { break }
        }
        return (source.info, frames)
    }

    func psnr(_ a: RGBImage, _ b: RGBImage) -> Double {
        var squared = 0.0
        a.samples.withUnsafeBufferPointer { a in
            b.samples.withUnsafeBufferPointer { b in
                var sum = 0
                for i in 0..<a.count {
                    let d = Int(a[i]) - Int(b[i])
                    sum += d * d
                }
                squared = Double(sum)
            }
        }
        let mse = squared / Double(a.samples.count)
        return 10 * log10(255 * 255 / max(mse, 1e-12))
    }

    @Test("60 frames written at crf 18 read back with the same count, size, rate and timestamps, PSNR >= 35 dB")
    func roundTrip() async throws {
        let (info, frames) = try await sourceFrames(60)
        let scratch = try ScratchDirectory("roundtrip")
        let path = scratch.path("out.mp4")
        let settings = H264Writer.Settings(width: 960, height: 540, frameRate: try #require(info.frameRate),
                                           timeBase: info.timeBase, crf: 18, preset: "veryfast")
        try await H264Writer.write(to: path, settings: settings) { writer in
            for frame in frames { try await writer.append(frame) }
        }

        let readBack = try await VideoSource.open(path)
        #expect(readBack.info.frameRate == info.frameRate)
        #expect(readBack.info.frameCount == 60)
        #expect(readBack.info.codec == "h264")
        var decoded: [VideoFrame] = []
        for try await frame in readBack { decoded.append(frame) }
        try #require(decoded.count == 60)
        var worst = Double.infinity
        for (original, copy) in zip(frames, decoded) {
            #expect(copy.image.width == 960 && copy.image.height == 540)
            #expect(abs(copy.time - original.time) < 1e-6, "frame \(original.index): \(copy.time) vs \(original.time)")
            worst = min(worst, psnr(original.image, copy.image))
        }
        #expect(worst >= 35, "lowest PSNR \(worst) dB")

        // A normal close moves the index to the front (+faststart).
        let boxes = try topLevelBoxes(path)
        #expect(boxes.firstIndex(of: "moov").map { $0 < boxes.firstIndex(of: "mdat") ?? -1 } == true, "boxes \(boxes)")
    }

    /// The types of an MP4's top-level boxes, in file order.
    func topLevelBoxes(_ path: String) throws -> [String] {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var types: [String] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            var size = bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
            types.append(String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self))
            if size == 1, offset + 16 <= bytes.count {  // 64-bit size follows the type
                size = bytes[(offset + 8)..<(offset + 16)].reduce(0) { $0 << 8 | Int($1) }
            }
            guard size >= 8 else { break }
            offset += size
        }
        return types
    }

    @Test("a writer cancelled after 30 frames leaves a file that decodes to those frames")
    func cancelledWriterLeavesPlayableFile() async throws {
        let (info, frames) = try await sourceFrames(30)
        let scratch = try ScratchDirectory("cancel")
        let path = scratch.path("cancelled.mp4")
        let settings = H264Writer.Settings(width: 960, height: 540, frameRate: try #require(info.frameRate),
                                           timeBase: info.timeBase, crf: 23, preset: "ultrafast")
        let thirtyWritten = AsyncStream<Void>.makeStream()
        let task = Task {
            try await H264Writer.write(to: path, settings: settings) { writer in
                var index = 0
                while true {  // writes until cancelled
                    try Task.checkCancellation()
                    if index < frames.count {
                        try await writer.append(frames[index])
                        index += 1
                        if index == frames.count { thirtyWritten.continuation.yield() }
                    } else {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                }
            }
        }
        for await _ in thirtyWritten.stream { break }
        task.cancel()
        let outcome = await task.result
        #expect(throws: CancellationError.self) { try outcome.get() }

        let readBack = try await VideoSource.open(path)
        var times: [Double] = []
        for try await frame in readBack { times.append(frame.time) }
        #expect(times.count == 30)
        #expect(times == frames.map(\.time))
    }

    @Test("odd sizes and bad settings are refused before anything is written")
    func refusesBadSettings() throws {
        let scratch = try ScratchDirectory("settings")
        #expect(throws: VideoIOError.self) {
            _ = try H264Writer(path: scratch.path("odd.mp4"), settings: .init(width: 961, height: 540, frameRate: Rational(25, 1)))
        }
        #expect(throws: VideoIOError.self) {
            _ = try H264Writer(path: scratch.path("crf.mp4"), settings: .init(width: 960, height: 540, frameRate: Rational(25, 1), crf: 70))
        }
        #expect(throws: VideoIOError.self) {
            _ = try H264Writer(path: "/nonexistent-dir/x.mp4", settings: .init(width: 960, height: 540, frameRate: Rational(25, 1)))
        }
    }
}
