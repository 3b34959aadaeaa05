import Foundation
import Testing
import TestKit
@testable import VideoIO

@Suite("Decoding real video")
struct DecodeTests {
    let clip = Shared.path("data/videos/solidWhiteRight.mp4")

    @Test("solidWhiteRight: 221 frames of 960x540 at 25 fps, timestamps strictly increasing")
    func decodesWholeClip() async throws {
        let source = try await VideoSource.open(clip)
        #expect(source.info.width == 960)
        #expect(source.info.height == 540)
        #expect(source.info.frameRate == Rational(25, 1))
        #expect(source.info.frameCount == 221)
        #expect(source.info.codec == "h264")
        #expect(source.info.hasAudio)

        var count = 0
        var lastTime = -Double.infinity
        for try await frame in source {
            #expect(frame.index == count)
            #expect(frame.time > lastTime, "frame \(frame.index) at \(frame.time) s after \(lastTime) s")
            #expect(frame.image.width == 960 && frame.image.height == 540 && frame.image.channels == 3)
            #expect(frame.sourceSize == FrameSize(width: 960, height: 540))
            lastTime = frame.time
            count += 1
        }
        #expect(count == 221)
        #expect(abs(lastTime - 220.0 / 25.0) < 1e-9)
    }

    @Test("frame 100 at native size matches the reference PNG made by the FFmpeg CLI (max difference 2)")
    func frame100MatchesReference() async throws {
        let reference = try StillImage.readRGB(Shared.path("models/espnet-cityscapes/reference/frame100.png"))
        let source = try await VideoSource.open(clip)
        var frame100: VideoFrame?
        for try await frame in source where frame.index == 100 {
            frame100 = frame
            break
        }
        let image = try #require(frame100).image
        #expect(image.width == reference.width && image.height == reference.height)
        var maxDifference = 0
        for (a, b) in zip(image.samples, reference.samples) {
            maxDifference = max(maxDifference, abs(Int(a) - Int(b)))
        }
        #expect(maxDifference <= 2, "max per-channel difference \(maxDifference)")
    }

    @Test("a requested size is honoured and the source size reported")
    func resizesOnDecode() async throws {
        let source = try await VideoSource.open(clip, options: InputOptions(size: FrameSize(width: 512, height: 256)))
        var iterator = source.makeAsyncIterator()
        let frame = try #require(try await iterator.next())
        #expect(frame.image.width == 512 && frame.image.height == 256)
        #expect(frame.sourceSize == FrameSize(width: 960, height: 540))
    }

    @Test("a corrupt stretch in the middle of a file is skipped and decoding goes on")
    func survivesCorruptPackets() async throws {
        let scratch = try ScratchDirectory("corrupt")
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: clip)))
        // Overwrite 64 KiB in the middle of the media data with noise; the index at the front stays intact.
        var generator = SplitMix64(seed: 7)
        let middle = bytes.count / 2
        for i in middle..<(middle + 65_536) { bytes[i] = UInt8(truncatingIfNeeded: generator.next()) }
        let damaged = scratch.path("damaged.mp4")
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))

        let warnings = WarningLog()
        let source = try await VideoSource.open(damaged, options: InputOptions(onWarning: { warnings.append($0) }))
        var count = 0
        for try await _ in source { count += 1 }
        #expect(count >= 200, "decoded \(count) of 221 frames")
        #expect(warnings.count > 0, "damage went unnoticed (\(count) frames)")
        print("corrupt clip: \(count) frames, \(warnings.count) warnings")
    }

    @Test("a still image reads as a one-frame video")
    func imageIsOneFrameVideo() async throws {
        let source = try await VideoSource.open(Shared.path("models/espnet-cityscapes/reference/frame100.png"))
        var count = 0
        for try await frame in source {
            #expect(frame.image.width == 960)
            count += 1
        }
        #expect(count == 1)
        #expect(source.info.frameCount == 1)
    }

    @Test("bad inputs fail with a clear error kind")
    func badInputs() async throws {
        let scratch = try ScratchDirectory("bad")
        try Data().write(to: URL(fileURLWithPath: scratch.path("empty.mp4")))
        try Data("not a video\n".utf8).write(to: URL(fileURLWithPath: scratch.path("text.mp4")))
        let whole = try Data(contentsOf: URL(fileURLWithPath: clip))
        try whole.prefix(whole.count / 3).write(to: URL(fileURLWithPath: scratch.path("truncated.mp4")))

        let cases: [(String, VideoIOError.Kind)] = [
            (scratch.path("missing.mp4"), .notFound),
            (scratch.url.path, .unreadable),
            (scratch.path("empty.mp4"), .invalidInput),
            (scratch.path("text.mp4"), .invalidInput),
            (scratch.path("truncated.mp4"), .truncated),
        ]
        for (path, kind) in cases {
            do {
                _ = try await VideoSource.open(path)
                Issue.record("\(path) opened")
            } catch let error as VideoIOError {
                #expect(error.kind == kind, "\(path): \(error)")
                #expect(error.description.contains(path))
            }
        }
    }
}

/// Collects warnings from decoder callbacks.
final class WarningLog: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func append(_ message: String) { lock.withLock { messages.append(message) } }
    var count: Int { lock.withLock { messages.count } }
}

/// A small deterministic generator for test noise.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Conversion on demand")
struct DeferredConversionTests {
    let clip = Shared.path("data/videos/solidWhiteRight.mp4")

    @Test("frames converted when first read equal frames converted by the decoder, even after the source is closed")
    func deferredEqualsEager() async throws {
        let size = FrameSize(width: 512, height: 256)
        var eager: [RGBImage] = []
        for try await frame in try await VideoSource.open(clip, options: InputOptions(size: size)) {
            #expect(!frame.isConversionPending)
            eager.append(frame.image)
            if eager.count == 30 { break }
        }
        var options = InputOptions(size: size)
        options.convertOnDemand = true
        let source = try await VideoSource.open(clip, options: options)
        var kept: [VideoFrame] = []
        for try await frame in source {
            #expect(frame.isConversionPending)
            kept.append(frame)  // unread: still the decoder's picture
            if kept.count == 30 { break }
        }
        await source.close()  // the pictures hold their own references to the decoder's buffers
        for (index, frame) in kept.enumerated() where index % 3 != 1 {
            let copy = frame  // copies share one conversion
            #expect(copy.image.samples == eager[index].samples, "frame \(index)")
            #expect(!frame.isConversionPending)
        }
        #expect(kept[1].isConversionPending)  // never read, never converted
    }

    @Test("frame 100 converted on demand at native size matches the reference PNG made by the FFmpeg CLI (max difference 2)")
    func deferredFrame100MatchesReference() async throws {
        let reference = try StillImage.readRGB(Shared.path("models/espnet-cityscapes/reference/frame100.png"))
        var options = InputOptions()
        options.convertOnDemand = true
        var frame100: VideoFrame?
        for try await frame in try await VideoSource.open(clip, options: options) where frame.index == 100 {
            frame100 = frame
            break
        }
        let frame = try #require(frame100)
        #expect(frame.isConversionPending)
        let image = frame.image
        #expect(image.width == reference.width && image.height == reference.height)
        let maxDifference = zip(image.samples, reference.samples).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(maxDifference <= 2, "max per-channel difference \(maxDifference)")
    }

    @Test("a frame read on several threads at once is converted once, to the same pixels")
    func concurrentFirstReads() async throws {
        var options = InputOptions(size: FrameSize(width: 256, height: 128))
        options.convertOnDemand = true
        var iterator = try await VideoSource.open(clip, options: options).makeAsyncIterator()
        let frame = try #require(try await iterator.next())
        let images = await withTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<8 { group.addTask { frame.image.samples } }
            return await group.reduce(into: [[UInt8]]()) { $0.append($1) }
        }
        #expect(images.count == 8)
        #expect(Set(images).count == 1)
        #expect(images[0].count == 256 * 128 * 3)
    }
}
