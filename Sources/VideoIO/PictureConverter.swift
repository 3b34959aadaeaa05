import CFFmpeg
import Foundation
import Synchronization

/// Converts decoded pictures to packed pixels of one layout and size with swscale.
///
/// Keeps one cached scaler; a lock lets the decoding thread and the threads that read deferred frames
/// share it, one conversion at a time.
final class PictureConverter: @unchecked Sendable {
    let target: String
    let pixels: OutputPixels
    private let size: FrameSize?
    private let fullChromaInterpolation: Bool
    private let lock = NSLock()
    private var scaler: OpaquePointer?

    init(target: String, pixels: OutputPixels, options: InputOptions) {
        self.target = target
        self.pixels = pixels
        self.size = options.size
        self.fullChromaInterpolation = options.fullChromaInterpolation
    }

    deinit { if scaler != nil { sws_freeContext(scaler) } }

    /// The size a picture of `source` size comes out at.
    func outputSize(for source: FrameSize) -> FrameSize { size ?? source }

    /// Fails as `convert` would if swscale cannot convert this picture's format and size (nothing is converted).
    func check(_ frame: UnsafeMutablePointer<AVFrame>) throws(VideoIOError) {
        lock.lock()
        defer { lock.unlock() }
        _ = try cachedScaler(for: frame)
    }

    /// The picture's pixels, tightly packed, at the output size.
    func convert(_ frame: UnsafeMutablePointer<AVFrame>) throws(VideoIOError) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        let (scaler, sourceSize, outSize) = try prepare(frame)
        let rowBytes = outSize.width * pixels.channels * pixels.bytesPerSample
        // swscale's vector code stores whole vectors, past the end of a short last row (a 4x4 frame's 12-byte rows
        // get 16- and 32-byte stores): give it slack, then drop the slack (the array keeps its capacity, so
        // nothing moves and the stores stay inside our allocation).
        let slack = Self.swscaleSlack
        var bytes = [UInt8](repeating: 0, count: rowBytes * outSize.height + slack)
        let sourcePlanes = withUnsafePointer(to: &frame.pointee.data) {
            $0.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { Array(UnsafeBufferPointer(start: $0, count: 8)) }
        }
        let sourceStrides = withUnsafePointer(to: &frame.pointee.linesize) {
            $0.withMemoryRebound(to: Int32.self, capacity: 8) { Array(UnsafeBufferPointer(start: $0, count: 8)) }
        }
        let scaledRows = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var planes: [UnsafeMutablePointer<UInt8>?] = [buffer.baseAddress, nil, nil, nil]
            var strides: [Int32] = [Int32(rowBytes), 0, 0, 0]
            return sws_scale(scaler, sourcePlanes, sourceStrides, 0, Int32(sourceSize.height), &planes, &strides)
        }
        bytes.removeLast(slack)
        if scaledRows <= 0 {
            throw VideoIOError(.unsupported, operation: "convert frames of", target: target, message: "swscale failed")
        }
        return bytes
    }

    /// The cached scaler set up for this picture's format, range and colour space. Call with the lock held.
    private func prepare(_ frame: UnsafeMutablePointer<AVFrame>) throws(VideoIOError) -> (OpaquePointer, FrameSize, FrameSize) {
        let (scaler, sourceSize, outSize, fullRange) = try cachedScaler(for: frame)
        let colorspace: Int32 = switch frame.pointee.colorspace {
        case AVCOL_SPC_BT709: SWS_CS_ITU709
        case AVCOL_SPC_BT2020_NCL, AVCOL_SPC_BT2020_CL: SWS_CS_BT2020
        case AVCOL_SPC_SMPTE240M: SWS_CS_SMPTE240M
        case AVCOL_SPC_FCC: SWS_CS_FCC
        default: SWS_CS_DEFAULT
        }
        sws_setColorspaceDetails(scaler, sws_getCoefficients(colorspace), fullRange ? 1 : 0,
                                 sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16)
        return (scaler, sourceSize, outSize)
    }

    /// The cached scaler for this picture's format and size (its colour space not yet set), and whether the
    /// picture is full range. Call with the lock held.
    private func cachedScaler(for frame: UnsafeMutablePointer<AVFrame>) throws(VideoIOError) -> (OpaquePointer, FrameSize, FrameSize, Bool) {
        let sourceSize = FrameSize(width: Int(frame.pointee.width), height: Int(frame.pointee.height))
        let outSize = outputSize(for: sourceSize)
        var sourceFormat = AVPixelFormat(frame.pointee.format)
        var fullRange = frame.pointee.color_range == AVCOL_RANGE_JPEG
        switch sourceFormat {  // the deprecated "J" formats are the plain ones at full range
        case AV_PIX_FMT_YUVJ420P: sourceFormat = AV_PIX_FMT_YUV420P; fullRange = true
        case AV_PIX_FMT_YUVJ422P: sourceFormat = AV_PIX_FMT_YUV422P; fullRange = true
        case AV_PIX_FMT_YUVJ444P: sourceFormat = AV_PIX_FMT_YUV444P; fullRange = true
        case AV_PIX_FMT_YUVJ440P: sourceFormat = AV_PIX_FMT_YUV440P; fullRange = true
        default: break
        }
        scaler = sws_getCachedContext(scaler, Int32(sourceSize.width), Int32(sourceSize.height), sourceFormat,
                                      Int32(outSize.width), Int32(outSize.height), pixels.avFormat,
                                      fullChromaInterpolation ? SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT : SWS_BICUBIC,
                                      nil, nil, nil)
        guard let scaler else {
            let name = av_get_pix_fmt_name(sourceFormat).map { String(cString: $0) } ?? "unknown"
            throw VideoIOError(.unsupported, operation: "convert frames of", target: target,
                               message: "swscale cannot convert \(name) \(sourceSize) to \(outSize)")
        }
        return (scaler, sourceSize, outSize, fullRange)
    }

    /// Bytes past the end of a picture that swscale may read or write with whole-vector accesses.
    static let swscaleSlack = 256
}

/// A decoded picture kept as the decoder gave it (YUV, in FFmpeg's reference-counted buffers), converted
/// to RGB the first time its pixels are read. A live reader that replaces most frames before they are
/// taken so never pays for their conversion.
final class DeferredPicture: @unchecked Sendable {
    private var frame: UnsafeMutablePointer<AVFrame>?
    private let converter: PictureConverter
    let size: FrameSize

    /// Takes over `source`'s reference (leaving it empty); nil if out of memory.
    init?(taking source: UnsafeMutablePointer<AVFrame>, converter: PictureConverter, size: FrameSize) {
        guard let frame = av_frame_alloc() else { return nil }
        av_frame_move_ref(frame, source)
        self.frame = frame
        self.converter = converter
        self.size = size
    }

    deinit { av_frame_free(&frame) }

    /// The RGB image; a picture swscale cannot convert after all (it was checked when decoded) comes out
    /// black, with the reason in `failure`.
    func convert() -> (image: RGBImage, failure: VideoIOError?) {
        guard let frame else { return (RGBImage(width: size.width, height: size.height, channels: 3), nil) }
        do {
            let bytes = try converter.convert(frame)
            return (RGBImage(width: size.width, height: size.height, channels: 3, samples: bytes), nil)
        } catch {
            return (RGBImage(width: size.width, height: size.height, channels: 3), error)
        }
    }
}

/// A frame's pixels: an image, or a deferred picture that becomes one on first read (once, under a lock,
/// shared by every copy of the frame).
final class FramePixels: Sendable {
    private enum State: Sendable {
        case ready(RGBImage)
        case deferred(DeferredPicture, onFailure: (@Sendable (String) -> Void)?)
    }

    private let state: Mutex<State>

    init(_ image: RGBImage) { state = Mutex(.ready(image)) }

    init(deferred picture: DeferredPicture, onFailure: (@Sendable (String) -> Void)?) {
        state = Mutex(.deferred(picture, onFailure: onFailure))
    }

    var image: RGBImage {
        state.withLock { state in
            switch state {
            case .ready(let image):
                return image
            case .deferred(let picture, let onFailure):
                let (image, failure) = picture.convert()
                if let failure { onFailure?(String(describing: failure)) }
                state = .ready(image)
                return image
            }
        }
    }

    var isDeferred: Bool {
        state.withLock { if case .deferred = $0 { true } else { false } }
    }
}
