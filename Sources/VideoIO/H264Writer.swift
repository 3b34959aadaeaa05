import CFFmpeg
import Foundation

/// Encodes RGB frames as H.264 (libx264, yuv420p) into an MP4 file.
///
/// The file on disk plays however writing ends, a kill -9 included: it is written as a fragmented MP4, a
/// fragment at least every second, each flushed to the kernel as it is made, so a kill loses at most the
/// last second. `finish()` then turns it into an ordinary MP4 with its index at the front (`+faststart`,
/// the packets copied, not re-encoded) unless `Settings.fragmented` keeps it fragmented. `abort()`, a
/// thrown error inside `write(to:settings:_:)`, task cancellation, or dropping the writer leave the
/// fragmented file as it is. A write error (a full disk) is thrown with its cause; the fragments already
/// written stay playable.
public final class H264Writer: Sendable {
    /// Encoder and container settings.
    public struct Settings: Sendable {
        public var width: Int
        public var height: Int
        /// Nominal frame rate stored in the file.
        public var frameRate: Rational
        /// Unit of the timestamps passed to `append`; use the source's to keep its timing exactly.
        public var timeBase: Rational
        /// x264 constant rate factor, 0 (lossless) to 51.
        public var crf: Int
        /// x264 preset, `ultrafast` ... `veryslow`.
        public var preset: String
        /// Encoder threads; 0 lets x264 choose.
        public var threads: Int
        /// Keep the file fragmented when it is finished (and the only way to write to a pipe). Off: a
        /// finished file is an ordinary MP4 with its index at the front. Either way it is written fragmented.
        public var fragmented: Bool
        /// Longest stretch of video not yet in a complete fragment on disk, in seconds.
        public var fragmentSeconds = 1.0
        /// An audio stream to copy into the file unchanged (packets given to `appendAudio`).
        public var audio: AudioStreamInfo?

        public init(width: Int, height: Int, frameRate: Rational, timeBase: Rational? = nil,
                    crf: Int = 20, preset: String = "veryfast", threads: Int = 0, fragmented: Bool = false) {
            self.width = width
            self.height = height
            self.frameRate = frameRate
            self.timeBase = timeBase ?? frameRate.inverse
            self.crf = crf
            self.preset = preset
            self.threads = threads
            self.fragmented = fragmented
        }
    }

    public let path: String
    public let settings: Settings
    private let core: EncoderCore
    private let lane: BlockingLane

    /// Creates the file and writes its header.
    public init(path: String, settings: Settings) throws {
        self.path = path
        self.settings = settings
        self.lane = BlockingLane(label: "roadwatch.encode")
        self.core = try EncoderCore(path: path, settings: settings)
    }

    deinit {
        // Last resort when neither finish() nor abort() ran: leave a playable file.
        let core = self.core
        lane.runSync { try? core.close(normally: false) }
    }

    /// Encodes one frame shown at `pts` (in `settings.timeBase` units); timestamps must increase.
    public func append(_ image: RGBImage, pts: Int64) async throws {
        try await lane.run { [core] in try core.encode(image, pts: pts) }
    }

    /// Encodes a decoded frame at its own timestamp, rescaled to `settings.timeBase`.
    public func append(_ frame: VideoFrame) async throws {
        let pts = frame.timeBase == settings.timeBase
            ? frame.pts : av_rescale_q(frame.pts, frame.timeBase.av, settings.timeBase.av)
        try await append(frame.image, pts: pts)
    }

    /// Copies coded audio packets (in the source audio stream's time base) into the file's audio stream.
    /// Without an audio stream in the settings they are ignored.
    public func appendAudio(_ packets: [AudioPacket]) async throws {
        guard settings.audio != nil, !packets.isEmpty else { return }
        try await lane.run { [core] in try core.writeAudio(packets) }
    }

    /// Flushes the encoder and closes the file; then, unless `settings.fragmented`, rewrites it as an ordinary
    /// MP4 with the index at the front. If that rewrite fails (no room for the copy), the fragmented file is
    /// kept — it plays — and the error says so.
    public func finish() async throws {
        try await lane.run { [core] in
            try core.close(normally: true)
            if !core.settings.fragmented && core.path != "-" { try MP4Faststart.rewrite(core.path) }
        }
    }

    /// Flushes what was encoded and closes the fragmented file; never throws, for error paths.
    public func abort() async {
        _ = try? await lane.run { [core] in try core.close(normally: false) }
    }

    /// Frames written so far.
    public var framesWritten: Int {
        get async { (try? await lane.run { [core] in core.framesWritten }) ?? 0 }
    }

    /// Opens a writer, runs `body`, and closes the file: normally when `body` returns, with `abort()`
    /// when it throws (cancellation included), so the file is playable either way.
    public static func write<T: Sendable>(to path: String, settings: Settings,
                                          _ body: (H264Writer) async throws -> T) async throws -> T {
        let writer = try H264Writer(path: path, settings: settings)
        do {
            let result = try await body(writer)
            try await writer.finish()
            return result
        } catch {
            await writer.abort()
            throw error
        }
    }
}

/// The FFmpeg side of `H264Writer`; used from one serial queue at a time.
private final class EncoderCore: @unchecked Sendable {
    let path: String
    let settings: H264Writer.Settings
    private var output: UnsafeMutablePointer<AVFormatContext>?
    private var encoder: UnsafeMutablePointer<AVCodecContext>?
    private var stream: UnsafeMutablePointer<AVStream>?
    private var audioStream: UnsafeMutablePointer<AVStream>?
    private var lastAudioDTS: Int64?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var scaler: OpaquePointer?
    private var lastPTS: Int64?
    private var closed = false
    private var headerWritten = false
    /// The file's identity when created: a write to a file removed since (or whose folder was) fails.
    private var identity: (device: UInt64, inode: UInt64)?
    /// The file's size after the last successful write: the end of its last whole fragment.
    private var wholeFragmentsEnd: Int64 = 0
    private var writeFailed = false
    private(set) var framesWritten = 0
    /// The frame's samples with slack after them, kept from frame to frame (no fresh pages per frame).
    private var padded: [UInt8] = []

    init(path: String, settings: H264Writer.Settings) throws(VideoIOError) {
        FFmpegRuntime.ensureReady()
        self.path = path
        self.settings = settings
        func fail(_ message: String, _ kind: VideoIOError.Kind = .usage) -> VideoIOError {
            VideoIOError(kind, operation: "create video", target: path, message: message)
        }
        guard settings.width > 0, settings.height > 0, settings.width % 2 == 0, settings.height % 2 == 0 else {
            throw fail("H.264 in yuv420p needs an even width and height, got \(settings.width)x\(settings.height)")
        }
        guard settings.frameRate.isValid, settings.timeBase.isValid else {
            throw fail("frame rate \(settings.frameRate) and time base \(settings.timeBase) must be positive")
        }
        guard (0...51).contains(settings.crf) else { throw fail("crf must be in 0...51, got \(settings.crf)") }
        guard let codec = avcodec_find_encoder_by_name("libx264") else {
            throw fail("this FFmpeg has no libx264 encoder", .unsupported)
        }

        var context: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_alloc_output_context2(&context, nil, "mp4", path), "create video", path)
        output = context
        guard let output = context, let encoder = avcodec_alloc_context3(codec) else { throw fail("out of memory", .io) }
        self.encoder = encoder
        encoder.pointee.width = Int32(settings.width)
        encoder.pointee.height = Int32(settings.height)
        encoder.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        encoder.pointee.time_base = settings.timeBase.av
        encoder.pointee.framerate = settings.frameRate.av
        encoder.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
        encoder.pointee.thread_count = Int32(max(0, settings.threads))
        // BT.601 limited range: what the RGB->YUV conversion below produces, and what players assume for SD/HD without tags.
        encoder.pointee.color_range = AVCOL_RANGE_MPEG
        if (output.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER) != 0 {
            encoder.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        }
        var codecOptions = makeDictionary(["crf": String(settings.crf), "preset": settings.preset])
        defer { av_dict_free(&codecOptions) }
        let openedEncoder = avcodec_open2(encoder, codec, &codecOptions)
        if openedEncoder < 0 {
            throw VideoIOError(.encoder, operation: "open the H.264 encoder for", target: path,
                               message: ffmpegErrorString(openedEncoder) + " (preset '\(settings.preset)')")
        }
        guard let stream = avformat_new_stream(output, nil) else { throw fail("out of memory", .io) }
        self.stream = stream
        stream.pointee.time_base = settings.timeBase.av
        stream.pointee.avg_frame_rate = settings.frameRate.av
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, encoder), "create video", path)

        if let audio = settings.audio {
            guard let copy = avformat_new_stream(output, nil) else { throw fail("out of memory", .io) }
            try check(avcodec_parameters_copy(copy.pointee.codecpar, audio.parameters), "add the audio stream to", path)
            copy.pointee.codecpar.pointee.codec_tag = 0  // let the MP4 muxer choose its own tag
            copy.pointee.time_base = audio.timeBase.av
            audioStream = copy
        }

        var io: UnsafeMutablePointer<AVIOContext>?
        try check(avio_open(&io, path == "-" ? "pipe:1" : path, AVIO_FLAG_WRITE), "create video", path)
        output.pointee.pb = io
        identity = fileIdentity(path)
        // Fragments at every key frame and at least every `fragmentSeconds`, each handed to the kernel as
        // soon as it is complete (flush_packets): what is on disk plays up to the last fragment.
        output.pointee.flags |= AVFMT_FLAG_FLUSH_PACKETS
        var muxerOptions = makeDictionary([
            "movflags": "+frag_keyframe+empty_moov+default_base_moof",
            "frag_duration": String(Int(max(0.04, settings.fragmentSeconds) * 1e6)),
        ])
        defer { av_dict_free(&muxerOptions) }
        try check(avformat_write_header(output, &muxerOptions), "write the header of", path)
        avio_flush(io)
        try wrote(io?.pointee.error ?? 0, "write the header of")
        headerWritten = true

        frame = av_frame_alloc()
        packet = av_packet_alloc()
        guard let frame, packet != nil else { throw fail("out of memory", .io) }
        frame.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        frame.pointee.width = Int32(settings.width)
        frame.pointee.height = Int32(settings.height)
        try check(av_frame_get_buffer(frame, 0), "allocate frames for", path)
        scaler = sws_getContext(Int32(settings.width), Int32(settings.height), AV_PIX_FMT_RGB24,
                                Int32(settings.width), Int32(settings.height), AV_PIX_FMT_YUV420P,
                                SWS_BICUBIC, nil, nil, nil)
        guard scaler != nil else { throw fail("swscale cannot convert RGB to yuv420p", .unsupported) }
    }

    deinit {
        try? close(normally: false)
        if scaler != nil { sws_freeContext(scaler) }
        if frame != nil { av_frame_free(&frame) }
        if packet != nil { av_packet_free(&packet) }
        if encoder != nil { avcodec_free_context(&encoder) }
        if let output {
            if output.pointee.pb != nil { avio_closep(&output.pointee.pb) }
            avformat_free_context(output)
        }
    }

    func encode(_ image: RGBImage, pts: Int64) throws(VideoIOError) {
        guard !closed, let frame, let encoder else {
            throw VideoIOError(.usage, operation: "write to", target: path, message: "the video is already closed")
        }
        guard image.width == settings.width, image.height == settings.height, image.channels == 3 else {
            throw VideoIOError(.usage, operation: "write to", target: path,
                               message: "frame is \(image.width)x\(image.height)x\(image.channels), the video is \(settings.width)x\(settings.height) RGB")
        }
        try check(av_frame_make_writable(frame), "write to", path)
        let rowBytes = Int32(image.width * 3)
        let height = Int32(image.height)
        // swscale reads its input with whole vectors, past the end of a short last row: read from a copy with slack.
        let count = image.samples.count
        if padded.count != count + PictureConverter.swscaleSlack {
            padded = [UInt8](repeating: 0, count: count + PictureConverter.swscaleSlack)
        }
        padded.withUnsafeMutableBufferPointer { copy in
            image.samples.withUnsafeBufferPointer { samples in
                copy.baseAddress!.update(from: samples.baseAddress!, count: count)
            }
        }
        padded.withUnsafeBufferPointer { source in
            var sourcePlanes: [UnsafePointer<UInt8>?] = [source.baseAddress, nil, nil, nil]
            var sourceStrides: [Int32] = [rowBytes, 0, 0, 0]
            withUnsafeMutablePointer(to: &frame.pointee.data) { data in
                data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { planes in
                    withUnsafeMutablePointer(to: &frame.pointee.linesize) { lines in
                        lines.withMemoryRebound(to: Int32.self, capacity: 8) { strides in
                            _ = sws_scale(scaler, &sourcePlanes, &sourceStrides, 0, height, planes, strides)
                        }
                    }
                }
            }
        }
        var stamp = pts
        if let lastPTS, stamp <= lastPTS { stamp = lastPTS + 1 }
        lastPTS = stamp
        frame.pointee.pts = stamp
        try check(avcodec_send_frame(encoder, frame), "encode a frame of", path)
        try drain()
        framesWritten += 1
        if let identity, fileIdentity(path).map({ $0 == identity }) != true {
            throw VideoIOError(.io, operation: "write to", target: path,
                               message: "it was removed while being written (or its folder was)", code: rw_averror(ENOENT))
        }
    }

    func writeAudio(_ packets: [AudioPacket]) throws(VideoIOError) {
        guard !closed, let output, let audioStream, let source = settings.audio, let packet else { return }
        for item in packets where !item.data.isEmpty {
            try check(av_new_packet(packet, Int32(item.data.count)), "copy audio into", path)
            item.data.withUnsafeBufferPointer { packet.pointee.data.update(from: $0.baseAddress!, count: $0.count) }
            packet.pointee.pts = item.pts
            packet.pointee.dts = item.dts
            packet.pointee.duration = item.duration
            packet.pointee.flags = item.isKey ? AV_PKT_FLAG_KEY : 0
            av_packet_rescale_ts(packet, source.timeBase.av, audioStream.pointee.time_base)
            packet.pointee.stream_index = audioStream.pointee.index
            // The muxer refuses decreasing timestamps; a repeated packet after a reconnect is dropped.
            if let last = lastAudioDTS, packet.pointee.dts != rw_nopts_value(), packet.pointee.dts <= last {
                av_packet_unref(packet)
                continue
            }
            if packet.pointee.dts != rw_nopts_value() { lastAudioDTS = packet.pointee.dts }
            let written = av_interleaved_write_frame(output, packet)
            av_packet_unref(packet)
            try wrote(written, "copy audio into")
        }
    }

    /// Moves every packet the encoder has ready into the file.
    private func drain() throws(VideoIOError) {
        guard let encoder, let packet, let output, let stream else { return }
        while true {
            let received = avcodec_receive_packet(encoder, packet)
            if received == rw_averror(EAGAIN) || received == rw_averror_eof() { return }
            try check(received, "encode a frame of", path)
            av_packet_rescale_ts(packet, encoder.pointee.time_base, stream.pointee.time_base)
            packet.pointee.stream_index = stream.pointee.index
            let written = av_interleaved_write_frame(output, packet)
            av_packet_unref(packet)
            try wrote(written, "write to")
        }
    }

    /// Notes where the file ends after a successful write — packets are flushed as written, so that is the
    /// end of a whole fragment — or remembers that a write failed.
    private func wrote(_ result: Int32, _ operation: String) throws(VideoIOError) {
        if result < 0 {
            writeFailed = true
            try check(result, operation, path)
        }
        if let pb = output?.pointee.pb { wholeFragmentsEnd = avio_tell(pb) }
    }

    /// Flushes the encoder and writes the trailer. Idempotent; a failed flush still writes the trailer,
    /// and only a normal close reports errors.
    func close(normally: Bool) throws(VideoIOError) {
        guard !closed else { return }
        closed = true
        guard headerWritten, let output, let encoder else { return }
        var firstError: VideoIOError?
        avcodec_send_frame(encoder, nil)
        do { try drain() } catch { firstError = error }
        let trailer = av_write_trailer(output)
        if trailer < 0 && firstError == nil {
            firstError = VideoIOError(ffmpeg: trailer, operation: "write the trailer of", target: path)
        }
        if output.pointee.pb != nil { avio_closep(&output.pointee.pb) }
        if (writeFailed || trailer < 0) && identity != nil {
            // A write cut short (a full disk) leaves half a fragment at the end: cut the file back to its
            // last whole fragment, so it plays to its end without errors.
            truncate(path, off_t(wholeFragmentsEnd))
        }
        if let firstError, normally { throw firstError }
    }
}

/// The device and inode `path` names now, or nil if nothing is there (or it is not a local file).
private func fileIdentity(_ path: String) -> (device: UInt64, inode: UInt64)? {
    guard path != "-", !path.contains("://") else { return nil }
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    return (UInt64(status.st_dev), UInt64(status.st_ino))
}

/// Rewrites a (fragmented) MP4 as an ordinary one with its index at the front, copying the packets.
enum MP4Faststart {
    static func rewrite(_ path: String) throws(VideoIOError) {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".faststart").path
        do {
            try copy(from: path, to: temporary)
        } catch {
            unlink(temporary)
            throw VideoIOError(error.kind, operation: "finish", target: path,
                               message: "\(error.message); it is kept as a fragmented MP4, which plays", code: error.code)
        }
        if rename(temporary, path) != 0 {
            let number = errno
            unlink(temporary)
            throw VideoIOError(.io, operation: "finish", target: path,
                               message: "\(describeErrno(number)); it is kept as a fragmented MP4, which plays", code: -number)
        }
    }

    private static func copy(from source: String, to target: String) throws(VideoIOError) {
        var input: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_open_input(&input, source, nil, nil), "read back", source)
        defer { avformat_close_input(&input) }
        guard let input else { return }
        try check(avformat_find_stream_info(input, nil), "read back", source)

        var created: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_alloc_output_context2(&created, nil, "mp4", target), "create", target)
        guard let output = created else { return }
        defer {
            if output.pointee.pb != nil { avio_closep(&output.pointee.pb) }
            avformat_free_context(output)
        }
        let count = Int(input.pointee.nb_streams)
        for index in 0..<count {
            let from = input.pointee.streams[index]!
            guard let to = avformat_new_stream(output, nil) else {
                throw VideoIOError(.io, operation: "create", target: target, message: "out of memory")
            }
            try check(avcodec_parameters_copy(to.pointee.codecpar, from.pointee.codecpar), "create", target)
            to.pointee.codecpar.pointee.codec_tag = 0
            to.pointee.time_base = from.pointee.time_base
            to.pointee.avg_frame_rate = from.pointee.avg_frame_rate
        }
        try check(avio_open(&output.pointee.pb, target, AVIO_FLAG_WRITE), "create", target)
        var options = makeDictionary(["movflags": "+faststart"])
        defer { av_dict_free(&options) }
        try check(avformat_write_header(output, &options), "write the header of", target)
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        guard let packet else { return }
        while true {
            let read = av_read_frame(input, packet)
            if read == rw_averror_eof() { break }
            try check(read, "read back", source)
            let index = Int(packet.pointee.stream_index)
            guard index < count else { av_packet_unref(packet); continue }
            av_packet_rescale_ts(packet, input.pointee.streams[index]!.pointee.time_base,
                                 output.pointee.streams[index]!.pointee.time_base)
            packet.pointee.pos = -1
            let written = av_interleaved_write_frame(output, packet)
            av_packet_unref(packet)
            try check(written, "write", target)
        }
        try check(av_write_trailer(output), "write the trailer of", target)
        try check(avio_closep(&output.pointee.pb), "close", target)
    }
}
