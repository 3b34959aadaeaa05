import VideoIO

/// An RGB colour.
public struct Colour: Sendable, Equatable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
    public static let white = Colour(255, 255, 255)
    public static let black = Colour(0, 0, 0)
    public static let alarm = Colour(255, 40, 40)
    public static let amber = Colour(255, 200, 0)
}

/// Drawing primitives on an RGB image, clipped to its bounds.
public struct Canvas {
    public var image: RGBImage

    public init(_ image: RGBImage) {
        precondition(image.channels == 3)
        self.image = image
    }

    public var width: Int { image.width }
    public var height: Int { image.height }

    /// Blends `colour` into pixel (x, y) with weight `alpha` in 0...1.
    @inline(__always)
    public mutating func blend(_ x: Int, _ y: Int, _ colour: Colour, alpha: Float) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        let keep = 1 - alpha
        image.samples[i] = UInt8(Float(image.samples[i]) * keep + Float(colour.r) * alpha + 0.5)
        image.samples[i + 1] = UInt8(Float(image.samples[i + 1]) * keep + Float(colour.g) * alpha + 0.5)
        image.samples[i + 2] = UInt8(Float(image.samples[i + 2]) * keep + Float(colour.b) * alpha + 0.5)
    }

    public mutating func set(_ x: Int, _ y: Int, _ colour: Colour) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        image.samples[i] = colour.r
        image.samples[i + 1] = colour.g
        image.samples[i + 2] = colour.b
    }

    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, _ colour: Colour, alpha: Float = 1) {
        let x0 = max(0, x), x1 = min(width, x + w), y0 = max(0, y), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }  // entirely outside the image
        for yy in y0..<y1 {
            for xx in x0..<x1 { blend(xx, yy, colour, alpha: alpha) }
        }
    }

    /// A rectangle outline `thickness` pixels wide, inside the given box.
    public mutating func strokeRect(x: Int, y: Int, width w: Int, height h: Int, _ colour: Colour, thickness: Int = 2) {
        fillRect(x: x, y: y, width: w, height: thickness, colour)
        fillRect(x: x, y: y + h - thickness, width: w, height: thickness, colour)
        fillRect(x: x, y: y, width: thickness, height: h, colour)
        fillRect(x: x + w - thickness, y: y, width: thickness, height: h, colour)
    }

    /// Text in the built-in 5x7 font, each font pixel drawn as `scale` x `scale`. Returns the width drawn.
    @discardableResult
    public mutating func text(_ string: String, x: Int, y: Int, scale: Int = 2, _ colour: Colour = .white) -> Int {
        var cursor = x
        for character in string {
            let rows = BitmapFont.rows(character)
            for (r, bits) in rows.enumerated() {
                for c in 0..<BitmapFont.width where bits & (0x10 >> UInt8(c)) != 0 {
                    fillRect(x: cursor + c * scale, y: y + r * scale, width: scale, height: scale, colour)
                }
            }
            cursor += (BitmapFont.width + 1) * scale
        }
        return cursor - x
    }

    /// Width in pixels of `string` drawn at `scale`.
    public static func textWidth(_ string: String, scale: Int = 2) -> Int { string.count * (BitmapFont.width + 1) * scale }
}
