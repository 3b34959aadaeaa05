import CKernels
import COpenBLAS

/// A 2-D convolution with any stride, dilation, groups and (possibly asymmetric) kernel and padding,
/// with batch-norm folded into its weights and bias, and an optional per-channel PReLU after it.
public struct Conv2D: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: (h: Int, w: Int)
    public let stride: (h: Int, w: Int)
    public let padding: (h: Int, w: Int)
    public let dilation: (h: Int, w: Int)
    public let groups: Int
    /// [outChannels, inChannels/groups, kh, kw], row-major.
    public private(set) var weight: [Float]
    public private(set) var bias: [Float]
    /// Per-channel PReLU slopes applied after the convolution, or nil.
    public private(set) var prelu: [Float]?

    public init(inChannels: Int, outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1,
                weight: [Float], bias: [Float]? = nil) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "channels not divisible by groups")
        precondition(weight.count == outChannels * (inChannels / groups) * kernel.0 * kernel.1, "weight size mismatch")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.weight = weight
        self.bias = bias ?? [Float](repeating: 0, count: outChannels)
    }

    /// Folds `y = (x - mean) / sqrt(var + eps) * gamma + beta` into the weights and bias.
    public mutating func foldBatchNorm(_ bn: BatchNorm) {
        precondition(bn.channels == outChannels, "batch norm of \(bn.channels) channels after a conv of \(outChannels)")
        let perOut = weight.count / outChannels
        for o in 0..<outChannels {
            let s = bn.scale[o]
            for i in 0..<perOut { weight[o * perOut + i] *= s }
            bias[o] = bias[o] * s + bn.shift[o]
        }
    }

    /// Applies a per-channel PReLU to the output.
    public mutating func setPReLU(_ slopes: [Float]) {
        precondition(slopes.count == outChannels)
        prelu = slopes
    }

    public var isDepthwise: Bool { groups == inChannels && groups == outChannels }

    /// Output spatial size for an input of `h` x `w`.
    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        let oh = (h + 2 * padding.h - dilation.h * (kernel.h - 1) - 1) / stride.h + 1
        let ow = (w + 2 * padding.w - dilation.w * (kernel.w - 1) - 1) / stride.w + 1
        return (oh, ow)
    }

    /// Multiply-accumulates for an input of `h` x `w`.
    public func macs(_ h: Int, _ w: Int) -> Int {
        let (oh, ow) = outputSize(h, w)
        return oh * ow * outChannels * (inChannels / groups) * kernel.h * kernel.w
    }

    /// Convolves `x` into `out`, which must have shape [outChannels, oh, ow]; im2col columns live in `arena`.
    public func forward(_ x: Tensor, into out: Tensor, arena: Arena) {
        forward(x, into: out, arena: arena, residual: nil)
    }

    /// `forward(x, into: out, arena:)` for a 3x3 convolution over a bordered copy, returning the mean of each of `x`'s
    /// channels (eight running sums in double), summed while the copy is made: no second pass over `x`.
    public func forwardAndInputMeans(_ x: Tensor, into out: Tensor, arena: Arena) -> [Float] {
        precondition(usesPadded3x3 && x.channels == inChannels, "input means come with a bordered 3x3 convolution")
        let (oh, ow) = outputSize(x.height, x.width)
        precondition(out.shape == [outChannels, oh, ow], "conv output \(out.shape) should be \([outChannels, oh, ow])")
        OperationCounter.add(oh * ow * outChannels * (inChannels / groups) * kernel.h * kernel.w)
        var means = [Float](repeating: 0, count: x.channels)
        let padded = means.withUnsafeMutableBufferPointer { means in
            PaddedPlanes.copy(x, pad: padding.h, rowStride: paddedRowStride(x.width, outWidth: ow), arena: arena,
                              name: "conv.padded", means: means.baseAddress)
        }
        direct3x3(padded, out, residual: nil)
        return means
    }

    /// Convolves `x` into `out` and adds `residual` (same shape as `out`) before the PReLU, in the same pass as
    /// the bias: `out = prelu(conv(x) + bias + residual)`.
    public func forward(_ x: Tensor, into out: Tensor, arena: Arena, residual: Tensor?) {
        precondition(x.channels == inChannels, "conv expects \(inChannels) channels, got \(x.channels)")
        let (oh, ow) = outputSize(x.height, x.width)
        precondition(out.shape == [outChannels, oh, ow], "conv output \(out.shape) should be \([outChannels, oh, ow])")
        OperationCounter.add(oh * ow * outChannels * (inChannels / groups) * kernel.h * kernel.w)
        // Few outputs per group (depthwise, or the pyramid's 5-in/1-out groups): a direct loop does exactly the
        // multiply-adds, where im2col would copy every input pixel kh·kw times for a tiny GEMM.
        precondition(residual == nil || residual!.shape == out.shape, "residual \(residual!.shape) for output \(out.shape)")
        if let residual, !usesPadded3x3 && (isDepthwise || (outChannels / groups <= 4 && kernel.h * kernel.w > 1)) {
            // The direct loop finishes each value in registers: add the residual before the activation separately.
            var linear = self
            linear.prelu = nil
            linear.forward(x, into: out, arena: arena, residual: nil)
            Ops.add(out, residual, into: out)
            if let prelu { Ops.prelu(out, slopes: prelu) }
            return
        }
        if usesPadded3x3 {
            let padded = PaddedPlanes.copy(x, pad: padding.h, rowStride: paddedRowStride(x.width, outWidth: ow),
                                           arena: arena, name: "conv.padded")
            direct3x3(padded, out, residual: residual)
        } else if isPointwise {
            pointwise(x, out, residual: residual, slopes: prelu)
        } else if isDepthwise || (outChannels / groups <= 4 && kernel.h * kernel.w > 1) {
            direct(x, out)
        } else {
            gemmConv(x, out, arena: arena, residual: residual)
        }
    }

    /// A 3x3 kernel with square stride 1 or 2, dilation and padding: the direct kernel over a zero-bordered copy of
    /// the input (no im2col buffer nine times the input's size).
    public var usesPadded3x3: Bool {
        kernel == (3, 3) && stride.h == stride.w && (stride.h == 1 || stride.h == 2)
            && dilation.h == dilation.w && padding.h == padding.w
    }

    /// A 1x1 convolution with stride 1 and no padding: the pointwise kernel of `Kernels`, bias, residual and PReLU
    /// in the same pass.
    public var isPointwise: Bool { kernel == (1, 1) && stride == (1, 1) && padding == (0, 0) }

    /// `out = prelu(conv(x) + bias + residual)` through the pointwise kernel, split over blocks of pixels.
    private func pointwise(_ x: Tensor, _ out: Tensor, residual: Tensor?, slopes: [Float]?) {
        let pixels = out.plane
        weight.withUnsafeBufferPointer { weights in
        bias.withUnsafeBufferPointer { bias in
        withOptionalBuffer(slopes) { slopes in
            let isa = Kernels.argument
            let conv = rw_conv1x1(
                input: UnsafePointer(x.data), input_plane: x.plane, in_per_group: Int32(inChannels / groups),
                out_per_group: Int32(outChannels / groups), weight: weights.baseAddress, bias: bias.baseAddress,
                slopes: slopes, residual: residual.map { UnsafePointer($0.data) }, residual_plane: residual?.plane ?? 0,
                output: out.data, output_plane: out.plane, pixels: pixels)
            // Blocks of 64 pixels, at least 1,024 pixels a thread.
            let blocks = (pixels + 63) / 64
            ComputeThreads.forEach(blocks, minimumPerThread: 16) { range in
                withUnsafePointer(to: conv) {
                    rw_conv1x1_run(isa, $0, 0, Int32(groups), range.lowerBound * 64, min(pixels, range.upperBound * 64))
                }
            }
        }
        }
        }
    }

    /// The row length a `PaddedPlanes` input of width `w` needs for this convolution.
    func paddedRowStride(_ w: Int, outWidth: Int) -> Int {
        PaddedPlanes.rowStride(width: w, pad: padding.h, outWidth: outWidth, stride: stride.h, dilation: dilation.h,
                               padding: padding.h)
    }

    /// Resizes `x` bilinearly to `height` x `width` straight into this convolution's zero-bordered input, then
    /// convolves it: one pass over the resized map instead of a resize and a bordered copy (3x3 path only).
    public func forward(resizing x: Tensor, toHeight height: Int, width: Int, alignCorners: Bool, into out: Tensor,
                        arena: Arena, name: String) {
        let (_, ow) = outputSize(height, width)
        let padded = PaddedPlanes.bordered(channels: x.channels, height: height, width: width, pad: padding.h,
                                           rowStride: paddedRowStride(width, outWidth: ow), arena: arena, name: name)
        Resize.bilinear(x, into: padded, alignCorners: alignCorners)
        forward(padded: padded, into: out)
    }

    /// `Pooling.adaptiveAverage(conv(resize(x)), into: out)` with the resized and convolved maps made only `bandRows`
    /// rows of `out` at a time: a band's rows of the resize (and the row above and below it the taps reach) go into a
    /// small zero-bordered buffer, are convolved and pooled, and the buffer serves the next band. Value for value
    /// the same as `forward(resizing:…)` into a full map and pooling it (the same arithmetic on the same values),
    /// without the two full maps — at twice the input's size the pyramid's largest branch held 42 MB.
    /// For a stride-1 3x3 convolution that keeps the size (padding equal to dilation).
    public func forward(resizing x: Tensor, toHeight height: Int, width: Int, alignCorners: Bool, poolingInto out: Tensor,
                        bandRows: Int = 16, arena: Arena, name: String) {
        precondition(usesPadded3x3 && stride.h == 1 && padding.h == dilation.h && x.channels == inChannels)
        precondition(out.channels == outChannels && bandRows >= 1)
        let ys = Resize.Axis(from: x.height, to: height, alignCorners: alignCorners)
        let xs = Resize.Axis(from: x.width, to: width, alignCorners: alignCorners)
        let halo = padding.h, rowStride = paddedRowStride(width, outWidth: width)
        for first in Swift.stride(from: 0, to: out.height, by: bandRows) {
            let last = min(first + bandRows, out.height) - 1
            // The convolution's rows the band pools, and the resized rows their taps read.
            let c0 = Pooling.adaptiveBin(first, height, out.height).lowerBound
            let c1 = Pooling.adaptiveBin(last, height, out.height).upperBound
            let r0 = max(c0 - halo, 0), r1 = min(c1 + halo, height)
            let padded = PaddedPlanes.bordered(channels: inChannels, height: c1 - c0, width: width, pad: halo,
                                               rowStride: rowStride, arena: arena, name: name)
            // Rows above c0 and below c1 land in the border rows (zero where the map ends).
            Resize.bilinear(x, into: padded.origin(0) - (c0 - r0) * rowStride, ys: ys.slice(r0..<r1), xs: xs,
                            rowStride: rowStride, planeStride: padded.planeStride)
            let convolved = arena.tensor(name + ".band", [outChannels, c1 - c0, width])
            forward(padded: padded, into: convolved)
            Pooling.adaptiveAverage(convolved, firstRow: c0, of: height, into: out, rows: first..<(last + 1))
        }
    }

    /// Convolves `x` with its channels reordered (input channel `c` is `x`'s channel `channelOrder[c]`) and each
    /// passed through `value * scale + shift` and a PReLU of `slopes` (indexed by `x`'s channel) on the way into
    /// the zero-bordered input: a batch norm, activation and shuffle before a 3x3 convolution for free.
    public func forward(_ x: Tensor, channelOrder: [Int], scale: [Float], shift: [Float], slopes: [Float]?,
                        into out: Tensor, arena: Arena, name: String) {
        let (_, ow) = outputSize(x.height, x.width)
        let padded = PaddedPlanes.copy(x, pad: padding.h, rowStride: paddedRowStride(x.width, outWidth: ow), arena: arena,
                                       name: name, sourceChannel: channelOrder,
                                       transform: PaddedPlanes.Transform(scale: scale, shift: shift, slopes: slopes))
        forward(padded: padded, into: out)
    }

    /// Convolves an input already copied with a border of at least `padding` zeros (see `usesPadded3x3`), adding
    /// `residual` (shaped as `out`) before the PReLU.
    func forward(padded: PaddedPlanes, into out: Tensor, residual: Tensor? = nil) {
        precondition(usesPadded3x3 && padded.channels == inChannels && padded.pad >= padding.h)
        let (oh, ow) = outputSize(padded.height, padded.width)
        precondition(out.shape == [outChannels, oh, ow], "conv output \(out.shape) should be \([outChannels, oh, ow])")
        precondition(residual == nil || residual!.shape == out.shape)
        precondition(padded.rowStride - (padded.pad - padding.h) >= paddedRowStride(padded.width, outWidth: ow))
        OperationCounter.add(oh * ow * outChannels * (inChannels / groups) * 9)
        direct3x3(padded, out, residual: residual)
    }

    /// Several 3x3 convolutions of one input, as ESP blocks' dilated branches are: the input is copied once, with a
    /// border wide enough for the largest dilation, and each convolution reads its own taps from it. With
    /// `cumulativeFrom: k`, output i (for i > k) gets output i - 1 added before its activation — the hierarchical
    /// sums of the branches, in the convolution's pass.
    public static func forward(_ convs: [Conv2D], sharing x: Tensor, into outputs: [Tensor], cumulativeFrom: Int? = nil,
                               arena: Arena, name: String) {
        precondition(convs.count == outputs.count && !convs.isEmpty)
        for conv in convs { precondition(conv.usesPadded3x3 && conv.inChannels == x.channels, "shared-input convolutions must be 3x3") }
        let pad = convs.map(\.padding.h).max()!
        let rowStride = convs.map { conv in
            (pad - conv.padding.h) + conv.paddedRowStride(x.width, outWidth: conv.outputSize(x.height, x.width).1)
        }.max()!
        let padded = PaddedPlanes.copy(x, pad: pad, rowStride: rowStride, arena: arena, name: name)
        for (i, conv) in convs.enumerated() {
            let previous = cumulativeFrom.flatMap { i > $0 ? outputs[i - 1] : nil }
            conv.forward(padded: padded, into: outputs[i], residual: previous)
        }
    }

    /// The 3x3 kernel for this CPU (see `Kernels`), split over groups, or over rows when there is one group.
    private func direct3x3(_ padded: PaddedPlanes, _ out: Tensor, residual: Tensor? = nil) {
        let oh = out.height, ow = out.width
        weight.withUnsafeBufferPointer { weights in
        bias.withUnsafeBufferPointer { bias in
        withOptionalBuffer(prelu) { slopes in
            let isa = Kernels.argument
            let conv = rw_conv3x3(
                input: UnsafePointer(padded.origin(0)), plane_stride: padded.planeStride, row_stride: padded.rowStride,
                in_per_group: Int32(inChannels / groups), out_per_group: Int32(outChannels / groups),
                stride: Int32(stride.h), dilation: Int32(dilation.h), padding: Int32(padding.h),
                weight: weights.baseAddress, bias: bias.baseAddress, slopes: slopes,
                residual: residual.map { UnsafePointer($0.data) }, residual_plane: residual?.plane ?? 0,
                output: out.data, output_plane: out.plane, out_height: Int32(oh), out_width: Int32(ow))
            if groups > 1 {
                ComputeThreads.forEach(groups, minimumPerThread: 1) { range in
                    withUnsafePointer(to: conv) { rw_conv3x3_run(isa, $0, Int32(range.lowerBound), Int32(range.upperBound), 0, Int32(oh)) }
                }
            } else {
                ComputeThreads.forEach(oh, minimumPerThread: 1) { range in
                    withUnsafePointer(to: conv) { rw_conv3x3_run(isa, $0, 0, 1, Int32(range.lowerBound), Int32(range.upperBound)) }
                }
            }
        }
        }
        }
    }

    /// For a 1x1 convolution over a few channels (the image reinforcement of a strided block): adds its output to
    /// `out` and applies the PReLU `slopes`, one pass over `out`: `out = prelu(out + conv(x))`.
    public func forward(_ x: Tensor, addingTo out: Tensor, prelu slopes: [Float]) {
        precondition(isPointwise && prelu == nil && inChannels <= 32, "adding a pointwise convolution of one input pass")
        precondition(x.channels == inChannels && out.shape == [outChannels, x.height, x.width] && slopes.count == outChannels)
        OperationCounter.add(x.plane * outChannels * inChannels / groups)
        // One input pass: each output value is read as the residual before it is written, so `out` can be both.
        pointwise(x, out, residual: out, slopes: slopes)
    }

    /// A convenience that allocates the output.
    public func callAsFunction(_ x: Tensor, arena: Arena = Arena()) -> Tensor {
        let (oh, ow) = outputSize(x.height, x.width)
        let out = Tensor(shape: [outChannels, oh, ow])
        forward(x, into: out, arena: arena)
        return out
    }

    private func gemmConv(_ x: Tensor, _ out: Tensor, arena: Arena, residual: Tensor?) {
        let cinG = inChannels / groups
        let coutG = outChannels / groups
        let k = cinG * kernel.h * kernel.w
        let n = out.plane
        let pointwise = kernel == (1, 1) && stride == (1, 1) && padding == (0, 0)
        let columns: Tensor? = pointwise ? nil : arena.tensor("im2col", [k * n])
        weight.withUnsafeBufferPointer { w in
            for g in 0..<groups {
                let b: UnsafePointer<Float>
                if let columns {
                    im2col(x, firstChannel: g * cinG, channels: cinG, outH: out.height, outW: out.width, into: columns.data)
                    b = UnsafePointer(columns.data)
                } else {
                    b = UnsafePointer(x.channel(g * cinG))
                }
                Gemm.multiply(m: coutG, n: n, k: k, a: w.baseAddress! + g * coutG * k, lda: k, b: b, ldb: n,
                              c: out.channel(g * coutG), ldc: n)
            }
        }
        epilogue(out, residual: residual)
    }

    /// Unfolds `channels` input channels from `firstChannel` into a (channels*kh*kw) x (outH*outW) matrix.
    private func im2col(_ x: Tensor, firstChannel: Int, channels: Int, outH: Int, outW: Int, into col: UnsafeMutablePointer<Float>) {
        let h = x.height, w = x.width, n = outH * outW
        let kh = kernel.h, kw = kernel.w
        ComputeThreads.forEach(channels * kh * kw, minimumPerThread: 4) { rows in
            for row in rows {
                let c = row / (kh * kw)
                let ky = (row / kw) % kh
                let kx = row % kw
                let src = x.channel(firstChannel + c)
                let dst = col + row * n
                let offY = ky * dilation.h - padding.h
                let offX = kx * dilation.w - padding.w
                for oy in 0..<outH {
                    let iy = oy * stride.h + offY
                    let line = dst + oy * outW
                    guard iy >= 0 && iy < h else {
                        line.update(repeating: 0, count: outW)
                        continue
                    }
                    let srcRow = src + iy * w
                    if stride.w == 1 {
                        let lo = max(0, -offX), hi = min(outW, w - offX)
                        if lo > 0 { line.update(repeating: 0, count: min(lo, outW)) }
                        if hi > lo { (line + lo).update(from: srcRow + lo + offX, count: hi - lo) }
                        if hi < outW { (line + max(hi, 0)).update(repeating: 0, count: outW - max(hi, 0)) }
                    } else {
                        for ox in 0..<outW {
                            let ix = ox * stride.w + offX
                            line[ox] = (ix >= 0 && ix < w) ? srcRow[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// Convolution as loops over output rows, their group's input channels and the kernel taps, each tap a
    /// shifted, scaled source row added to the output row (vectorises along x). One output row takes all its
    /// taps while it sits in L1, then gets its bias and PReLU.
    private func direct(_ x: Tensor, _ out: Tensor) {
        let h = x.height, w = x.width, oh = out.height, ow = out.width
        let kh = kernel.h, kw = kernel.w
        let sy = stride.h, sx = stride.w
        let cinG = inChannels / groups, coutG = outChannels / groups
        // Output columns whose input column lies inside the image, per horizontal tap.
        let columns = (0..<kw).map { kx -> (offset: Int, lo: Int, hi: Int) in
            let offX = kx * dilation.w - padding.w
            return (offX, max(0, (-offX + sx - 1) / sx), min(ow, (w - offX + sx - 1) / sx))
        }
        weight.withUnsafeBufferPointer { weights in
        bias.withUnsafeBufferPointer { bias in
            ComputeThreads.forEach(outChannels, minimumPerThread: 2) { channelRange in
                for o in channelRange {
                    let dst = out.channel(o)
                    let slope = prelu?[o]
                    for oy in 0..<oh {
                        let dstRow = dst + oy * ow
                        dstRow.update(repeating: 0, count: ow)
                        for i in 0..<cinG {
                            let src = x.channel((o / coutG) * cinG + i)
                            let taps = weights.baseAddress! + (o * cinG + i) * kh * kw
                            for ky in 0..<kh {
                                let iy = oy * sy + ky * dilation.h - padding.h
                                guard iy >= 0 && iy < h else { continue }
                                for kx in 0..<kw {
                                    let (offX, lo, hi) = columns[kx]
                                    guard hi > lo else { continue }
                                    let wv = taps[ky * kw + kx]
                                    let srcRow = src + iy * w + offX
                                    if sx == 1 {
                                        for ox in lo..<hi { dstRow[ox] += wv * srcRow[ox] }
                                    } else {
                                        for ox in lo..<hi { dstRow[ox] += wv * srcRow[ox * sx] }
                                    }
                                }
                            }
                        }
                        if let slope {
                            biasPReLU(dstRow, ow, bias[o], slope)
                        } else {
                            let b = bias[o]
                            for ox in 0..<ow { dstRow[ox] += b }
                        }
                    }
                }
            }
        }
        }
    }

    /// Adds the bias (and the residual) and applies the PReLU, per output channel, in one pass.
    private func epilogue(_ out: Tensor, residual: Tensor?) {
        let n = out.plane
        bias.withUnsafeBufferPointer { bias in
            ComputeThreads.forEach(outChannels, minimumPerThread: 4) { range in
                for c in range {
                    let p = out.channel(c), b = bias[c]
                    switch (residual, prelu) {
                    case let (residual?, slopes?):
                        let r = residual.channel(c), a = slopes[c]
                        for i in 0..<n {
                            let v = p[i] + b + r[i]
                            p[i] = v > 0 ? v : v * a
                        }
                    case let (residual?, nil):
                        let r = residual.channel(c)
                        for i in 0..<n { p[i] = p[i] + b + r[i] }
                    case let (nil, slopes?):
                        biasPReLU(p, n, b, slopes[c])
                    case (nil, nil):
                        for i in 0..<n { p[i] += b }
                    }
                }
            }
        }
    }

}

@inline(__always)
func biasPReLU(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ bias: Float, _ slope: Float) {
    for i in 0..<n {
        let v = p[i] + bias
        p[i] = v > 0 ? v : v * slope
    }
}

/// Inference batch-norm as a per-channel affine map: `y = x * scale + shift`.
public struct BatchNorm: Sendable {
    public let scale: [Float]
    public let shift: [Float]
    public var channels: Int { scale.count }

    public init(gamma: [Float], beta: [Float], mean: [Float], variance: [Float], eps: Float) {
        precondition(gamma.count == beta.count && beta.count == mean.count && mean.count == variance.count)
        var scale = [Float](repeating: 0, count: gamma.count)
        var shift = scale
        for c in 0..<gamma.count {
            // In double, as the fold is done once and error here would reach every pixel.
            let s = Double(gamma[c]) / (Double(variance[c]) + Double(eps)).squareRoot()
            scale[c] = Float(s)
            shift[c] = Float(Double(beta[c]) - Double(mean[c]) * s)
        }
        self.scale = scale
        self.shift = shift
    }
}
