import Foundation
import Testing
import VideoIO

/// `Raster.downscaled` (libswscale's area filter) against the exact area mean: each output pixel the mean of the
/// source area it covers, partial pixels weighted by their covered fraction.
@Suite("Images scaled down for snapshots, clips and previews")
struct DownscaleTests {
    /// The exact area mean of channel `c` over the source rectangle output pixel (ox, oy) covers.
    static func areaMean(_ image: Raster<UInt8>, ow: Int, oh: Int, ox: Int, oy: Int, c: Int) -> Double {
        let sx = Double(image.width) / Double(ow), sy = Double(image.height) / Double(oh)
        let x0 = Double(ox) * sx, x1 = x0 + sx, y0 = Double(oy) * sy, y1 = y0 + sy
        var sum = 0.0, area = 0.0
        for y in Int(y0.rounded(.down))..<min(image.height, Int(y1.rounded(.up))) {
            let wy = min(y1, Double(y + 1)) - max(y0, Double(y))
            for x in Int(x0.rounded(.down))..<min(image.width, Int(x1.rounded(.up))) {
                let w = (min(x1, Double(x + 1)) - max(x0, Double(x))) * wy
                guard w > 0 else { continue }
                sum += w * Double(image[x, y, c])
                area += w
            }
        }
        return sum / area
    }

    static func pattern(width: Int, height: Int, channels: Int) -> Raster<UInt8> {
        var image = Raster<UInt8>(width: width, height: height, channels: channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    // A smooth part (gradients) and a sharp one (8x8 blocks of 40 and 200) side by side.
                    let v = x < width / 2 ? (x * 255 / width + y * 2 + c * 30) % 256 : ((x / 8 + y / 8) % 2 == 0 ? 40 : 200)
                    image.samples[(y * width + x) * channels + c] = UInt8(v)
                }
            }
        }
        return image
    }

    @Test("960x540 RGB to 640 wide: 640x360, every pixel within 2 of the exact area mean (away from the split)")
    func rgb() {
        let image = Self.pattern(width: 960, height: 540, channels: 3)
        let small = image.downscaled(maxWidth: 640)
        #expect(small.width == 640 && small.height == 360 && small.channels == 3)
        var worst = 0.0
        for oy in 0..<360 {
            for ox in 0..<640 where abs(ox - 320) > 2 {
                for c in 0..<3 {
                    let expected = Self.areaMean(image, ow: 640, oh: 360, ox: ox, oy: oy, c: c)
                    worst = max(worst, abs(Double(small[ox, oy, c]) - expected))
                }
            }
        }
        #expect(worst <= 2, "largest difference from the exact area mean: \(worst)")
    }

    @Test("gray, an uneven ratio; sides even; a flat image stays flat", arguments: [1])
    func otherLayouts(_ channels: Int) {
        let image = Self.pattern(width: 701, height: 333, channels: channels)
        let small = image.downscaled(maxWidth: 250)
        #expect(small.width == 250 && small.height == 118 && small.channels == channels)
        var worst = 0.0
        for oy in 1..<(small.height - 1) {
            for ox in 1..<(small.width - 1) where abs(ox - 125) > 2 {
                for c in 0..<channels {
                    let expected = Self.areaMean(image, ow: small.width, oh: small.height, ox: ox, oy: oy, c: c)
                    worst = max(worst, abs(Double(small[ox, oy, c]) - expected))
                }
            }
        }
        #expect(worst <= 3, "largest difference from the exact area mean: \(worst)")
        let flat = Raster<UInt8>(width: 701, height: 333, channels: channels, repeating: 77).downscaled(maxWidth: 250)
        #expect(flat.samples.allSatisfy { $0 == 77 })
    }

    @Test("narrow enough already: returned as it is, or cropped to even sides")
    func crop() {
        let even = Self.pattern(width: 320, height: 180, channels: 3)
        #expect(even.downscaled(maxWidth: 640).samples == even.samples)
        let odd = Self.pattern(width: 321, height: 181, channels: 3)
        let cropped = odd.downscaled(maxWidth: 640)
        #expect(cropped.width == 320 && cropped.height == 180)
        for y in [0, 90, 179] {
            for x in [0, 160, 319] { #expect(cropped[x, y, 1] == odd[x, y, 1]) }
        }
    }
}
