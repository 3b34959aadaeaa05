import Tensors

/// The decoder's confidence: the raw max-logit over the in-distribution classes, per pixel and per
/// feature-grid cell.
public enum Confidence {
    /// `m(p)`: the maximum of the first `classes` channels of `logits` at each pixel (H x W, row-major).
    public static func maxLogit(_ logits: Tensor, classes: Int) -> [Float] {
        let out = Tensor(shape: [1, logits.height, logits.width])
        Ops.channelMax(logits, classes: classes, into: out)
        return out.array
    }

    /// The mean of `map` (width x height) over each `cell` x `cell` block: the confidence grid `m_s`.
    public static func cellMeans(_ map: [Float], width: Int, height: Int, cell: Int) -> [Float] {
        precondition(map.count == width * height && width % cell == 0 && height % cell == 0)
        let gw = width / cell, gh = height / cell
        var grid = [Float](repeating: 0, count: gw * gh)
        map.withUnsafeBufferPointer { m in
            for gy in 0..<gh {
                for gx in 0..<gw {
                    var sum: Float = 0
                    for y in (gy * cell)..<((gy + 1) * cell) {
                        let row = m.baseAddress! + y * width + gx * cell
                        for x in 0..<cell { sum += row[x] }
                    }
                    grid[gy * gw + gx] = sum / Float(cell * cell)
                }
            }
        }
        return grid
    }
}

/// Feature vectors for clustering: one per grid cell, L2-normalised.
public enum FeatureVectors {
    /// Rows `F[:, i] / max(||F[:, i]||, eps)` for a (C, h, w) feature tensor: h·w points of dimension C.
    public static func normalized(_ features: Tensor, epsilon: Float = 1e-12) -> PointSet {
        let c = features.channels, n = features.plane
        var rows = [Float](repeating: 0, count: n * c)
        rows.withUnsafeMutableBufferPointer { r in
            for ch in 0..<c {
                let plane = features.channelBuffer(ch)
                for i in 0..<n { r[i * c + ch] = plane[i] }
            }
            for i in 0..<n {
                let row = r.baseAddress! + i * c
                var sum: Float = 0
                for t in 0..<c { sum += row[t] * row[t] }
                let scale = 1 / max(sum.squareRoot(), epsilon)
                for t in 0..<c { row[t] *= scale }
            }
        }
        return PointSet(values: rows, count: n, dimension: c)
    }
}

extension Confidence {
    /// The class of each `cell` x `cell` block: the argmax over the first `classes` channels of the block's mean
    /// logits (row-major grid).
    public static func cellClasses(_ logits: Tensor, classes: Int, cell: Int) -> [UInt8] {
        let w = logits.width, h = logits.height
        precondition(w % cell == 0 && h % cell == 0 && classes <= logits.channels)
        let gw = w / cell, gh = h / cell
        var best = [Float](repeating: -.infinity, count: gw * gh)
        var result = [UInt8](repeating: 0, count: gw * gh)
        var sums = [Float](repeating: 0, count: gw)
        for c in 0..<classes {
            let plane = logits.channelBuffer(c)
            for gy in 0..<gh {
                for i in 0..<gw { sums[i] = 0 }
                for y in (gy * cell)..<((gy + 1) * cell) {
                    let row = y * w
                    for gx in 0..<gw {
                        var s: Float = 0
                        let start = row + gx * cell
                        for x in start..<(start + cell) { s += plane[x] }
                        sums[gx] += s
                    }
                }
                for gx in 0..<gw where sums[gx] > best[gy * gw + gx] {
                    best[gy * gw + gx] = sums[gx]
                    result[gy * gw + gx] = UInt8(c)
                }
            }
        }
        return result
    }
}
