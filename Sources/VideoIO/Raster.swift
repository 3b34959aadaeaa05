/// A packed, interleaved image: `channels` samples per pixel, rows without padding.
///
/// RGB frames are `Raster<UInt8>` with 3 channels; masks are 1-channel `UInt8` or `UInt16` rasters.
public struct Raster<Sample: BitwiseCopyable & Sendable & Numeric>: Sendable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var samples: [Sample]

    public init(width: Int, height: Int, channels: Int, samples: [Sample]) {
        precondition(width > 0 && height > 0 && channels > 0, "empty raster")
        precondition(samples.count == width * height * channels, "sample count does not match the size")
        self.width = width
        self.height = height
        self.channels = channels
        self.samples = samples
    }

    /// A raster filled with `value`.
    public init(width: Int, height: Int, channels: Int, repeating value: Sample = 0) {
        self.init(width: width, height: height, channels: channels,
                  samples: [Sample](repeating: value, count: width * height * channels))
    }

    /// Samples per row.
    public var rowLength: Int { width * channels }

    /// The sample of channel `c` at column `x`, row `y`.
    @inlinable public subscript(x: Int, y: Int, c: Int) -> Sample {
        get { samples[(y * width + x) * channels + c] }
        set { samples[(y * width + x) * channels + c] = newValue }
    }
}

/// An 8-bit RGB image.
public typealias RGBImage = Raster<UInt8>
