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
        precondition(x.channels == inChannels, "conv expects \(inChannels) channels, got \(x.channels)")
        let (oh, ow) = outputSize(x.height, x.width)
        precondition(out.shape == [outChannels, oh, ow], "conv output \(out.shape) should be \([outChannels, oh, ow])")
        OperationCounter.add(oh * ow * outChannels * (inChannels / groups) * kernel.h * kernel.w)
        // Few outputs per group (depthwise, or the pyramid's 5-in/1-out groups): a direct loop does exactly the
        // multiply-adds, where im2col would copy every input pixel kh·kw times for a tiny GEMM.
        if isDepthwise || (outChannels / groups <= 4 && kernel.h * kernel.w > 1) {
            direct(x, out)
        } else {
            gemmConv(x, out, arena: arena)
        }
    }

    /// A convenience that allocates the output.
    public func callAsFunction(_ x: Tensor, arena: Arena = Arena()) -> Tensor {
        let (oh, ow) = outputSize(x.height, x.width)
        let out = Tensor(shape: [outChannels, oh, ow])
        forward(x, into: out, arena: arena)
        return out
    }

    private func gemmConv(_ x: Tensor, _ out: Tensor, arena: Arena) {
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
        epilogue(out)
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
                    if cinG == 1 && kh == 3 && kw == 3 && sy == sx && (sx == 1 || sx == 2) {
                        depthwise3x3(x.channel(o / coutG), h: h, w: w, taps: weights.baseAddress! + o * 9, bias: bias[o],
                                     slope: slope, into: dst, oh: oh, ow: ow, stride: sx)
                        continue
                    }
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

    /// One output channel of a 3x3 convolution with stride 1 or 2 over one input channel (depthwise, any dilation):
    /// all nine taps of eight output pixels summed in registers and stored once, bias and PReLU included.
    /// Border pixels, where a tap falls outside the image, take the checked path.
    private func depthwise3x3(_ src: UnsafePointer<Float>, h: Int, w: Int, taps: UnsafePointer<Float>, bias: Float,
                              slope: Float?, into dst: UnsafeMutablePointer<Float>, oh: Int, ow: Int, stride: Int) {
        let offX = (0..<3).map { $0 * dilation.w - padding.w }
        // Interior: output columns whose three taps all fall inside the row.
        let lo = max(0, (-offX[0] + stride - 1) / stride), hi = min(ow, (w - offX[2] + stride - 1) / stride)
        let negativeSlope = slope ?? 1
        @inline(__always) func finish(_ v: Float) -> Float { slope == nil || v > 0 ? v : v * negativeSlope }
        let d0 = offX[0], d1 = offX[1], d2 = offX[2]
        for oy in 0..<oh {
            let dstRow = dst + oy * ow
            // Rows above or below the image take weight 0 (and the image's first row as a stand-in).
            let y0 = oy * stride - padding.h, y1 = y0 + dilation.h, y2 = y1 + dilation.h
            let v0 = y0 >= 0 && y0 < h, v1 = y1 >= 0 && y1 < h, v2 = y2 >= 0 && y2 < h
            let a = v0 ? src + y0 * w : src, b = v1 ? src + y1 * w : src, c = v2 ? src + y2 * w : src
            let k0 = v0 ? taps[0] : 0, k1 = v0 ? taps[1] : 0, k2 = v0 ? taps[2] : 0
            let k3 = v1 ? taps[3] : 0, k4 = v1 ? taps[4] : 0, k5 = v1 ? taps[5] : 0
            let k6 = v2 ? taps[6] : 0, k7 = v2 ? taps[7] : 0, k8 = v2 ? taps[8] : 0
            // Border columns: each tap checked.
            @inline(__always) func tap(_ row: UnsafePointer<Float>, _ ix: Int, _ weight: Float) -> Float {
                ix >= 0 && ix < w ? weight * row[ix] : 0
            }
            func checked(_ column: Int) -> Float {
                let ox = column * stride
                var acc = bias
                acc += tap(a, ox + d0, k0) + tap(a, ox + d1, k1) + tap(a, ox + d2, k2)
                acc += tap(b, ox + d0, k3) + tap(b, ox + d1, k4) + tap(b, ox + d2, k5)
                acc += tap(c, ox + d0, k6) + tap(c, ox + d1, k7) + tap(c, ox + d2, k8)
                return finish(acc)
            }
            guard hi > lo else {
                for ox in 0..<ow { dstRow[ox] = checked(ox) }
                continue
            }
            for ox in 0..<lo { dstRow[ox] = checked(ox) }
            for ox in hi..<ow { dstRow[ox] = checked(ox) }
            var ox = lo
            @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
                stride == 1 ? UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
                    : UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self).evenHalf
            }
            let biasV = SIMD8<Float>(repeating: bias), slopeV = SIMD8<Float>(repeating: negativeSlope)
            // With stride 2 a vector reads one value past its last tap: keep that read inside the row.
            let vectorEnd = stride == 1 ? hi : hi - 1
            while ox + 8 <= vectorEnd {
                let i = ox * stride
                var acc = biasV
                acc += k0 * load(a + i + d0) + k1 * load(a + i + d1) + k2 * load(a + i + d2)
                acc += k3 * load(b + i + d0) + k4 * load(b + i + d1) + k5 * load(b + i + d2)
                acc += k6 * load(c + i + d0) + k7 * load(c + i + d1) + k8 * load(c + i + d2)
                if slope != nil { acc.replace(with: acc * slopeV, where: acc .< 0) }
                UnsafeMutableRawPointer(dstRow + ox).storeBytes(of: acc, as: SIMD8<Float>.self)
                ox += 8
            }
            while ox < hi {
                dstRow[ox] = checked(ox)
                ox += 1
            }
        }
    }

    /// Adds the bias and applies the PReLU, per output channel.
    private func epilogue(_ out: Tensor) {
        let n = out.plane
        bias.withUnsafeBufferPointer { bias in
            if let prelu {
                prelu.withUnsafeBufferPointer { slopes in
                    ComputeThreads.forEach(outChannels, minimumPerThread: 4) { range in
                        for c in range { biasPReLU(out.channel(c), n, bias[c], slopes[c]) }
                    }
                }
            } else {
                ComputeThreads.forEach(outChannels, minimumPerThread: 4) { range in
                    for c in range {
                        let b = bias[c]
                        let p = out.channel(c)
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
