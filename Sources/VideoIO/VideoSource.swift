/// A video file, device or stream, decoded to RGB frames as an `AsyncSequence`.
///
/// Decoding runs on a serial queue of its own, off Swift's cooperative threads; each `next()` pulls one
/// frame, so a slow consumer makes the reader wait (nothing is dropped). Iterate it once.
///
///     let source = try await VideoSource.open("drive.mp4", options: InputOptions(size: FrameSize(width: 1024, height: 512)))
///     for try await frame in source { ... }
public final class VideoSource: AsyncSequence, Sendable {
    public typealias Element = VideoFrame

    /// What the source is.
    public let info: MediaInfo
    /// The audio stream to copy into an output, when the source has one.
    public let audio: AudioStreamInfo?
    private let decoder: FrameDecoder
    private let lane: BlockingLane

    private init(decoder: FrameDecoder, lane: BlockingLane) {
        self.decoder = decoder
        self.lane = lane
        self.info = decoder.info
        self.audio = decoder.audio
    }

    /// Opens `url` (a path, `-` for standard input, or any URL FFmpeg reads) and its best video stream.
    public static func open(_ url: String, options: InputOptions = InputOptions()) async throws -> VideoSource {
        let lane = BlockingLane(label: "roadwatch.decode")
        let decoder = try await lane.run { try FrameDecoder(target: url, options: options) }
        return VideoSource(decoder: decoder, lane: lane)
    }

    /// Frames decoded so far that came from damaged data, or packets skipped as corrupt.
    public var corruptEvents: Int {
        get async { (try? await lane.run { [decoder] in decoder.corruptEvents }) ?? 0 }
    }

    /// Decodes the rest of the stream without converting it, and returns how many frames there were.
    public func countRemainingFrames() async throws -> Int {
        try await lane.run { [decoder] in
            var count = 0
            while try decoder.skip() { count += 1 }
            return count
        }
    }

    /// Stops a blocking read at once and frees the decoder; iteration then ends.
    public func close() async {
        decoder.interrupt.abort()
        _ = try? await lane.run { [decoder] in decoder.close() }
    }

    public func makeAsyncIterator() -> Iterator { Iterator(source: self) }

    fileprivate func nextFrame() async throws -> VideoFrame? {
        try await withTaskCancellationHandler {
            try await lane.run { [decoder] in try decoder.next() }
        } onCancel: { [decoder] in
            decoder.interrupt.abort()
        }
    }

    /// Pulls one frame per call from the source's decoding queue.
    public struct Iterator: AsyncIteratorProtocol {
        fileprivate let source: VideoSource

        public mutating func next() async throws -> VideoFrame? {
            try Task.checkCancellation()
            do {
                return try await source.nextFrame()
            } catch where Task.isCancelled {
                throw CancellationError()
            }
        }
    }
}
