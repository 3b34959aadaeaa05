import Testing
@testable import Tensors

/// The C kernels on every instruction set this CPU runs (AVX-512, AVX2, the baseline), each against the plain loops
/// of `OpsTests`: full 3x3 convolutions with more inputs than one pass takes (16) and output counts that split into
/// uneven blocks, strides 1 and 2, dilations, row lengths with whole blocks of vectors and a partial one.
@Suite("Kernels on every instruction set against naive loops")
struct KernelSetTests {
    static let sets = KernelSet.allCases.filter { $0.rawValue <= Kernels.supported.rawValue }
    let ops = OpsTests()

    struct Case: Sendable, CustomTestStringConvertible {
        var cin, cout, stride, dilation, groups, h, w: Int
        var testDescription: String { "\(cin)->\(cout) s\(stride) d\(dilation) g\(groups) on \(h)x\(w)" }
    }

    static let cases: [Case] = [
        Case(cin: 37, cout: 25, stride: 1, dilation: 1, groups: 1, h: 6, w: 70),   // 3 input passes, blocks 7,6,6,6 (AVX-512) or 5 of 5
        Case(cin: 19, cout: 12, stride: 2, dilation: 1, groups: 1, h: 9, w: 67),
        Case(cin: 12, cout: 12, stride: 1, dilation: 4, groups: 1, h: 11, w: 35),
        Case(cin: 5, cout: 17, stride: 1, dilation: 2, groups: 1, h: 5, w: 130),   // blocks 6,6,5; 2 x 4 vectors
        Case(cin: 20, cout: 10, stride: 1, dilation: 1, groups: 10, h: 7, w: 33),  // 2 in, 1 out per group
        Case(cin: 9, cout: 9, stride: 2, dilation: 3, groups: 9, h: 12, w: 81),    // depthwise
        Case(cin: 12, cout: 12, stride: 1, dilation: 1, groups: 3, h: 4, w: 17),   // 4 in, 4 out per group
    ]

    @Test("3x3 convolutions", arguments: sets, cases)
    func convolution(_ set: KernelSet, _ k: Case) {
        var random = OpsTests.Generator(state: UInt64(k.cin * 7 + k.w))
        var conv = Conv2D(inChannels: k.cin, outChannels: k.cout, kernel: (3, 3), stride: (k.stride, k.stride),
                          padding: (k.dilation, k.dilation), dilation: (k.dilation, k.dilation), groups: k.groups,
                          weight: random.values(k.cout * (k.cin / k.groups) * 9), bias: random.values(k.cout))
        conv.setPReLU(random.values(k.cout).map { abs($0) / 4 })
        #expect(conv.usesPadded3x3)
        let x = Tensor(shape: [k.cin, k.h, k.w], values: random.values(k.cin * k.h * k.w))
        let out = Kernels.using(set) { conv(x) }
        // Sums of up to 333 products of values below 2 in size, in float against double.
        #expect(ops.maxDifference(out, ops.naiveConv(x, conv)) < 2e-4)
    }

    @Test("1x1 convolutions with groups, a residual and a PReLU; one over few channels added into its output",
          arguments: sets, [(cin: 40, cout: 36, groups: 2), (cin: 128, cout: 20, groups: 1), (cin: 12, cout: 13, groups: 1),
                                (cin: 96, cout: 24, groups: 2)])
    func pointwise(_ set: KernelSet, _ k: (cin: Int, cout: Int, groups: Int)) {
        var random = OpsTests.Generator(state: UInt64(k.cin + k.cout))
        var conv = Conv2D(inChannels: k.cin, outChannels: k.cout, kernel: (1, 1), groups: k.groups,
                          weight: random.values(k.cout * k.cin / k.groups), bias: random.values(k.cout))
        #expect(conv.isPointwise)
        let h = 7, w = 83  // 581 pixels: spans of 256, whole blocks of vectors and a partial one
        let x = Tensor(shape: [k.cin, h, w], values: random.values(k.cin * h * w))
        let skip = Tensor(shape: [k.cout, h, w], values: random.values(k.cout * h * w))
        let slopes = random.values(k.cout).map { abs($0) / 4 }
        let expected = ops.naiveConv(x, conv)  // linear: the residual comes before the PReLU
        for c in 0..<k.cout {
            for i in 0..<h * w {
                let v = expected.channel(c)[i] + skip.channel(c)[i]
                expected.channel(c)[i] = v > 0 ? v : v * slopes[c]
            }
        }
        let added = Tensor(shape: skip.shape, values: Array(UnsafeBufferPointer(start: skip.data, count: skip.count)))
        if k.cin <= 16 {
            Kernels.using(set) { conv.forward(x, addingTo: added, prelu: slopes) }
            #expect(ops.maxDifference(added, expected) < 2e-4)
        }
        conv.setPReLU(slopes)
        let out = Tensor(shape: [k.cout, h, w])
        Kernels.using(set) { conv.forward(x, into: out, arena: Arena(), residual: skip) }
        #expect(ops.maxDifference(out, expected) < 2e-4)
    }

    struct Hierarchical: Sendable, CustomTestStringConvertible {
        var channels, stride, h, w: Int
        var dilations: [Int]
        var testDescription: String { "\(channels) channels s\(stride) d\(dilations) on \(h)x\(w)" }
    }

    /// Running sums, BN and PReLU against the branches one by one through the naive convolution.
    @Test("hierarchical depthwise branches", arguments: sets, [
        Hierarchical(channels: 5, stride: 1, h: 10, w: 150, dilations: [1, 2, 4, 8]),
        Hierarchical(channels: 5, stride: 2, h: 10, w: 150, dilations: [1, 2, 4, 8]),
        Hierarchical(channels: 3, stride: 1, h: 9, w: 37, dilations: [1, 2, 3, 4]),
        Hierarchical(channels: 3, stride: 2, h: 9, w: 37, dilations: [1, 2, 3, 4]),
    ])
    func hierarchical(_ set: KernelSet, _ k: Hierarchical) {
        var random = OpsTests.Generator(state: UInt64(90 + k.stride + k.w))
        let n = k.channels, nb = k.dilations.count
        let branches = k.dilations.map { d in
            Conv2D(inChannels: n, outChannels: n, kernel: (3, 3), stride: (k.stride, k.stride), padding: (d, d), dilation: (d, d),
                   groups: n, weight: random.values(n * 9), bias: random.values(n))
        }
        let scale = random.values(nb * n), shift = random.values(nb * n), slopes = random.values(nb * n).map { abs($0) / 4 }
        let x = Tensor(shape: [n, k.h, k.w], values: random.values(n * k.h * k.w))
        let (oh, ow) = branches[0].outputSize(k.h, k.w)
        let out = Tensor(shape: [nb * n, oh, ow])
        Kernels.using(set) {
            HierarchicalDepthwise(branches: branches, scale: scale, shift: shift, slopes: slopes).forward(x, into: out, arena: Arena())
        }
        var worst: Float = 0
        var running = [Float](repeating: 0, count: n * oh * ow)
        for (b, branch) in branches.enumerated() {
            let part = ops.naiveConv(x, branch)
            for j in 0..<n {
                for i in 0..<oh * ow {
                    running[j * oh * ow + i] += part.channel(j)[i]
                    let c = b * n + j
                    let y = running[j * oh * ow + i] * scale[c] + shift[c]
                    worst = max(worst, abs(out.channel(c)[i] - (y > 0 ? y : y * slopes[c])))
                }
            }
        }
        #expect(worst < 1e-4)
    }

    @Test("2x2 transposed convolution, several bands of rows, folded batch norm and PReLU", arguments: sets)
    func transposed(_ set: KernelSet) {
        var random = OpsTests.Generator(state: 17)
        let cin = 6, cout = 5, h = 31, w = 301  // bands of 13 rows: 13, 13, 5; 18 full vectors and a partial one
        let weight = random.values(cin * cout * 4), bias = random.values(cout)
        var t = TransposedConv2x2(inChannels: cin, outChannels: cout, weight: weight, bias: bias)
        let gamma = random.values(cout).map { abs($0) + 0.5 }, beta = random.values(cout)
        let mean = random.values(cout), variance = random.values(cout).map { abs($0) + 0.1 }
        let bn = BatchNorm(gamma: gamma, beta: beta, mean: mean, variance: variance, eps: 1e-3)
        t.foldBatchNorm(bn)
        let slopes = random.values(cout).map { abs($0) / 4 }
        t.setPReLU(slopes)
        let x = Tensor(shape: [cin, h, w], values: random.values(cin * h * w))
        let out = Tensor(shape: [cout, 2 * h, 2 * w])
        Kernels.using(set) { t.forward(x, into: out, arena: Arena()) }
        var worst: Float = 0
        for o in 0..<cout {
            for y in 0..<2 * h {
                for xx in 0..<2 * w {
                    var sum = Double(bias[o])
                    for i in 0..<cin {
                        sum += Double(weight[((i * cout + o) * 2 + y % 2) * 2 + xx % 2]) * Double(x.channel(i)[(y / 2) * w + xx / 2])
                    }
                    var v = Float(sum) * bn.scale[o] + bn.shift[o]
                    if v < 0 { v *= slopes[o] }
                    worst = max(worst, abs(v - out.channel(o)[y * 2 * w + xx]))
                }
            }
        }
        #expect(worst < 1e-4)
    }

    @Test("the process's set is the widest the CPU runs, and a set asked for is capped to it")
    func selection() {
        #expect(Kernels.process == Kernels.supported)
        #expect(Kernels.using(.avx512) { Kernels.current }.rawValue <= Kernels.supported.rawValue)
        #expect(Kernels.using(.generic) { Kernels.current } == .generic)
    }

    @Test("a resize that adds a gated map and applies a batch norm and PReLU equals the three steps, value for value",
          arguments: sets, [(3, 5, 7, 10, 14), (2, 16, 40, 32, 80), (4, 9, 33, 17, 65)])
    func resizeEpilogue(_ set: KernelSet, _ size: (Int, Int, Int, Int, Int)) {
        let (c, h, w, oh, ow) = size
        var random = OpsTests.Generator(state: UInt64(h * w + c))
        let x = Tensor(shape: [c, h, w], values: random.values(c * h * w))
        let addend = Tensor(shape: [c, oh, ow], values: random.values(c * oh * ow))
        let factors = random.values(c), scale = random.values(c), shift = random.values(c)
        let slopes = random.values(c).map { abs($0) / 4 }
        for prelu in [slopes, nil] {
            let expected = Tensor(shape: [c, oh, ow]), fused = Tensor(shape: [c, oh, ow])
            Kernels.using(set) {
                Resize.bilinear(x, into: expected, alignCorners: true)
                let gated = Tensor(shape: addend.shape)
                Ops.scaleChannels(addend, by: factors, into: gated)
                Ops.add(expected, gated, into: expected)
                Ops.affine(expected, scale: scale, shift: shift, prelu: prelu, into: expected)
                Resize.bilinear(x, into: fused, alignCorners: true, plus: addend, times: factors, scale: scale, shift: shift,
                                prelu: prelu)
            }
            #expect(fused.array == expected.array, "\(set), PReLU \(prelu != nil)")
            #expect(fused.array.contains { $0 < 0 } && fused.array.contains { $0 > 0 })
            // Written over the addend itself (as ESPNetv2's decoder does): the same values.
            let inPlace = Tensor(shape: addend.shape, values: addend.array)
            Kernels.using(set) {
                Resize.bilinear(x, into: inPlace, alignCorners: true, plus: inPlace, times: factors, scale: scale, shift: shift,
                                prelu: prelu)
            }
            #expect(inPlace.array == expected.array, "in place, \(set), PReLU \(prelu != nil)")
        }
    }

    @Test("a one-channel resize into a kept array equals the resize into a fresh tensor", arguments: sets)
    func resizeIntoArray(_ set: KernelSet) {
        var random = OpsTests.Generator(state: 11)
        let x = Tensor(shape: [1, 9, 17], values: random.values(9 * 17))
        var kept: [Float] = []
        for (w, h) in [(70, 33), (70, 33), (35, 20)] {
            let fresh = Kernels.using(set) { Resize.bilinear(x, width: w, height: h, stride: 1, alignCorners: false) }
            Kernels.using(set) { Resize.bilinear(x, width: w, height: h, alignCorners: false, into: &kept) }
            #expect(kept == fresh.array, "\(set) \(w)x\(h)")
        }
    }
}
