import VideoIO

/// Colours an image by its per-pixel classes.
public enum SegmentationTint {
    /// Blends `palette[class]` over `image` with weight `alpha` (0 = image only, 1 = colours only).
    /// Classes without a palette entry leave the pixel as it was.
    public static func blend(_ image: inout RGBImage, classes: [UInt8], palette: [[UInt8]], alpha: Float = 0.5) {
        precondition(image.channels == 3 && classes.count == image.width * image.height, "class map does not match the image")
        let keep = 1 - alpha
        image.samples.withUnsafeMutableBufferPointer { pixels in
            for (i, c) in classes.enumerated() where Int(c) < palette.count {
                let colour = palette[Int(c)]
                for k in 0..<3 {
                    let v = Float(pixels[i * 3 + k]) * keep + Float(colour[k]) * alpha
                    pixels[i * 3 + k] = UInt8(min(255, max(0, v.rounded())))
                }
            }
        }
    }
}
