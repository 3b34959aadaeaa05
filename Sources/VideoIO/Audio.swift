import CFFmpeg

/// The input's audio stream as it is coded, for copying into an output unchanged.
public final class AudioStreamInfo: @unchecked Sendable {
    /// A private copy of the stream's codec parameters; freed with this object.
    let parameters: UnsafeMutablePointer<AVCodecParameters>
    public let timeBase: Rational
    public let codec: String

    init?(copying source: UnsafePointer<AVCodecParameters>, timeBase: AVRational) {
        guard let copy = avcodec_parameters_alloc() else { return nil }
        guard avcodec_parameters_copy(copy, source) >= 0 else {
            var doomed: UnsafeMutablePointer<AVCodecParameters>? = copy
            avcodec_parameters_free(&doomed)
            return nil
        }
        parameters = copy
        self.timeBase = Rational(timeBase)
        codec = avcodec_get_name(source.pointee.codec_id).map { String(cString: $0) } ?? "unknown"
    }

    deinit {
        var doomed: UnsafeMutablePointer<AVCodecParameters>? = parameters
        avcodec_parameters_free(&doomed)
    }
}

/// One coded audio packet, copied out of the demuxer; travels with the video frame read after it.
public struct AudioPacket: Sendable {
    public var data: [UInt8]
    public var pts: Int64
    public var dts: Int64
    public var duration: Int64
    public var isKey: Bool
}
