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

    /// The mean of `map` (width x height) over each `cell` x `cell` block: the confidence grid `m_s`. Each block
    /// is summed down its columns first (row after row, every column of a band at once), then across them.
    public static func cellMeans(_ map: [Float], width: Int, height: Int, cell: Int) -> [Float] {
        precondition(map.count == width * height && width % cell == 0 && height % cell == 0)
        let gw = width / cell, gh = height / cell
        var grid = [Float](repeating: 0, count: gw * gh)
        var columns = [Float](repeating: 0, count: width)
        map.withUnsafeBufferPointer { m in
            for gy in 0..<gh {
                blockSums(m.baseAddress! + gy * cell * width, width: width, cell: cell, columns: &columns) { gx, sum in
                    grid[gy * gw + gx] = sum / Float(cell * cell)
                }
            }
        }
        return grid
    }

    /// The sums of the `cell` x `cell` blocks of one band of `cell` rows at `rows`: column sums over the rows in
    /// order, then each block's columns in order (the order `Resize.scoreBlocks` sums in).
    @inline(__always)
    static func blockSums(_ rows: UnsafePointer<Float>, width: Int, cell: Int, columns: inout [Float],
                          _ body: (_ block: Int, _ sum: Float) -> Void) {
        for x in 0..<width { columns[x] = 0 }
        for y in 0..<cell {
            let row = rows + y * width
            for x in 0..<width { columns[x] += row[x] }
        }
        for gx in 0..<(width / cell) {
            var sum: Float = 0
            for x in (gx * cell)..<((gx + 1) * cell) { sum += columns[x] }
            body(gx, sum)
        }
    }
}

/// Feature vectors for clustering: one per grid cell, L2-normalised.
public enum FeatureVectors {
    /// Rows `F[:, i] / max(||F[:, i]||, eps)` for a (C, h, w) feature tensor: h·w points of dimension C.
    public static func normalized(_ features: Tensor, epsilon: Float = 1e-12) -> PointSet {
        var rows: [Float] = []
        return normalized(features, epsilon: epsilon, reusing: &rows)
    }

    /// The same, written into `rows` (resized when the shape changed): a caller that keeps `rows` from frame to
    /// frame, and drops the point set before the next, writes every frame's points into the same memory instead
    /// of pages fresh from the system (at 1024x512 the points are 4 MB, a thousand page faults a frame).
    public static func normalized(_ features: Tensor, epsilon: Float = 1e-12, reusing rows: inout [Float]) -> PointSet {
        let c = features.channels, n = features.plane
        if rows.count != n * c { rows = [Float](repeating: 0, count: n * c) }
        rows.withUnsafeMutableBufferPointer { r in
            // Eight channels at a time: eight planes read in order, eight neighbouring values written per point
            // (one channel at a time writes a single float per row, a cache miss each).
            var ch = 0
            while ch < c {
                let block = min(8, c - ch)
                let planes = (0..<block).map { features.channelBuffer(ch + $0).baseAddress! }
                planes.withUnsafeBufferPointer { p in
                    for i in 0..<n {
                        let row = r.baseAddress! + i * c + ch
                        for t in 0..<block { row[t] = p[t][i] }
                    }
                }
                ch += block
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
        var columns = [Float](repeating: 0, count: w)
        for c in 0..<classes {
            let plane = logits.channelBuffer(c).baseAddress!
            for gy in 0..<gh {
                blockSums(plane + gy * cell * w, width: w, cell: cell, columns: &columns) { gx, sum in
                    if sum > best[gy * gw + gx] {
                        best[gy * gw + gx] = sum
                        result[gy * gw + gx] = UInt8(c)
                    }
                }
            }
        }
        return result
    }
}

/// What the monitor keeps of the decoder's scores: the max-logit grid, and when asked the class map and the
/// class of each grid cell.
public struct ScoreSummary: Sendable {
    /// `m_s`: the mean of the max-logit over each `cell` x `cell` block (row-major grid).
    public var cellConfidence: [Float]
    /// The argmax over every channel at each pixel, when asked for.
    public var classMap: [UInt8]?
    /// `Confidence.cellClasses` of the scores, when asked for.
    public var cellClasses: [UInt8]?
}

extension Confidence {
    /// `cellMeans(maxLogit(…))`, the class map (`Ops.argmax`) and `cellClasses` of `scores`. A coarse tensor and its
    /// resize go through `Resize.scoreBlocks`, a resized row at a time, so the full-size scores (42 MB a frame at
    /// 1024x512) never exist; both paths give the same values.
    public static func summary(_ scores: ClassScores, classes: Int, cell: Int, classMap wantsMap: Bool,
                               cellClasses wantsCellClasses: Bool) -> ScoreSummary {
        let w = scores.width, h = scores.height
        precondition(w % cell == 0 && h % cell == 0 && classes >= 1 && classes <= scores.channels)
        switch scores {
        case .resized(let coarse, _, _, let alignCorners):
            let blocks = Resize.scoreBlocks(of: coarse, width: w, height: h, alignCorners: alignCorners, classes: classes,
                                            cell: cell, classMap: wantsMap, blockClasses: wantsCellClasses)
            return ScoreSummary(cellConfidence: blocks.means, classMap: blocks.classMap, cellClasses: blocks.classes)
        case .tensor(let logits):
            return ScoreSummary(cellConfidence: cellMeans(maxLogit(logits, classes: classes), width: w, height: h, cell: cell),
                                classMap: wantsMap ? Ops.argmax(logits).map { UInt8(truncatingIfNeeded: $0) } : nil,
                                cellClasses: wantsCellClasses ? cellClasses(logits, classes: classes, cell: cell) : nil)
        }
    }
}
