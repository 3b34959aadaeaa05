import CFFmpeg
import Foundation

/// Still images read and written through FFmpeg's codecs: JPEG or PNG in, PNG or JPEG out.
public enum StillImage {
    /// Reads an image as 8-bit RGB.
    public static func readRGB(_ path: String) throws(VideoIOError) -> Raster<UInt8> {
        let decoded = try readFirstFrame(path, pixels: .rgb24)
        return Raster(width: decoded.size.width, height: decoded.size.height, channels: 3, samples: decoded.bytes)
    }

    /// Reads an image as 8-bit gray (colour images are converted to luma).
    public static func readGray8(_ path: String) throws(VideoIOError) -> Raster<UInt8> {
        let decoded = try readFirstFrame(path, pixels: .gray8)
        return Raster(width: decoded.size.width, height: decoded.size.height, channels: 1, samples: decoded.bytes)
    }

    /// Reads an image as 16-bit gray (8-bit images are scaled to the 16-bit range).
    public static func readGray16(_ path: String) throws(VideoIOError) -> Raster<UInt16> {
        let decoded = try readFirstFrame(path, pixels: .gray16)
        let samples = decoded.bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        return Raster(width: decoded.size.width, height: decoded.size.height, channels: 1, samples: samples)
    }

    /// Writes 8-bit RGB (3 channels) or gray (1 channel) as PNG, atomically.
    public static func writePNG(_ image: Raster<UInt8>, to path: String) throws(VideoIOError) {
        let format: AVPixelFormat
        switch image.channels {
        case 3: format = AV_PIX_FMT_RGB24
        case 1: format = AV_PIX_FMT_GRAY8
        default:
            throw VideoIOError(.usage, operation: "write image", target: path, message: "PNG takes 1 or 3 channels of 8 bits, got \(image.channels)")
        }
        let bytes = image.samples.withUnsafeBytes { Array($0) }
        try encode(bytes, width: image.width, height: image.height, rowBytes: image.rowLength, format: format,
                   codecID: AV_CODEC_ID_PNG, to: path)
    }

    /// JPEG bytes of 8-bit RGB (libavcodec's mjpeg encoder, full-range 4:2:0); `quality` 2 (best) to 31.
    public static func jpeg(_ image: Raster<UInt8>, quality: Int = 4, name: String = "snapshot") throws(VideoIOError) -> Data {
        guard image.channels == 3, image.width >= 1, image.height >= 1 else {
            throw VideoIOError(.usage, operation: "encode image", target: name, message: "JPEG takes 3 channels of 8 bits and at least 1x1, got \(image.channels) channels at \(image.width)x\(image.height)")
        }
        let bytes = image.samples.withUnsafeBytes { Array($0) }
        return try encoded(bytes, width: image.width, height: image.height, rowBytes: image.rowLength,
                           format: AV_PIX_FMT_RGB24, codecID: AV_CODEC_ID_MJPEG, quality: min(31, max(2, quality)), name: name)
    }

    /// Writes 8-bit RGB as JPEG, atomically.
    public static func writeJPEG(_ image: Raster<UInt8>, to path: String, quality: Int = 4) throws(VideoIOError) {
        try writeAtomically(try jpeg(image, quality: quality, name: path), to: path)
    }

    /// Writes 16-bit gray (1 channel) as PNG, atomically.
    public static func writePNG(_ image: Raster<UInt16>, to path: String) throws(VideoIOError) {
        guard image.channels == 1 else {
            throw VideoIOError(.usage, operation: "write image", target: path, message: "16-bit PNG takes 1 channel, got \(image.channels)")
        }
        let bigEndian = image.samples.map(\.bigEndian)
        let bytes = bigEndian.withUnsafeBytes { Array($0) }
        try encode(bytes, width: image.width, height: image.height, rowBytes: image.width * 2, format: AV_PIX_FMT_GRAY16BE,
                   codecID: AV_CODEC_ID_PNG, to: path)
    }

    static func readFirstFrame(_ path: String, pixels: OutputPixels) throws(VideoIOError) -> DecodedPixels {
        let decoder = try FrameDecoder(target: path, options: InputOptions(openTimeout: 30, readTimeout: 30, decoderThreads: 1,
                                                                                fullChromaInterpolation: true), pixels: pixels)
        defer { decoder.close() }
        guard let decoded = try decoder.nextPixels() else {
            throw VideoIOError(.invalidInput, operation: "read image", target: path, message: "no picture could be decoded")
        }
        return decoded
    }

    private static func encode(_ bytes: [UInt8], width: Int, height: Int, rowBytes: Int, format: AVPixelFormat,
                               codecID: AVCodecID, to path: String) throws(VideoIOError) {
        try writeAtomically(try encoded(bytes, width: width, height: height, rowBytes: rowBytes, format: format,
                                        codecID: codecID, quality: nil, name: path), to: path)
    }

    /// One picture through an image encoder. PNG takes `format` as it is; MJPEG takes full-range 4:2:0, so
    /// the pixels go through swscale first. `quality` is the encoder's fixed quantiser (MJPEG).
    private static func encoded(_ bytes: [UInt8], width: Int, height: Int, rowBytes: Int, format: AVPixelFormat,
                                codecID: AVCodecID, quality: Int?, name path: String) throws(VideoIOError) -> Data {
        FFmpegRuntime.ensureReady()
        func fail(_ message: String) -> VideoIOError {
            VideoIOError(.encoder, operation: "write image", target: path, message: message)
        }
        guard let codec = avcodec_find_encoder(codecID) else {
            throw fail("this FFmpeg has no \(String(cString: avcodec_get_name(codecID))) encoder")
        }
        let encodeFormat = codecID == AV_CODEC_ID_MJPEG ? AV_PIX_FMT_YUVJ420P : format
        var context = avcodec_alloc_context3(codec)
        var frame = av_frame_alloc()
        var packet = av_packet_alloc()
        var scaler: OpaquePointer?
        defer {
            avcodec_free_context(&context)
            av_frame_free(&frame)
            av_packet_free(&packet)
            if scaler != nil { sws_freeContext(scaler) }
        }
        guard let context, let frame, let packet else { throw fail("out of memory") }
        context.pointee.width = Int32(width)
        context.pointee.height = Int32(height)
        context.pointee.pix_fmt = encodeFormat
        context.pointee.time_base = AVRational(num: 1, den: 1)
        if let quality {
            context.pointee.flags |= 1 << 1  // AV_CODEC_FLAG_QSCALE (a shifted macro Swift does not import)
            context.pointee.global_quality = Int32(quality) * FF_QP2LAMBDA
            context.pointee.color_range = AVCOL_RANGE_JPEG
        }
        try check(avcodec_open2(context, codec, nil), "write image", path)
        frame.pointee.width = Int32(width)
        frame.pointee.height = Int32(height)
        frame.pointee.format = encodeFormat.rawValue
        if let quality { frame.pointee.quality = Int32(quality) * FF_QP2LAMBDA }
        try check(av_frame_get_buffer(frame, 0), "write image", path)
        if encodeFormat == format {
            let stride = Int(frame.pointee.linesize.0)
            bytes.withUnsafeBufferPointer { source in
                for row in 0..<height {
                    (frame.pointee.data.0! + row * stride).update(from: source.baseAddress! + row * rowBytes, count: rowBytes)
                }
            }
        } else {
            scaler = sws_getContext(Int32(width), Int32(height), format, Int32(width), Int32(height), encodeFormat,
                                    SWS_BILINEAR, nil, nil, nil)
            guard scaler != nil else { throw fail("cannot convert the pixels for the encoder") }
            let converted = bytes.withUnsafeBufferPointer { source -> Int32 in
                var planes: [UnsafePointer<UInt8>?] = [source.baseAddress, nil, nil, nil]
                var strides: [Int32] = [Int32(rowBytes), 0, 0, 0]
                return withUnsafeMutablePointer(to: &frame.pointee.data) { data in
                    withUnsafeMutablePointer(to: &frame.pointee.linesize) { lines in
                        data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { dst in
                            lines.withMemoryRebound(to: Int32.self, capacity: 8) { dstStrides in
                                sws_scale(scaler, &planes, &strides, 0, Int32(height), dst, dstStrides)
                            }
                        }
                    }
                }
            }
            guard converted == Int32(height) else { throw fail("cannot convert the pixels for the encoder") }
        }
        try check(avcodec_send_frame(context, frame), "encode image", path)
        try check(avcodec_send_frame(context, nil), "encode image", path)
        try check(avcodec_receive_packet(context, packet), "encode image", path)
        return Data(bytes: packet.pointee.data, count: Int(packet.pointee.size))
    }

    /// Writes `data` to a hidden `.NAME.partial` beside `path`, then renames it into place: a reader (or a
    /// kill) never sees half a file under the real name.
    static func writeAtomically(_ data: Data, to path: String) throws(VideoIOError) {
        let url = URL(fileURLWithPath: path)
        let partial = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".partial").path
        func fail(_ number: Int32) -> VideoIOError {
            unlink(partial)
            return VideoIOError(.io, operation: "write image", target: path, message: describeErrno(number), code: -number)
        }
        let descriptor = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw fail(errno) }
        var failure = writeAll(descriptor, data)
        if close(descriptor) != 0 && failure == nil { failure = errno }
        if let failure { throw fail(failure) }
        if rename(partial, path) != 0 { throw fail(errno) }
    }
}
