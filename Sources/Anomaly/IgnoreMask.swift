import Foundation

/// Parts of the picture that are never the road ahead — the bonnet, a burned-in clock — as polygons in
/// normalized coordinates (0...1, x to the right, y down). Pixels inside never flag, and grid cells whose
/// centre is inside never take part in a decision, so nothing there starts an event.
public struct IgnoreMask: Sendable, Equatable {
    /// Each polygon's corners as (x, y) pairs in 0...1.
    public var polygons: [[(x: Double, y: Double)]]

    public static func == (a: IgnoreMask, b: IgnoreMask) -> Bool {
        a.polygons.count == b.polygons.count && zip(a.polygons, b.polygons).allSatisfy { p, q in
            p.count == q.count && zip(p, q).allSatisfy { $0.x == $1.x && $0.y == $1.y }
        }
    }

    public init(polygons: [[(x: Double, y: Double)]]) { self.polygons = polygons }

    /// Parses Frigate's form, one string per polygon: `"x1,y1,x2,y2,..."`, at least three corners, each
    /// coordinate in 0...1. The error says what is wrong with which polygon.
    public init(parsing texts: [String]) throws(IgnoreMaskError) {
        var polygons: [[(x: Double, y: Double)]] = []
        for (n, text) in texts.enumerated() {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            var values: [Double] = []
            for part in parts {
                guard let v = Double(part), v.isFinite else {
                    throw IgnoreMaskError("mask \(n + 1) ('\(text)'): '\(part)' is not a number")
                }
                guard (0...1).contains(v) else {
                    throw IgnoreMaskError("mask \(n + 1) ('\(text)'): \(part) is outside 0...1 (coordinates are fractions of the width and height)")
                }
                values.append(v)
            }
            guard values.count % 2 == 0 else {
                throw IgnoreMaskError("mask \(n + 1) ('\(text)'): an odd count of numbers; give x,y pairs")
            }
            guard values.count >= 6 else {
                throw IgnoreMaskError("mask \(n + 1) ('\(text)'): a polygon needs at least three x,y corners")
            }
            polygons.append(stride(from: 0, to: values.count, by: 2).map { (x: values[$0], y: values[$0 + 1]) })
        }
        self.polygons = polygons
    }

    public var isEmpty: Bool { polygons.isEmpty }

    /// Whether the normalized point lies inside any polygon (even-odd rule).
    public func contains(x: Double, y: Double) -> Bool {
        for polygon in polygons {
            var inside = false
            var j = polygon.count - 1
            for i in 0..<polygon.count {
                let a = polygon[i], b = polygon[j]
                if (a.y > y) != (b.y > y) && x < (b.x - a.x) * (y - a.y) / (b.y - a.y) + a.x { inside.toggle() }
                j = i
            }
            if inside { return true }
        }
        return false
    }

    /// The mask at `width` x `height`, row-major: true where a pixel's centre is inside.
    public func raster(width: Int, height: Int) -> [Bool] {
        var out = [Bool](repeating: false, count: width * height)
        guard !polygons.isEmpty else { return out }
        for y in 0..<height {
            let ny = (Double(y) + 0.5) / Double(height)
            for x in 0..<width where contains(x: (Double(x) + 0.5) / Double(width), y: ny) { out[y * width + x] = true }
        }
        return out
    }
}

public struct IgnoreMaskError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
