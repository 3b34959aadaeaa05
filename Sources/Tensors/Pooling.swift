/// Pooling operations.
public enum Pooling {
    /// 3x3 average pooling, stride 2, padding 1, dividing by 9 at the borders too (padding counted).
    public static func average3x3Stride2(_ x: Tensor, into out: Tensor) {
        let h = x.height, w = x.width
        let oh = (h - 1) / 2 + 1, ow = (w - 1) / 2 + 1
        precondition(out.shape == [x.channels, oh, ow], "avg pool output \(out.shape)")
        ComputeThreads.forEach(x.channels, minimumPerThread: 2) { range in
            for c in range {
                let src = x.channel(c), dst = out.channel(c)
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var sum: Float = 0
                        for dy in -1...1 {
                            let iy = oy * 2 + dy
                            guard iy >= 0 && iy < h else { continue }
                            for dx in -1...1 {
                                let ix = ox * 2 + dx
                                if ix >= 0 && ix < w { sum += src[iy * w + ix] }
                            }
                        }
                        dst[oy * ow + ox] = sum / 9
                    }
                }
            }
        }
    }

    /// The input range that output cell `i` of `outSize` averages in adaptive pooling from `inSize`.
    @inlinable public static func adaptiveBin(_ i: Int, _ inSize: Int, _ outSize: Int) -> Range<Int> {
        (i * inSize) / outSize ..< ((i + 1) * inSize + outSize - 1) / outSize
    }

    /// Adaptive average pooling to `out`'s size; bins may overlap and vary in length.
    public static func adaptiveAverage(_ x: Tensor, into out: Tensor) {
        let h = x.height, w = x.width, oh = out.height, ow = out.width
        precondition(out.channels == x.channels)
        let rowBins = (0..<oh).map { adaptiveBin($0, h, oh) }
        let colBins = (0..<ow).map { adaptiveBin($0, w, ow) }
        ComputeThreads.forEach(x.channels, minimumPerThread: 2) { range in
            for c in range {
                let src = x.channel(c), dst = out.channel(c)
                for (oy, rows) in rowBins.enumerated() {
                    for (ox, cols) in colBins.enumerated() {
                        var sum: Float = 0
                        for iy in rows {
                            for ix in cols { sum += src[iy * w + ix] }
                        }
                        dst[oy * ow + ox] = sum / Float(rows.count * cols.count)
                    }
                }
            }
        }
    }
}

/// Bilinear resizing.
public enum Resize {
    /// Source index pair and weight of the second for each destination index along one axis.
    struct Axis {
        var lower: [Int]
        var upper: [Int]
        var fraction: [Float]

        init(from inSize: Int, to outSize: Int, alignCorners: Bool) {
            lower = []; upper = []; fraction = []
            for d in 0..<outSize {
                var s: Double
                if alignCorners {
                    s = outSize > 1 ? Double(d) * Double(inSize - 1) / Double(outSize - 1) : 0
                } else {
                    s = (Double(d) + 0.5) * Double(inSize) / Double(outSize) - 0.5
                    if s < 0 { s = 0 }
                }
                let l = min(Int(s), inSize - 1)
                let u = min(l + 1, inSize - 1)
                lower.append(l)
                upper.append(u)
                fraction.append(Float(s - Double(l)))
            }
        }
    }

    /// Bilinear resize of every channel to `out`'s size. `alignCorners` as PyTorch's flag: true maps the corner
    /// pixels onto each other; false uses half-pixel centres (OpenCV INTER_LINEAR), clamped at the borders.
    public static func bilinear(_ x: Tensor, into out: Tensor, alignCorners: Bool) {
        precondition(out.channels == x.channels)
        let ys = Axis(from: x.height, to: out.height, alignCorners: alignCorners)
        let xs = Axis(from: x.width, to: out.width, alignCorners: alignCorners)
        let w = x.width, ow = out.width
        ComputeThreads.forEach(x.channels, minimumPerThread: 1) { range in
            for c in range {
                let src = x.channel(c), dst = out.channel(c)
                for oy in 0..<out.height {
                    let r0 = src + ys.lower[oy] * w, r1 = src + ys.upper[oy] * w
                    let fy = ys.fraction[oy]
                    let line = dst + oy * ow
                    for ox in 0..<ow {
                        let l = xs.lower[ox], u = xs.upper[ox], fx = xs.fraction[ox]
                        let top = r0[l] + (r0[u] - r0[l]) * fx
                        let bottom = r1[l] + (r1[u] - r1[l]) * fx
                        line[ox] = top + (bottom - top) * fy
                    }
                }
            }
        }
    }
}
