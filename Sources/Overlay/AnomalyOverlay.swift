import VideoIO

/// What to draw over each frame.
public enum OverlayMode: String, Sendable, CaseIterable {
    case heat, segmentation, both, none
}

/// A region to outline: a box in image pixels, its score and track id.
public struct RegionMark: Sendable {
    public var box: [Int]
    public var score: Double
    public var trackID: Int
    public init(box: [Int], score: Double, trackID: Int) {
        self.box = box
        self.score = score
        self.trackID = trackID
    }
}

/// The annotations of one frame, at the frame's own size.
public struct FrameAnnotation: Sendable {
    /// Per-pixel anomaly heat in 0...1 (row-major, image size), or nil.
    public var heat: [Float]?
    /// Per-pixel anomaly mask (image size): its outline is drawn.
    public var mask: [Bool]?
    public var regions: [RegionMark]
    /// Per-pixel class indices and their palette, for the segmentation tint.
    public var classes: [UInt8]?
    public var palette: [[UInt8]]
    /// HUD lines, top left.
    public var hud: [String]
    /// Pixels an ignore mask excludes (image size): shaded faintly, so one sees what is not watched.
    public var ignored: [Bool]?

    public init(heat: [Float]? = nil, mask: [Bool]? = nil, regions: [RegionMark] = [], classes: [UInt8]? = nil,
                palette: [[UInt8]] = [], hud: [String] = []) {
        self.heat = heat
        self.mask = mask
        self.regions = regions
        self.classes = classes
        self.palette = palette
        self.hud = hud
    }
}

/// Draws anomaly heat, outlines, boxes, the optional segmentation tint and the HUD into an RGB frame.
public enum AnomalyOverlay {
    /// A warm ramp for the heat map: dark red through orange to yellow as heat rises.
    static func heatColour(_ t: Float) -> Colour {
        let r = UInt8(min(255, 160 + 95 * t * 2))
        let g = UInt8(max(0, min(255, 255 * (t - 0.3) / 0.7)))
        return Colour(r, g, 0)
    }

    public static func draw(_ annotation: FrameAnnotation, on image: RGBImage) -> RGBImage {
        var image = image
        if let classes = annotation.classes {
            SegmentationTint.blend(&image, classes: classes, palette: annotation.palette, alpha: 0.35)
        }
        var canvas = Canvas(image)
        let w = canvas.width, h = canvas.height
        if let ignored = annotation.ignored {
            precondition(ignored.count == w * h, "ignore mask does not match the frame")
            // A faint blue-grey veil with a hatch every eighth diagonal, readable on bright and dark scenes.
            for y in 0..<h {
                for x in 0..<w where ignored[y * w + x] {
                    canvas.blend(x, y, (x + y) % 8 == 0 ? Colour(200, 210, 230) : Colour(40, 50, 80), alpha: 0.3)
                }
            }
        }
        if let heat = annotation.heat {
            precondition(heat.count == w * h, "heat map does not match the frame")
            for y in 0..<h {
                for x in 0..<w {
                    let t = heat[y * w + x]
                    if t > 0.02 { canvas.blend(x, y, heatColour(t), alpha: 0.55 * min(1, t)) }
                }
            }
        }
        if let mask = annotation.mask {
            precondition(mask.count == w * h, "mask does not match the frame")
            // Outline: mask pixels with a 4-neighbour outside the mask, thickened by one pixel.
            for y in 0..<h {
                for x in 0..<w where mask[y * w + x] {
                    let edge = x == 0 || y == 0 || x == w - 1 || y == h - 1
                        || !mask[y * w + x - 1] || !mask[y * w + x + 1] || !mask[(y - 1) * w + x] || !mask[(y + 1) * w + x]
                    if edge {
                        canvas.set(x, y, .alarm)
                        canvas.set(x + 1, y, .alarm)
                        canvas.set(x, y + 1, .alarm)
                    }
                }
            }
        }
        for region in annotation.regions where region.box.count == 4 {
            let (x, y, bw, bh) = (region.box[0], region.box[1], region.box[2], region.box[3])
            canvas.strokeRect(x: x, y: y, width: bw, height: bh, .amber, thickness: 2)
            let label = "#\(region.trackID) \(String(format: "%.1f", region.score))"
            let labelY = y >= 20 ? y - 18 : y + bh + 2
            canvas.fillRect(x: x, y: labelY, width: Canvas.textWidth(label) + 6, height: 18, .black, alpha: 0.6)
            canvas.text(label, x: x + 3, y: labelY + 2, .amber)
        }
        if !annotation.hud.isEmpty {
            let boxWidth = (annotation.hud.map { Canvas.textWidth($0) }.max() ?? 0) + 12
            canvas.fillRect(x: 6, y: 6, width: boxWidth, height: annotation.hud.count * 20 + 8, .black, alpha: 0.55)
            for (i, line) in annotation.hud.enumerated() {
                canvas.text(line, x: 12, y: 12 + i * 20)
            }
        }
        return canvas.image
    }
}
