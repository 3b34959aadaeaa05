import CFFmpeg
import Foundation

/// Pixel layouts the decoder can hand out.
enum OutputPixels {
    case rgb24, gray8, gray16

    var avFormat: AVPixelFormat {
        switch self {
        case .rgb24: AV_PIX_FMT_RGB24
        case .gray8: AV_PIX_FMT_GRAY8
        case .gray16: hostIsLittleEndian ? AV_PIX_FMT_GRAY16LE : AV_PIX_FMT_GRAY16BE
        }
    }

    var channels: Int { self == .rgb24 ? 3 : 1 }
    var bytesPerSample: Int { self == .gray16 ? 2 : 1 }
}

let hostIsLittleEndian = UInt16(1).littleEndian == 1

/// One converted frame as raw bytes in the decoder's `OutputPixels` layout.
struct DecodedPixels {
    var index: Int
    var pts: Int64
    var sourceSize: FrameSize
    var size: FrameSize
    var bytes: [UInt8]
}

/// Demuxes and decodes one video stream and converts its frames with swscale.
///
/// Owns every FFmpeg context it opens. Not thread-safe: its owner calls it from one serial queue at a time,
/// which is why it may be marked `@unchecked Sendable`.
final class FrameDecoder: @unchecked Sendable {
    let target: String
    private(set) var info: MediaInfo
    let interrupt = InterruptDeadline()

    private let options: InputOptions
    private let pixels: OutputPixels
    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private let converter: PictureConverter
    private var streamIndex: Int32
    private var streamStart: Int64
    private var frameDuration: Int64

    private var audioIndex: Int32 = -1
    /// The input's audio stream, when it has one.
    private(set) var audio: AudioStreamInfo?
    private var pendingAudio: [AudioPacket] = []
    private var sentFlush = false
    private var finished = false
    private var nextIndex = 0
    private var lastPTS: Int64?
    /// Corrupt packets or frames met so far.
    private(set) var corruptEvents = 0

    init(target: String, options: InputOptions, pixels: OutputPixels = .rgb24) throws(VideoIOError) {
        FFmpegRuntime.ensureReady()
        if let problem = localPathProblem(target) { throw problem }
        self.target = target
        self.options = options
        self.pixels = pixels
        self.converter = PictureConverter(target: target, pixels: pixels, options: options)

        guard let context = avformat_alloc_context() else {
            throw VideoIOError(.io, operation: "open input", target: target, message: "out of memory")
        }
        context.pointee.interrupt_callback = AVIOInterruptCB(
            callback: InterruptDeadline.callback,
            opaque: Unmanaged.passUnretained(interrupt).toOpaque())
        var inputFormat: UnsafePointer<AVInputFormat>?
        // Cameras: `v4l2:///dev/videoN` and `/dev/videoN` are read through libavdevice's v4l2 input.
        var openTarget = target == "-" ? "pipe:0" : target
        var formatName = options.format
        if target.hasPrefix("v4l2://") {
            openTarget = String(target.dropFirst("v4l2://".count))
            formatName = formatName ?? "video4linux2"
        } else if target.hasPrefix("/dev/video") {
            formatName = formatName ?? "video4linux2"
        }
        if formatName == "video4linux2" || formatName == "v4l2" {
            // FFmpeg's v4l2 input reports a missing device less plainly than this.
            if !FileManager.default.fileExists(atPath: openTarget) {
                avformat_free_context(context)
                throw VideoIOError(.notFound, operation: "open camera", target: target,
                                   message: "no such video device (is the camera connected? ls /dev/video*)")
            }
        }
        if let name = formatName {
            inputFormat = av_find_input_format(name)
            if inputFormat == nil {
                avformat_free_context(context)
                throw VideoIOError(.usage, operation: "open input", target: target, message: "unknown input format '\(name)'")
            }
        }
        var dictionary = makeDictionary(options.formatOptions)
        defer { av_dict_free(&dictionary) }
        var formatContext: UnsafeMutablePointer<AVFormatContext>? = context
        interrupt.arm(options.openTimeout)
        let opened = avformat_open_input(&formatContext, openTarget, inputFormat, &dictionary)
        if opened < 0 {
            // avformat_open_input frees the context on failure.
            var error = VideoIOError(ffmpeg: opened, operation: "open input", target: target)
            if opened == rw_averror_invaliddata() { error.message += " (not a video or image FFmpeg can read)" }
            throw error
        }
        format = formatContext

        // From here on, `deinit` frees whatever was opened if a later step throws.
        streamIndex = -1
        streamStart = 0
        frameDuration = 1
        info = MediaInfo(url: target, container: "", codec: "", width: 0, height: 0, frameRate: nil,
                         timeBase: Rational(1, 1), duration: nil, frameCount: nil, pixelFormat: "",
                         bitRate: nil, hasAudio: false)

        let found = avformat_find_stream_info(formatContext, nil)
        if found < 0 { throw VideoIOError(ffmpeg: found, operation: "read stream information of", target: target) }
        interrupt.arm(nil)

        var decoderCodec: UnsafePointer<AVCodec>?
        let best = av_find_best_stream(formatContext, AVMEDIA_TYPE_VIDEO, -1, -1, &decoderCodec, 0)
        if best < 0 {
            let decoderMissing = ffmpegErrorString(best).lowercased().contains("decoder")
            throw VideoIOError(decoderMissing ? .unsupported : .invalidInput, operation: "open input", target: target,
                               message: decoderMissing ? "no decoder for its video codec" : "no video stream found")
        }
        guard let decoderCodec else {
            throw VideoIOError(.unsupported, operation: "open input", target: target, message: "no decoder for its video codec")
        }
        let stream = formatContext!.pointee.streams[Int(best)]!
        guard let codecContext = avcodec_alloc_context3(decoderCodec) else {
            throw VideoIOError(.io, operation: "open decoder for", target: target, message: "out of memory")
        }
        codec = codecContext
        try check(avcodec_parameters_to_context(codecContext, stream.pointee.codecpar), "configure decoder for", target)
        codecContext.pointee.thread_count = Int32(max(0, options.decoderThreads))
        codecContext.pointee.thread_type = options.frameThreading ? (FF_THREAD_FRAME | FF_THREAD_SLICE) : FF_THREAD_SLICE
        codecContext.pointee.pkt_timebase = stream.pointee.time_base
        try check(avcodec_open2(codecContext, decoderCodec, nil), "open decoder for", target)

        packet = av_packet_alloc()
        frame = av_frame_alloc()
        guard packet != nil, frame != nil else {
            throw VideoIOError(.io, operation: "open input", target: target, message: "out of memory")
        }

        let timeBase = Rational(stream.pointee.time_base)
        var rate = Rational(stream.pointee.avg_frame_rate)
        if !rate.isValid { rate = Rational(stream.pointee.r_frame_rate) }
        let frameRate: Rational? = rate.isValid ? rate : nil

        var duration: Double?
        if stream.pointee.duration > 0 && stream.pointee.duration != rw_nopts_value() {
            duration = Double(stream.pointee.duration) * timeBase.value
        } else if formatContext!.pointee.duration > 0 && formatContext!.pointee.duration != rw_nopts_value() {
            duration = Double(formatContext!.pointee.duration) / Double(AV_TIME_BASE)
        }
        var frameCount: Int? = stream.pointee.nb_frames > 0 ? Int(stream.pointee.nb_frames) : nil
        let demuxerName = String(cString: formatContext!.pointee.iformat.pointee.name)
        if frameCount == nil, demuxerName.hasSuffix("_pipe") || demuxerName == "image2" {
            frameCount = 1  // a still image is a one-frame video
        }
        var hasAudio = false
        let audioStream = av_find_best_stream(formatContext, AVMEDIA_TYPE_AUDIO, -1, best, nil, 0)
        if audioStream >= 0, let stream = formatContext!.pointee.streams[Int(audioStream)] {
            hasAudio = true
            audioIndex = audioStream
            audio = AudioStreamInfo(copying: stream.pointee.codecpar, timeBase: stream.pointee.time_base)
        }
        let parameters = stream.pointee.codecpar.pointee
        let pixelFormatName = av_get_pix_fmt_name(AVPixelFormat(parameters.format)).map { String(cString: $0) } ?? "unknown"
        let bitRate = formatContext!.pointee.bit_rate > 0 ? Int(formatContext!.pointee.bit_rate) : nil

        streamIndex = best
        streamStart = stream.pointee.start_time == rw_nopts_value() ? 0 : stream.pointee.start_time
        if let frameRate, timeBase.isValid {
            frameDuration = max(1, av_rescale_q(1, frameRate.inverse.av, timeBase.av))
        }
        info = MediaInfo(url: target, container: demuxerName, codec: String(cString: decoderCodec.pointee.name),
                         width: Int(parameters.width), height: Int(parameters.height), frameRate: frameRate,
                         timeBase: timeBase, duration: duration, frameCount: frameCount,
                         pixelFormat: pixelFormatName, bitRate: bitRate, hasAudio: hasAudio)
        guard info.width > 0, info.height > 0 else {
            throw VideoIOError(.invalidInput, operation: "open input", target: target, message: "video stream has no frame size")
        }
        if !options.acceptTruncated, let missing = truncation() {
            throw VideoIOError(.truncated, operation: "open input", target: target, message: missing)
        }
    }

    deinit { close() }

    /// Frees every FFmpeg context; later calls to `next()` return nil.
    func close() {
        finished = true
        if frame != nil { av_frame_free(&frame) }
        if packet != nil { av_packet_free(&packet) }
        if codec != nil { avcodec_free_context(&codec) }
        if format != nil { avformat_close_input(&format) }
    }

    /// For a local file whose container has a sample index: says how short the file is, if it ends
    /// before the last sample the index names.
    private func truncation() -> String? {
        guard let format, let pb = format.pointee.pb, pb.pointee.seekable != 0 else { return nil }
        let fileSize = avio_size(pb)
        guard fileSize > 0 else { return nil }
        var needed: Int64 = 0
        for i in 0..<Int(format.pointee.nb_streams) {
            let stream = format.pointee.streams[i]!
            let count = avformat_index_get_entries_count(stream)
            guard count > 0, let last = avformat_index_get_entry(stream, count - 1) else { continue }
            needed = max(needed, last.pointee.pos + Int64(last.pointee.size))
        }
        guard needed > fileSize else { return nil }
        return "file is truncated (its index needs \(needed) bytes, the file has \(fileSize))"
    }

    /// Decodes the next frame and converts it; nil at the end of the stream.
    /// With `InputOptions.convertOnDemand` the frame's pixels are converted when first read, not here.
    func next() throws(VideoIOError) -> VideoFrame? {
        guard try decodeNext() else { return nil }
        var frame: VideoFrame
        if options.convertOnDemand && pixels == .rgb24 {
            frame = try deferCurrent()
        } else {
            let decoded = try convertCurrent()
            frame = VideoFrame(index: decoded.index, pts: decoded.pts, timeBase: info.timeBase, sourceSize: decoded.sourceSize,
                               image: RGBImage(width: decoded.size.width, height: decoded.size.height, channels: 3, samples: decoded.bytes))
        }
        frame.audio = pendingAudio
        pendingAudio.removeAll(keepingCapacity: true)
        return frame
    }

    /// Decodes the next frame into tightly packed bytes of the decoder's pixel layout; nil at the end.
    func nextPixels() throws(VideoIOError) -> DecodedPixels? {
        guard try decodeNext() else { return nil }
        return try convertCurrent()
    }

    /// Decodes the next frame without converting it (for counting); false at the end.
    func skip() throws(VideoIOError) -> Bool {
        let decoded = try decodeNext()
        if decoded { av_frame_unref(frame) }
        return decoded
    }

    /// Runs the send/receive loop until a frame is in `frame`; false at the end of the stream.
    private func decodeNext() throws(VideoIOError) -> Bool {
        guard !finished, let codec, let frame, let packet, let format else { return false }
        while true {
            if interrupt.isAborted { throw VideoIOError(.timedOut, operation: "read", target: target, message: "cancelled") }
            let received = avcodec_receive_frame(codec, frame)
            if received >= 0 {
                if frame.pointee.decode_error_flags != 0 || (frame.pointee.flags & AV_FRAME_FLAG_CORRUPT) != 0 {
                    warn("frame \(nextIndex) was decoded from damaged data")
                }
                return true
            }
            if received == rw_averror_eof() { finished = true; return false }
            if received != rw_averror(EAGAIN) {
                warn("skipped an undecodable frame (\(ffmpegErrorString(received)))")
                continue
            }
            if sentFlush { finished = true; return false }

            interrupt.arm(options.readTimeout)
            let read = av_read_frame(format, packet)
            interrupt.arm(nil)
            if read == rw_averror_eof() {
                avcodec_send_packet(codec, nil)
                sentFlush = true
                continue
            }
            if read < 0 {
                if read == rw_averror_invaliddata() {
                    warn("skipped a corrupt packet")
                    continue
                }
                throw VideoIOError(ffmpeg: read, operation: "read", target: target)
            }
            defer { av_packet_unref(packet) }
            if packet.pointee.stream_index == audioIndex && audio != nil {
                let p = packet.pointee
                pendingAudio.append(AudioPacket(data: Array(UnsafeBufferPointer(start: p.data, count: Int(p.size))),
                                                pts: p.pts, dts: p.dts, duration: p.duration,
                                                isKey: (p.flags & AV_PKT_FLAG_KEY) != 0))
                continue
            }
            guard packet.pointee.stream_index == streamIndex else { continue }
            let sent = avcodec_send_packet(codec, packet)
            if sent < 0 && sent != rw_averror(EAGAIN) {
                warn("skipped a corrupt packet at \(String(format: "%.3f", Double(packet.pointee.pts) * info.timeBase.value)) s (\(ffmpegErrorString(sent)))")
            }
        }
    }

    private func warn(_ message: String) {
        corruptEvents += 1
        options.onWarning?("\(target): \(message)")
    }

    /// Timestamps from the stream's start, strictly increasing: missing ones are filled in from the frame rate,
    /// repeated ones moved one tick on.
    private func presentationTimestamp() -> Int64 {
        let raw = frame!.pointee.best_effort_timestamp
        // A container may hold any 64-bit timestamp: kept within 10^12 s of the start (in ticks of this stream's
        // time base), so the sums here and every later seconds-to-milliseconds conversion stay far from overflow.
        let ticks = info.timeBase.value > 0 ? 1e12 / info.timeBase.value : .infinity
        let limit = Int64(min(ticks, 9e17))
        func bounded(_ value: (partialValue: Int64, overflow: Bool), _ direction: Int64) -> Int64 {
            value.overflow ? direction.signum() * limit : min(max(value.partialValue, -limit), limit)
        }
        var pts: Int64
        if raw == rw_nopts_value() {
            pts = bounded((lastPTS ?? -frameDuration).addingReportingOverflow(frameDuration), 1)
        } else {
            pts = bounded(raw.subtractingReportingOverflow(streamStart), raw)
        }
        if let lastPTS, pts <= lastPTS { pts = lastPTS + 1 }
        lastPTS = pts
        return pts
    }

    /// Converts the picture in `frame` and numbers it.
    private func convertCurrent() throws(VideoIOError) -> DecodedPixels {
        guard let frame else { throw VideoIOError(.io, operation: "decode", target: target, message: "decoder closed") }
        defer { av_frame_unref(frame) }
        let sourceSize = FrameSize(width: Int(frame.pointee.width), height: Int(frame.pointee.height))
        let pts = presentationTimestamp()
        let bytes = try converter.convert(frame)
        let index = nextIndex
        nextIndex += 1
        return DecodedPixels(index: index, pts: pts, sourceSize: sourceSize, size: converter.outputSize(for: sourceSize),
                             bytes: bytes)
    }

    /// Numbers the picture in `frame` and keeps it unconverted (after checking swscale can convert it).
    private func deferCurrent() throws(VideoIOError) -> VideoFrame {
        guard let frame else { throw VideoIOError(.io, operation: "decode", target: target, message: "decoder closed") }
        defer { av_frame_unref(frame) }
        let sourceSize = FrameSize(width: Int(frame.pointee.width), height: Int(frame.pointee.height))
        let pts = presentationTimestamp()
        try converter.check(frame)
        let size = converter.outputSize(for: sourceSize)
        guard let picture = DeferredPicture(taking: frame, converter: converter, size: size) else {
            throw VideoIOError(.io, operation: "decode", target: target, message: "out of memory")
        }
        let index = nextIndex
        nextIndex += 1
        let target = self.target
        let onWarning = options.onWarning.map { warn in { @Sendable (message: String) in warn("\(target): \(message)") } }
        return VideoFrame(index: index, pts: pts, timeBase: info.timeBase, sourceSize: sourceSize,
                          pixels: FramePixels(deferred: picture, onFailure: onWarning))
    }
}
