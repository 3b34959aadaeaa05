import CKernels

/// Pooling operations.
public enum Pooling {
    /// 3x3 average pooling, stride 2, padding 1, dividing by 9 at the borders too (padding counted), in the
    /// kernels: inside the map each output is the sum of its three rows' sums of three (each row's three
    /// computed once for the two output rows that share it).
    public static func average3x3Stride2(_ x: Tensor, into out: Tensor) {
        let h = x.height, w = x.width
        let oh = (h - 1) / 2 + 1, ow = (w - 1) / 2 + 1
        precondition(out.shape == [x.channels, oh, ow], "avg pool output \(out.shape)")
        let isa = Kernels.argument
        ComputeThreads.forEach(x.channels, minimumPerThread: 2) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 3 * ow)
            defer { scratch.deallocate() }
            rw_average3x3s2_run(isa, x.data, Int32(h), Int32(w), out.data, Int32(range.lowerBound), Int32(range.upperBound),
                                scratch)
        }
    }

    /// Adaptive pooling to exactly half the size: the mean of each 2x2 block, eight outputs at a time, summed in
    /// the same order as the general path.
    public static func halve(_ x: Tensor, into out: Tensor) {
        halve(x, firstRow: 0, into: out, rows: 0..<out.height)
    }

    /// Output rows `rows`, from an `x` that holds the input's rows from `firstRow` on.
    static func halve(_ x: Tensor, firstRow: Int, into out: Tensor, rows: Range<Int>) {
        let w = x.width, ow = out.width
        ComputeThreads.forEach(x.channels, minimumPerThread: 1) { range in
            for c in range {
                let src = x.channel(c), dst = out.channel(c)
                for oy in rows {
                    let r0 = src + (2 * oy - firstRow) * w, r1 = r0 + w, line = dst + oy * ow
                    var ox = 0
                    while ox + 8 <= ow {
                        let a = UnsafeRawPointer(r0 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                        let b = UnsafeRawPointer(r1 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                        let top = (a.evenHalf + a.oddHalf) / 2, bottom = (b.evenHalf + b.oddHalf) / 2
                        UnsafeMutableRawPointer(line + ox).storeBytes(of: (top + bottom) * 0.5, as: SIMD8<Float>.self)
                        ox += 8
                    }
                    while ox < ow {
                        let top = (r0[2 * ox] + r0[2 * ox + 1]) / 2, bottom = (r1[2 * ox] + r1[2 * ox + 1]) / 2
                        line[ox] = (top + bottom) * 0.5
                        ox += 1
                    }
                }
            }
        }
    }

    /// The input range that output cell `i` of `outSize` averages in adaptive pooling from `inSize`.
    @inlinable public static func adaptiveBin(_ i: Int, _ inSize: Int, _ outSize: Int) -> Range<Int> {
        (i * inSize) / outSize ..< ((i + 1) * inSize + outSize - 1) / outSize
    }

    /// Adaptive average pooling to `out`'s size; bins may overlap and vary in length. Done separably:
    /// rows are averaged along x first, then along y (the same sums, in another order).
    public static func adaptiveAverage(_ x: Tensor, into out: Tensor) {
        adaptiveAverage(x, firstRow: 0, of: x.height, into: out, rows: 0..<out.height)
    }

    /// Rows `outRows` of the adaptive average pooling of a map `fullHeight` rows tall, of which `x` holds the rows
    /// from `firstRow` on (all the rows those output rows average).
    static func adaptiveAverage(_ x: Tensor, firstRow: Int, of fullHeight: Int, into out: Tensor, rows outRows: Range<Int>) {
        let h = fullHeight, w = x.width, oh = out.height, ow = out.width
        precondition(out.channels == x.channels && firstRow >= 0 && firstRow + x.height <= h)
        let rowBins = outRows.map { adaptiveBin($0, h, oh) }
        precondition(rowBins.allSatisfy { $0.lowerBound >= firstRow && $0.upperBound <= firstRow + x.height })
        if h == 2 * oh && w == 2 * ow {
            halve(x, firstRow: firstRow, into: out, rows: outRows)
            return
        }
        let colBins = (0..<ow).map { adaptiveBin($0, w, ow) }
        // Bins of one or two columns (an enlarged map pooled back) take their first and last column: `a` or
        // `(a + b) * 0.5`, the values `(0 + a) / 1` and `(a + b) / 2` are, without a division per output.
        let narrow = colBins.allSatisfy { $0.count <= 2 }
        let firsts = colBins.map(\.lowerBound), lasts = colBins.map { $0.upperBound - 1 }
        ComputeThreads.forEach(x.channels, minimumPerThread: 1) { range in
            var horizontal = [Float](repeating: 0, count: x.height * ow)
            horizontal.withUnsafeMutableBufferPointer { hp in
            firsts.withUnsafeBufferPointer { firsts in
            lasts.withUnsafeBufferPointer { lasts in
                for c in range {
                    let src = x.channel(c), dst = out.channel(c)
                    for y in 0..<x.height {
                        let row = src + y * w, line = hp.baseAddress! + y * ow
                        if narrow {
                            for ox in 0..<ow {
                                let first = firsts[ox], last = lasts[ox]
                                let a = row[first], b = row[last]
                                line[ox] = first == last ? 0 + a : (a + b) * 0.5
                            }
                            continue
                        }
                        for (ox, cols) in colBins.enumerated() {
                            var sum: Float = 0
                            for ix in cols { sum += row[ix] }
                            line[ox] = sum / Float(cols.count)
                        }
                    }
                    for (oy, rows) in zip(outRows, rowBins) {
                        let line = dst + oy * ow
                        for ox in 0..<ow { line[ox] = 0 }
                        for iy in rows {
                            let source = hp.baseAddress! + (iy - firstRow) * ow
                            for ox in 0..<ow { line[ox] += source[ox] }
                        }
                        let scale = 1 / Float(rows.count)
                        for ox in 0..<ow { line[ox] *= scale }
                    }
                }
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

        /// The three arrays as pointers while `body` runs (for the kernels).
        func withPointers<R>(_ body: (_ lower: UnsafePointer<Int>, _ upper: UnsafePointer<Int>,
                                      _ fraction: UnsafePointer<Float>) -> R) -> R {
            lower.withUnsafeBufferPointer { lower in
                upper.withUnsafeBufferPointer { upper in
                    fraction.withUnsafeBufferPointer { body(lower.baseAddress!, upper.baseAddress!, $0.baseAddress!) }
                }
            }
        }

        /// The entries of `range` (destination indices `range`, renumbered from 0).
        func slice(_ range: Range<Int>) -> Axis {
            var picked = self
            picked.lower = Array(lower[range])
            picked.upper = Array(upper[range])
            picked.fraction = Array(fraction[range])
            return picked
        }

        /// Entries 0, stride, 2·stride, …
        func every(_ stride: Int) -> Axis {
            var picked = self
            let indices = Swift.stride(from: 0, to: lower.count, by: stride)
            picked.lower = indices.map { lower[$0] }
            picked.upper = indices.map { upper[$0] }
            picked.fraction = indices.map { fraction[$0] }
            return picked
        }
    }

    /// Bilinear resize of every channel to `out`'s size. `alignCorners` as PyTorch's flag: true maps the corner
    /// pixels onto each other; false uses half-pixel centres (OpenCV INTER_LINEAR), clamped at the borders.
    /// Each output row blends two source rows that were first interpolated along x (kept while consecutive
    /// output rows share them).
    public static func bilinear(_ x: Tensor, into out: Tensor, alignCorners: Bool) {
        precondition(out.channels == x.channels)
        bilinear(x, into: out.data, height: out.height, width: out.width, rowStride: out.width, planeStride: out.plane,
                 alignCorners: alignCorners)
    }

    /// The bilinear resize of a one-channel `x` to `width` x `height`, written into `out` (made that size when it is
    /// not): a caller that keeps `out` from frame to frame reuses its memory instead of taking fresh pages.
    public static func bilinear(_ x: Tensor, width: Int, height: Int, alignCorners: Bool, into out: inout [Float]) {
        precondition(x.channels == 1 && width >= 1 && height >= 1)
        if out.count != width * height { out = [Float](repeating: 0, count: width * height) }
        out.withUnsafeMutableBufferPointer { p in
            bilinear(x, into: p.baseAddress!, height: height, width: width, rowStride: width, planeStride: width * height,
                     alignCorners: alignCorners)
        }
    }

    /// Bilinear resize into the inside of zero-bordered planes, ready for a 3x3 convolution.
    static func bilinear(_ x: Tensor, into out: PaddedPlanes, alignCorners: Bool) {
        precondition(out.channels == x.channels)
        bilinear(x, into: out.origin(0), height: out.height, width: out.width, rowStride: out.rowStride,
                 planeStride: out.planeStride, alignCorners: alignCorners)
    }

    /// The bilinear resize of `x` to `width` x `height` read only at every `stride`-th row and column from 0: a
    /// (C, ⌈height/stride⌉, ⌈width/stride⌉) tensor equal, value for value, to those pixels of the full resize
    /// (the same arithmetic on the same source pixels), without making the full one.
    public static func bilinear(_ x: Tensor, width: Int, height: Int, stride: Int, alignCorners: Bool) -> Tensor {
        precondition(stride >= 1 && width >= 1 && height >= 1)
        let ys = Axis(from: x.height, to: height, alignCorners: alignCorners).every(stride)
        let xs = Axis(from: x.width, to: width, alignCorners: alignCorners).every(stride)
        let out = Tensor(uninitialized: [x.channels, ys.lower.count, xs.lower.count])
        bilinear(x, into: out.data, ys: ys, xs: xs, rowStride: out.width, planeStride: out.plane)
        return out
    }

    static func bilinear(_ x: Tensor, into base: UnsafeMutablePointer<Float>, height oh: Int, width ow: Int, rowStride: Int,
                         planeStride: Int, alignCorners: Bool) {
        bilinear(x, into: base, ys: Axis(from: x.height, to: oh, alignCorners: alignCorners),
                 xs: Axis(from: x.width, to: ow, alignCorners: alignCorners), rowStride: rowStride, planeStride: planeStride)
    }

    /// `affine(resize(x) + addend * factors)` per channel (then a PReLU of `slopes` if given), the resize's rows
    /// combined as they are made (the resized map is never written and read back): a decoder's upsampled map, the
    /// gated skip branch added, and the batch norm and PReLU after the sum. The same operations in the same order as
    /// `Ops.scaleChannels`, `Ops.add` and `Ops.affine` one after the other. `out` may be `addend` itself: each
    /// value's addend is read before that value is stored.
    public static func bilinear(_ x: Tensor, into out: Tensor, alignCorners: Bool, plus addend: Tensor, times factors: [Float],
                                scale: [Float], shift: [Float], prelu slopes: [Float]?) {
        precondition(out.channels == x.channels && addend.shape == out.shape && factors.count == out.channels)
        precondition(scale.count == out.channels && shift.count == out.channels && (slopes == nil || slopes!.count == out.channels))
        factors.withUnsafeBufferPointer { factors in
        scale.withUnsafeBufferPointer { scale in
        shift.withUnsafeBufferPointer { shift in
        withOptionalBuffer(slopes) { slopes in
            let epilogue = Epilogue(addend: UnsafePointer(addend.data), factors: factors.baseAddress!, scale: scale.baseAddress!,
                                    shift: shift.baseAddress!, slopes: slopes)
            bilinear(x, into: out.data, ys: Axis(from: x.height, to: out.height, alignCorners: alignCorners),
                     xs: Axis(from: x.width, to: out.width, alignCorners: alignCorners), rowStride: out.width,
                     planeStride: out.plane, epilogue: epilogue)
        }
        }
        }
        }
    }

    /// What the resize does to each value before writing it (see `rw_resize`).
    struct Epilogue {
        let addend: UnsafePointer<Float>
        let factors: UnsafePointer<Float>
        let scale: UnsafePointer<Float>
        let shift: UnsafePointer<Float>
        let slopes: UnsafePointer<Float>?
    }

    static func bilinear(_ x: Tensor, into base: UnsafeMutablePointer<Float>, ys: Axis, xs: Axis, rowStride: Int, planeStride: Int,
                         epilogue: Epilogue? = nil) {
        xs.withPointers { xLower, xUpper, xFraction in
        ys.withPointers { yLower, yUpper, yFraction in
            let isa = Kernels.argument
            let resize = rw_resize(
                source: UnsafePointer(x.data), source_width: Int32(x.width), source_height: Int32(x.height),
                width: Int32(xs.lower.count), height: Int32(ys.lower.count),
                x_lower: xLower, x_upper: xUpper, x_fraction: xFraction, y_lower: yLower, y_upper: yUpper, y_fraction: yFraction,
                output: base, row_stride: rowStride, plane_stride: planeStride, addend: epilogue?.addend,
                factors: epilogue?.factors, scale: epilogue?.scale, shift: epilogue?.shift, slopes: epilogue?.slopes)
            let scratchCount = withUnsafePointer(to: resize) { rw_resize_scratch($0) }
            ComputeThreads.forEach(x.channels, minimumPerThread: 1) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                defer { scratch.deallocate() }
                withUnsafePointer(to: resize) { rw_resize_run(isa, $0, Int32(range.lowerBound), Int32(range.upperBound), scratch) }
            }
        }
        }
    }
}

/// A network's class scores per pixel: the (C, H, W) tensor itself, or a coarser tensor and the bilinear resize
/// that makes it, so a consumer that only summarises the scores can read them a row at a time without
/// the full-size tensor ever existing.
public enum ClassScores: Sendable {
    case tensor(Tensor)
    case resized(Tensor, width: Int, height: Int, alignCorners: Bool)

    public var channels: Int {
        switch self {
        case .tensor(let t): t.channels
        case .resized(let t, _, _, _): t.channels
        }
    }

    public var width: Int {
        switch self {
        case .tensor(let t): t.width
        case .resized(_, let width, _, _): width
        }
    }

    public var height: Int {
        switch self {
        case .tensor(let t): t.height
        case .resized(_, _, let height, _): height
        }
    }

    /// The full (C, H, W) tensor.
    public func materialized() -> Tensor {
        switch self {
        case .tensor(let t):
            return t
        case .resized(let t, let width, let height, let alignCorners):
            let out = Tensor(uninitialized: [t.channels, height, width])
            Resize.bilinear(t, into: out, alignCorners: alignCorners)
            return out
        }
    }

}

/// What a consumer of class scores keeps per frame: block means of the max over the first classes, and on request
/// the per-pixel argmax over every channel and the class of each block.
public struct ScoreBlocks: Sendable {
    /// The mean of the max over the first `classes` channels in each `cell` x `cell` block (row-major grid).
    public var means: [Float]
    /// The argmax over every channel per pixel.
    public var classMap: [UInt8]?
    /// Per block, the first of the `classes` channels with the greatest sum over the block.
    public var classes: [UInt8]?
}

extension Resize {
    /// `ScoreBlocks` of the bilinear resize of `x` to `width` x `height`, computed a resized row at a time (the
    /// resize is never held, not even a band of it) with the same arithmetic in the same order as resizing in
    /// full and summarising that, so every value is the one the full path gives. Grid rows are split over the
    /// compute threads.
    public static func scoreBlocks(of x: Tensor, width: Int, height: Int, alignCorners: Bool, classes: Int, cell: Int,
                                   classMap wantsMap: Bool, blockClasses wantsClasses: Bool) -> ScoreBlocks {
        precondition(width % cell == 0 && height % cell == 0 && classes >= 1 && classes <= x.channels)
        let ys = Axis(from: x.height, to: height, alignCorners: alignCorners)
        let xs = Axis(from: x.width, to: width, alignCorners: alignCorners)
        let gw = width / cell, gh = height / cell
        var means = [Float](repeating: 0, count: gw * gh)
        var map = [UInt8](repeating: 0, count: wantsMap ? width * height : 0)
        var blocks = [UInt8](repeating: 0, count: wantsClasses ? gw * gh : 0)
        xs.withPointers { xLower, xUpper, xFraction in
        ys.withPointers { yLower, yUpper, yFraction in
        means.withUnsafeMutableBufferPointer { means in
        map.withUnsafeMutableBufferPointer { map in
        blocks.withUnsafeMutableBufferPointer { blocks in
            let isa = Kernels.argument
            let summary = rw_score_summary(
                source: UnsafePointer(x.data), channels: Int32(x.channels), classes: Int32(classes),
                source_width: Int32(x.width), source_height: Int32(x.height), width: Int32(width), cell: Int32(cell),
                x_lower: xLower, x_upper: xUpper, x_fraction: xFraction, y_lower: yLower, y_upper: yUpper, y_fraction: yFraction)
            let scratchCount = withUnsafePointer(to: summary) { rw_score_summary_scratch($0) }
            ComputeThreads.forEach(gh, minimumPerThread: 1) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                defer { scratch.deallocate() }
                withUnsafePointer(to: summary) {
                    rw_score_summary_run(isa, $0, Int32(range.lowerBound * cell), Int32(range.upperBound * cell), scratch,
                                         means.baseAddress! + range.lowerBound * gw,
                                         wantsMap ? map.baseAddress! + range.lowerBound * cell * width : nil,
                                         wantsClasses ? blocks.baseAddress! + range.lowerBound * gw : nil)
                }
            }
        }
        }
        }
        }
        }
        return ScoreBlocks(means: means, classMap: wantsMap ? map : nil, classes: wantsClasses ? blocks : nil)
    }
}
