import CFFmpeg

/// An exact ratio, as FFmpeg keeps frame rates and time bases.
public struct Rational: Hashable, Sendable, CustomStringConvertible {
    public var numerator: Int32
    public var denominator: Int32

    public init(_ numerator: Int32, _ denominator: Int32) {
        self.numerator = numerator
        self.denominator = denominator
    }

    init(_ r: AVRational) { self.init(r.num, r.den) }
    var av: AVRational { AVRational(num: numerator, den: denominator) }

    /// The value as a double; 0 when the denominator is 0.
    public var value: Double { denominator == 0 ? 0 : Double(numerator) / Double(denominator) }
    public var isValid: Bool { numerator > 0 && denominator > 0 }
    public var inverse: Rational { Rational(denominator, numerator) }
    public var description: String { "\(numerator)/\(denominator)" }
}

/// A frame size in pixels.
public struct FrameSize: Hashable, Sendable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// Parses `WxH`, as command lines write it.
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0, w <= 16384, h <= 16384 else { return nil }
        self.init(width: w, height: h)
    }

    public var description: String { "\(width)x\(height)" }
}

/// What a source is: the facts `roadwatch probe` reports.
public struct MediaInfo: Sendable, Equatable {
    /// The path or URL opened.
    public var url: String
    /// Container (demuxer) short name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    public var container: String
    /// Video codec short name, e.g. `h264`.
    public var codec: String
    public var width: Int
    public var height: Int
    /// Average frame rate when the container knows it, else the stream's base rate.
    public var frameRate: Rational?
    /// The video stream's time base: the unit of frame timestamps.
    public var timeBase: Rational
    /// Seconds, when known.
    public var duration: Double?
    /// Video frames, when the container says.
    public var frameCount: Int?
    /// Source pixel format, e.g. `yuv420p`.
    public var pixelFormat: String
    public var bitRate: Int?
    public var hasAudio: Bool

    public var fps: Double? { frameRate.map(\.value) }
}

/// One decoded frame, converted to RGB.
public struct VideoFrame: Sendable {
    /// 0-based position in decode output order (presentation order).
    public var index: Int
    /// Presentation timestamp in `timeBase` units, counted from the stream's start.
    public var pts: Int64
    public var timeBase: Rational
    /// Size of the frame as the source had it, before any resize.
    public var sourceSize: FrameSize
    /// The pixels, at the requested size (converted on first read when the source defers conversion).
    public var image: RGBImage {
        get { pixels.image }
        set { pixels = FramePixels(newValue) }
    }
    private var pixels: FramePixels
    /// Coded audio packets the demuxer met since the previous video frame (in the audio stream's time base),
    /// for copying the soundtrack into an output unchanged.
    public var audio: [AudioPacket] = []
    /// When the decoder handed the frame over: the start of its capture-to-output latency.
    public var decodedAt: ContinuousClock.Instant
    /// Set on the first frame after a break in the source (a reconnect): the seconds without frames.
    public var gapBefore: Double?
    /// Frames a live reader skipped so far, up to this one, to keep up with the source.
    public var droppedBefore = 0

    /// Presentation time in seconds from the stream's start.
    public var time: Double { Double(pts) * timeBase.value }

    public init(index: Int, pts: Int64, timeBase: Rational, sourceSize: FrameSize, image: RGBImage) {
        self.index = index
        self.pts = pts
        self.timeBase = timeBase
        self.sourceSize = sourceSize
        self.pixels = FramePixels(image)
        decodedAt = .now
    }

    init(index: Int, pts: Int64, timeBase: Rational, sourceSize: FrameSize, pixels: FramePixels) {
        self.index = index
        self.pts = pts
        self.timeBase = timeBase
        self.sourceSize = sourceSize
        self.pixels = pixels
        decodedAt = .now
    }

    /// True while the pixels are still the decoder's, not yet converted to RGB.
    public var isConversionPending: Bool { pixels.isDeferred }
}

/// How to open a source: format, device options, timeouts and output size.
public struct InputOptions: Sendable {
    /// Force a demuxer or device (`v4l2`, `mpegts`, ...); `nil` lets FFmpeg guess.
    public var format: String?
    /// Options handed to the demuxer or device (`video_size`, `framerate`, `rtsp_transport`, ...).
    public var formatOptions: [String: String]
    /// Longest wait for opening the source, in seconds; `nil` waits forever.
    public var openTimeout: Double?
    /// Longest wait for any single read once open, in seconds; `nil` waits forever.
    public var readTimeout: Double?
    /// Output size of decoded frames; `nil` keeps the source's size.
    public var size: FrameSize?
    /// Decoder threads; 0 lets FFmpeg choose.
    public var decoderThreads: Int
    /// Frame threading decodes several frames at once (throughput); slice threading only adds less latency.
    public var frameThreading: Bool
    /// Interpolate chroma to full resolution with accurate rounding when converting to RGB, as still-image
    /// libraries (libjpeg, PIL) do; off, frames match the `ffmpeg` program's default conversion. Slower.
    public var fullChromaInterpolation: Bool
    /// Open files whose index points past their end, decoding what is there, instead of refusing them.
    public var acceptTruncated: Bool
    /// Receives recoverable problems (a corrupt packet skipped, a timestamp repaired).
    public var onWarning: (@Sendable (String) -> Void)?
    /// Keep each decoded picture as the decoder gave it and convert it to RGB only when its `image` is
    /// first read, on the reading thread: a live reader that drops most frames skips their conversion.
    public var convertOnDemand = false

    public init(format: String? = nil, formatOptions: [String: String] = [:], openTimeout: Double? = 10,
                readTimeout: Double? = 10, size: FrameSize? = nil, decoderThreads: Int = 0,
                frameThreading: Bool = true, fullChromaInterpolation: Bool = false, acceptTruncated: Bool = false,
                onWarning: (@Sendable (String) -> Void)? = nil) {
        self.format = format
        self.formatOptions = formatOptions
        self.openTimeout = openTimeout
        self.readTimeout = readTimeout
        self.size = size
        self.decoderThreads = decoderThreads
        self.frameThreading = frameThreading
        self.fullChromaInterpolation = fullChromaInterpolation
        self.acceptTruncated = acceptTruncated
        self.onWarning = onWarning
    }
}
