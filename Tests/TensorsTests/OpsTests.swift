import Testing
@testable import Tensors

/// Each operation against a plain loop written from its definition, on sizes that do not divide evenly.
@Suite("Tensor operations against naive loops")
struct OpsTests {
    struct Generator {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 500
        }
        mutating func values(_ n: Int) -> [Float] { (0..<n).map { _ in next() } }
    }

    /// Convolution straight from its definition, with zero padding.
    func naiveConv(_ x: Tensor, _ c: Conv2D) -> Tensor {
        let (oh, ow) = c.outputSize(x.height, x.width)
        let out = Tensor(shape: [c.outChannels, oh, ow])
        let cinG = c.inChannels / c.groups, coutG = c.outChannels / c.groups
        for o in 0..<c.outChannels {
            let g = o / coutG
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum = Double(c.bias[o])
                    for i in 0..<cinG {
                        for ky in 0..<c.kernel.h {
                            for kx in 0..<c.kernel.w {
                                let iy = oy * c.stride.h - c.padding.h + ky * c.dilation.h
                                let ix = ox * c.stride.w - c.padding.w + kx * c.dilation.w
                                guard iy >= 0, iy < x.height, ix >= 0, ix < x.width else { continue }
                                let w = c.weight[((o * cinG + i) * c.kernel.h + ky) * c.kernel.w + kx]
                                sum += Double(w) * Double(x.channel(g * cinG + i)[iy * x.width + ix])
                            }
                        }
                    }
                    var v = Float(sum)
                    if let slopes = c.prelu, v < 0 { v *= slopes[o] }
                    out.channel(o)[oy * ow + ox] = v
                }
            }
        }
        return out
    }

    func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
        precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
        var worst: Float = 0
        for i in 0..<a.count { worst = max(worst, abs(a.data[i] - b.data[i])) }
        return worst
    }

    struct ConvCase: Sendable, CustomTestStringConvertible {
        var cin, cout, kh, kw, sh, sw, ph, pw, dh, dw, groups, h, w: Int
        var prelu = false
        var testDescription: String { "\(cin)->\(cout) k\(kh)x\(kw) s\(sh)x\(sw) p\(ph)x\(pw) d\(dh)x\(dw) g\(groups) on \(h)x\(w)" }
    }

    static let convCases: [ConvCase] = [
        ConvCase(cin: 3, cout: 8, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1, h: 11, w: 13, prelu: true),
        ConvCase(cin: 6, cout: 4, kh: 3, kw: 3, sh: 1, sw: 1, ph: 2, pw: 2, dh: 2, dw: 2, groups: 1, h: 9, w: 7),
        ConvCase(cin: 8, cout: 12, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 4, h: 5, w: 6),
        ConvCase(cin: 8, cout: 6, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 2, h: 7, w: 5),
        ConvCase(cin: 5, cout: 5, kh: 3, kw: 3, sh: 2, sw: 2, ph: 3, pw: 3, dh: 3, dw: 3, groups: 5, h: 10, w: 9),
        ConvCase(cin: 4, cout: 4, kh: 3, kw: 3, sh: 1, sw: 1, ph: 4, pw: 4, dh: 4, dw: 4, groups: 4, h: 6, w: 11, prelu: true),
        ConvCase(cin: 4, cout: 3, kh: 1, kw: 3, sh: 1, sw: 2, ph: 0, pw: 1, dh: 1, dw: 1, groups: 1, h: 5, w: 8),
        ConvCase(cin: 2, cout: 3, kh: 3, kw: 1, sh: 2, sw: 1, ph: 1, pw: 0, dh: 2, dw: 1, groups: 1, h: 9, w: 4),
        // Rows long enough for full eight-wide vectors plus a partial one (the padded 3x3 path).
        ConvCase(cin: 10, cout: 2, kh: 3, kw: 3, sh: 2, sw: 2, ph: 2, pw: 2, dh: 2, dw: 2, groups: 2, h: 13, w: 45, prelu: true),
        ConvCase(cin: 6, cout: 6, kh: 3, kw: 3, sh: 1, sw: 1, ph: 3, pw: 3, dh: 3, dw: 3, groups: 6, h: 7, w: 29),
    ]

    @Test("convolution: stride, dilation, groups, depthwise, asymmetric kernels and padding", arguments: convCases)
    func convolution(_ k: ConvCase) {
        var random = Generator(state: UInt64(k.cin * 31 + k.h))
        var conv = Conv2D(inChannels: k.cin, outChannels: k.cout, kernel: (k.kh, k.kw), stride: (k.sh, k.sw),
                          padding: (k.ph, k.pw), dilation: (k.dh, k.dw), groups: k.groups,
                          weight: random.values(k.cout * (k.cin / k.groups) * k.kh * k.kw), bias: random.values(k.cout))
        if k.prelu { conv.setPReLU(random.values(k.cout).map { abs($0) / 4 }) }
        let x = Tensor(shape: [k.cin, k.h, k.w], values: random.values(k.cin * k.h * k.w))
        #expect(maxDifference(conv(x), naiveConv(x, conv)) < 1e-4)
    }

    @Test("a residual added before the PReLU, on the GEMM and the direct paths", arguments: [(8, 12, 1, 4), (6, 6, 3, 6)])
    func residual(_ k: (cin: Int, cout: Int, kernel: Int, groups: Int)) {
        var random = Generator(state: UInt64(k.cin * 13 + k.kernel))
        var conv = Conv2D(inChannels: k.cin, outChannels: k.cout, kernel: (k.kernel, k.kernel), padding: (k.kernel / 2, k.kernel / 2),
                          groups: k.groups, weight: random.values(k.cout * (k.cin / k.groups) * k.kernel * k.kernel),
                          bias: random.values(k.cout))
        let slopes = random.values(k.cout).map { abs($0) / 4 }
        let x = Tensor(shape: [k.cin, 5, 19], values: random.values(k.cin * 95))
        let skip = Tensor(shape: [k.cout, 5, 19], values: random.values(k.cout * 95))
        let expected = naiveConv(x, conv)  // linear: the PReLU comes after the residual
        for c in 0..<k.cout {
            for i in 0..<95 {
                let v = expected.channel(c)[i] + skip.channel(c)[i]
                expected.channel(c)[i] = v > 0 ? v : v * slopes[c]
            }
        }
        conv.setPReLU(slopes)
        let out = Tensor(shape: [k.cout, 5, 19])
        conv.forward(x, into: out, arena: Arena(), residual: skip)
        #expect(maxDifference(out, expected) < 1e-4)
    }

    @Test("a 1x1 convolution over three channels added into a map, then PReLU, equals the three steps apart")
    func pointwiseAddingTo() {
        var random = Generator(state: 77)
        let conv = Conv2D(inChannels: 3, outChannels: 5, kernel: (1, 1), weight: random.values(15), bias: random.values(5))
        let x = Tensor(shape: [3, 4, 9], values: random.values(108))
        let base = random.values(5 * 36)
        let slopes = random.values(5).map { abs($0) / 4 }
        let fused = Tensor(shape: [5, 4, 9], values: base)
        conv.forward(x, addingTo: fused, prelu: slopes)
        let apart = naiveConv(x, conv)
        for c in 0..<5 {
            for i in 0..<36 {
                let v = apart.channel(c)[i] + base[c * 36 + i]
                apart.channel(c)[i] = v > 0 ? v : v * slopes[c]
            }
        }
        #expect(maxDifference(fused, apart) < 1e-5)
    }

    @Test("a residual added in the affine pass equals add then affine, with and without PReLU, in place", arguments: [false, true])
    func affineAddingResidual(_ withPReLU: Bool) {
        var random = Generator(state: withPReLU ? 41 : 43)
        let shape = [9, 7, 13]
        let x = Tensor(shape: shape, values: random.values(9 * 7 * 13))
        let residual = Tensor(shape: shape, values: random.values(9 * 7 * 13))
        let scale = random.values(9), shift = random.values(9)
        let slopes = withPReLU ? random.values(9).map { abs($0) / 4 } : nil
        let expected = Tensor(shape: shape)
        Ops.add(x, residual, into: expected)
        Ops.affine(expected, scale: scale, shift: shift, prelu: slopes, into: expected)
        // Naive: the definition, element by element.
        var naive = [Float](repeating: 0, count: x.count)
        let xs = x.array, rs = residual.array
        for c in 0..<9 {
            for i in 0..<(7 * 13) {
                let v = (xs[c * 91 + i] + rs[c * 91 + i]) * scale[c] + shift[c]
                naive[c * 91 + i] = slopes.map { v > 0 ? v : v * $0[c] } ?? v
            }
        }
        #expect(expected.array == naive)
        let fused = Tensor(shape: shape, values: xs)
        Ops.affine(fused, adding: residual, scale: scale, shift: shift, prelu: slopes, into: fused)
        #expect(fused.array == naive)
        #expect(naive.contains { $0 < 0 } && naive.contains { $0 > 0 })
    }

    @Test("batch norm folded into a convolution equals the convolution followed by the batch norm")
    func batchNormFolding() {
        var random = Generator(state: 9)
        let weight = random.values(4 * 3 * 9)
        let plain = Conv2D(inChannels: 3, outChannels: 4, kernel: (3, 3), padding: (1, 1), weight: weight)
        var folded = plain
        let bn = BatchNorm(gamma: [1.5, -0.5, 2, 0.25], beta: [0.1, 0.2, -0.3, 0], mean: [0.5, -1, 0, 2],
                           variance: [4, 0.25, 1, 9], eps: 1e-5)
        folded.foldBatchNorm(bn)
        let x = Tensor(shape: [3, 6, 5], values: random.values(90))
        let y = plain(x)
        for c in 0..<4 {
            for i in 0..<y.plane {
                let expected = (y.channel(c)[i] - [0.5, -1, 0, 2][c]) / (([4, 0.25, 1, 9][c] + 1e-5) as Float).squareRoot()
                    * [1.5, -0.5, 2, 0.25][c] + [0.1, 0.2, -0.3, 0][c]
                y.channel(c)[i] = expected
            }
        }
        #expect(maxDifference(folded(x), y) < 1e-5)
    }

    @Test("2x2 stride-2 transposed convolution paints each input pixel into a 2x2 block")
    func transposedConvolution() {
        var random = Generator(state: 4)
        let weight = random.values(3 * 2 * 4)
        let t = TransposedConv2x2(inChannels: 3, outChannels: 2, weight: weight, bias: [0.5, -0.5])
        let x = Tensor(shape: [3, 3, 5], values: random.values(45))
        let out = Tensor(shape: [2, 6, 10])
        t.forward(x, into: out, arena: Arena())
        var worst: Float = 0
        for o in 0..<2 {
            for y in 0..<6 {
                for xx in 0..<10 {
                    var sum: Float = [0.5, -0.5][o]
                    for i in 0..<3 { sum += weight[((i * 2 + o) * 2 + y % 2) * 2 + xx % 2] * x.channel(i)[(y / 2) * 5 + xx / 2] }
                    worst = max(worst, abs(sum - out.channel(o)[y * 10 + xx]))
                }
            }
        }
        #expect(worst < 1e-5)
    }

    @Test("3x3 stride-2 average pooling counts the padding (always divides by 9)")
    func averagePooling() {
        let x = Tensor(shape: [1, 3, 4], values: (1...12).map(Float.init))
        let out = Tensor(shape: [1, 2, 2])
        Pooling.average3x3Stride2(x, into: out)
        // Top-left window covers rows -1...1, cols -1...1: only 1, 2, 5, 6 are inside.
        let expected: [Float] = [14 / 9, 30 / 9, 30 / 9, 54 / 9]  // 1+2+5+6, 2+3+4+6+7+8, 5+6+9+10, 6+7+8+10+11+12
        #expect(out.array == expected)
    }

    @Test("3x3 stride-2 average pooling over rows long enough for vectors, odd and even sizes, every instruction set",
          arguments: [(9, 40), (10, 41), (7, 35), (6, 97), (5, 130)])
    func averagePoolingWide(_ size: (Int, Int)) {
        for set in KernelSet.allCases where set.rawValue <= Kernels.supported.rawValue {
            Kernels.using(set) { averagePoolingWide(size, set: set) }
        }
    }

    func averagePoolingWide(_ size: (Int, Int), set: KernelSet) {
        let (h, w) = size
        var random = Generator(state: UInt64(h * 100 + w))
        let x = Tensor(shape: [2, h, w], values: random.values(2 * h * w))
        let oh = (h - 1) / 2 + 1, ow = (w - 1) / 2 + 1
        let out = Tensor(shape: [2, oh, ow])
        Pooling.average3x3Stride2(x, into: out)
        var worst: Float = 0
        for c in 0..<2 {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum: Float = 0
                    for iy in (oy * 2 - 1)...(oy * 2 + 1) where iy >= 0 && iy < h {
                        for ix in (ox * 2 - 1)...(ox * 2 + 1) where ix >= 0 && ix < w { sum += x.channel(c)[iy * w + ix] }
                    }
                    worst = max(worst, abs(out.channel(c)[oy * ow + ox] - sum / 9))
                }
            }
        }
        #expect(worst < 1e-5, "\(set)")
    }

    @Test("adaptive average pooling to sizes that do not divide evenly (overlapping bins)",
          arguments: [(7, 5, 3, 2), (48, 32, 32, 5), (5, 64, 7, 7), (4, 4, 5, 5), (24, 48, 16, 32)])
    func adaptivePooling(_ h: Int, _ w: Int, _ oh: Int, _ ow: Int) {
        var random = Generator(state: UInt64(h * w))
        let x = Tensor(shape: [2, h, w], values: random.values(2 * h * w))
        let out = Tensor(shape: [2, oh, ow])
        Pooling.adaptiveAverage(x, into: out)
        var worst: Float = 0
        for c in 0..<2 {
            for i in 0..<oh {
                for j in 0..<ow {
                    // Bins by their definition: [floor(i*H/O), ceil((i+1)*H/O)).
                    let r0 = Int((Double(i * h) / Double(oh)).rounded(.down)), r1 = Int((Double((i + 1) * h) / Double(oh)).rounded(.up))
                    let c0 = Int((Double(j * w) / Double(ow)).rounded(.down)), c1 = Int((Double((j + 1) * w) / Double(ow)).rounded(.up))
                    var sum: Float = 0
                    for y in r0..<r1 { for xx in c0..<c1 { sum += x.channel(c)[y * w + xx] } }
                    worst = max(worst, abs(sum / Float((r1 - r0) * (c1 - c0)) - out.channel(c)[i * ow + j]))
                }
            }
        }
        #expect(worst < 1e-5)
    }

    @Test("bilinear resize with align_corners true and false",
          arguments: [(true, 3, 4, 7, 5), (false, 3, 4, 7, 5), (false, 6, 9, 4, 5), (true, 5, 5, 10, 10), (true, 9, 40, 17, 81),
                      (false, 7, 33, 20, 67), (false, 30, 70, 12, 35), (true, 8, 64, 16, 128), (false, 8, 64, 16, 128)])
    func bilinear(_ alignCorners: Bool, _ h: Int, _ w: Int, _ oh: Int, _ ow: Int) {
        // The resize kernel compiled for each instruction set (on AVX2 and AVX-512 enlargements take a permute path).
        for set in KernelSet.allCases where set.rawValue <= Kernels.supported.rawValue {
            Kernels.using(set) { bilinear(alignCorners, h, w, oh, ow, set: set) }
        }
    }

    func bilinear(_ alignCorners: Bool, _ h: Int, _ w: Int, _ oh: Int, _ ow: Int, set: KernelSet) {
        var random = Generator(state: UInt64(oh * 10 + ow))
        let x = Tensor(shape: [1, h, w], values: random.values(h * w))
        let out = Tensor(shape: [1, oh, ow])
        Resize.bilinear(x, into: out, alignCorners: alignCorners)
        func source(_ d: Int, _ n: Int, _ m: Int) -> Double {
            alignCorners ? Double(d) * Double(n - 1) / Double(m - 1) : max(0, (Double(d) + 0.5) * Double(n) / Double(m) - 0.5)
        }
        var worst = 0.0
        for i in 0..<oh {
            for j in 0..<ow {
                let sy = source(i, h, oh), sx = source(j, w, ow)
                let y0 = min(Int(sy), h - 1), x0 = min(Int(sx), w - 1)
                let y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
                let fy = sy - Double(y0), fx = sx - Double(x0)
                func v(_ y: Int, _ xx: Int) -> Double { Double(x.data[y * w + xx]) }
                let expected = (1 - fy) * ((1 - fx) * v(y0, x0) + fx * v(y0, x1)) + fy * ((1 - fx) * v(y1, x0) + fx * v(y1, x1))
                worst = max(worst, abs(expected - Double(out.data[i * ow + j])))
            }
        }
        #expect(worst < 1e-5, "\(set)")
        if alignCorners {  // corners land exactly on corners
            #expect(out.data[0] == x.data[0] && out.data[oh * ow - 1] == x.data[h * w - 1])
        }
    }

    @Test("a grouped 3x3 convolution that also gives its input's channel means: the same output, the means of a double loop",
          arguments: [(16, 24), (9, 13)])
    func convolutionWithInputMeans(_ h: Int, _ w: Int) {
        var random = Generator(state: UInt64(h * w))
        let conv = Conv2D(inChannels: 8, outChannels: 4, kernel: (3, 3), padding: (1, 1), groups: 4,
                          weight: random.values(4 * 2 * 9), bias: random.values(4))
        let x = Tensor(shape: [8, h, w], values: random.values(8 * h * w).map { $0 + 0.25 })
        let plain = Tensor(shape: [4, h, w]), measured = Tensor(shape: [4, h, w])
        conv.forward(x, into: plain, arena: Arena())
        let means = conv.forwardAndInputMeans(x, into: measured, arena: Arena())
        #expect(measured.array == plain.array)
        let expected = (0..<8).map { c in (0..<(h * w)).reduce(0.0) { $0 + Double(x.channel(c)[$1]) } / Double(h * w) }
        #expect(zip(means, expected).allSatisfy { abs(Double($0) - $1) <= 1e-6 * max(1, abs($1)) })
        #expect(Set(means).count == 8)
    }

    @Test("channel shuffle, argmax and max")
    func channelOps() {
        let x = Tensor(shape: [6, 1, 2], values: (0..<12).map(Float.init))
        let out = Tensor(shape: [6, 1, 2])
        Ops.channelShuffle(x, groups: 3, into: out)
        // out[j*3+g] = in[g*2+j]: order of input channels 0, 2, 4, 1, 3, 5.
        #expect(out.array == [0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11])

        let scores = Tensor(shape: [3, 1, 4], values: [1, 5, 2, 0, 3, 5, 1, 0, 2, 9, 0, 0])
        #expect(Ops.argmax(scores) == [1, 2, 0, 0])  // ties go to the first channel
        #expect(Ops.argmax(scores, classes: 2) == [1, 0, 0, 0])
        let top = Tensor(shape: [1, 1, 4])
        Ops.channelMax(scores, classes: 2, into: top)
        #expect(top.array == [3, 5, 2, 0])
    }

    @Test("the arena hands back the same memory on the next pass")
    func arenaReuse() {
        let arena = Arena()
        let a = arena.tensor("x", [2, 3, 4])
        let b = arena.tensor("x", [2, 3, 4])
        #expect(a.data == b.data)
        // A larger shape cannot fit the old memory: new memory (the old stays alive while `a` views it), which
        // the name then keeps and hands out for the smaller shape too.
        let grown = arena.tensor("x", [2, 3, 5])
        #expect(grown.shape == [2, 3, 5] && grown.count == 30)
        #expect(grown.data != a.data)
        #expect(arena.tensor("x", [2, 3, 4]).data == grown.data)
        let scratch = arena.tensor("s", [100])
        #expect(arena.tensor("s", [50]).data == scratch.data)  // smaller scratch reuses the larger buffer
    }
}
