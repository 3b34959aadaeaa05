/// Depthwise 3x3 branches over one input, each with its own dilation, where every branch's output has the previous
/// branch's added to it (hierarchical fusion), followed by a per-channel affine map and PReLU over the branches
/// side by side — the middle of an EESP block, in one pass per input channel: the running sum stays in registers
/// and each output value is stored once.
public struct HierarchicalDepthwise: Sendable {
    public let branches: [Conv2D]
    public let scale: [Float]
    public let shift: [Float]
    public let slopes: [Float]
    /// Taps as [channel][branch][9] and biases as [channel][branch], so one channel's are together.
    private let taps: [Float]
    private let biases: [Float]

    /// `branches` are depthwise 3x3 convolutions over the same channels with one square stride (1 or 2) and padding
    /// equal to their dilation; `scale`, `shift` and `slopes` cover all branches' channels, branch after branch.
    public init(branches: [Conv2D], scale: [Float], shift: [Float], slopes: [Float]) {
        let n = branches[0].outChannels, stride = branches[0].stride
        for b in branches {
            precondition(b.isDepthwise && b.outChannels == n && b.kernel == (3, 3) && b.stride == stride && b.stride.h == b.stride.w
                         && (b.stride.h == 1 || b.stride.h == 2) && b.dilation.h == b.dilation.w
                         && b.padding.h == b.dilation.h && b.padding.w == b.dilation.w && b.prelu == nil,
                         "hierarchical branches must be depthwise 3x3, padding = dilation, one stride")
        }
        precondition(scale.count == n * branches.count && shift.count == scale.count && slopes.count == scale.count)
        self.branches = branches
        self.scale = scale
        self.shift = shift
        self.slopes = slopes
        let k = branches.count
        var taps = [Float](repeating: 0, count: n * k * 9), biases = [Float](repeating: 0, count: n * k)
        for (b, branch) in branches.enumerated() {
            for j in 0..<n {
                for t in 0..<9 { taps[(j * k + b) * 9 + t] = branch.weight[j * 9 + t] }
                biases[j * k + b] = branch.bias[j]
            }
        }
        self.taps = taps
        self.biases = biases
    }

    public var channels: Int { branches[0].inChannels }

    /// `x` (n channels) into `out` (branches x n channels at the branches' output size).
    public func forward(_ x: Tensor, into out: Tensor, arena: Arena) {
        let n = channels, stride = branches[0].stride.h
        precondition(x.channels == n)
        let (oh, ow) = branches[0].outputSize(x.height, x.width)
        precondition(out.shape == [n * branches.count, oh, ow], "hierarchical output \(out.shape)")
        let pad = branches.map(\.dilation.h).max()!
        let rowStride = branches.map {
            PaddedPlanes.rowStride(width: x.width, pad: pad, outWidth: ow, stride: stride, dilation: $0.dilation.h, padding: $0.padding.h)
        }.max()!
        let padded = PaddedPlanes.copy(x, pad: pad, rowStride: rowStride, arena: arena, name: "hierarchical.padded")
        for b in branches { OperationCounter.add(b.macs(x.height, x.width)) }
        if stride == 1 { run(Step1.self, padded, out) } else { run(Step2.self, padded, out) }
    }

    private func run<S: KernelStep>(_: S.Type, _ padded: PaddedPlanes, _ out: Tensor) {
        let n = channels, k = branches.count
        let oh = out.height, ow = out.width, rs = padded.rowStride
        let dilations = branches.map(\.dilation.h)
        taps.withUnsafeBufferPointer { taps in
        biases.withUnsafeBufferPointer { biases in
        dilations.withUnsafeBufferPointer { dilations in
            ComputeThreads.forEach(n, minimumPerThread: 2) { range in
                for j in range {
                    let source = padded.origin(j)
                    for oy in 0..<oh {
                        var ox = 0
                        while ox < ow {
                            var running = SIMD8<Float>(repeating: 0)
                            for b in 0..<k {
                                let d = dilations[b], c = b * n + j
                                let p = source + (oy * S.step - d) * rs - d + ox * S.step
                                running += taps3x3(S.self, p, rowStride: rs, dy: d, dx: d, taps.baseAddress! + (j * k + b) * 9)
                                    + SIMD8(repeating: biases[j * k + b])
                                let y = running * SIMD8(repeating: scale[c]) + SIMD8(repeating: shift[c])
                                store(preluLanes(y, SIMD8(repeating: slopes[c])), out.channel(c) + oy * ow + ox, count: ow - ox)
                            }
                            ox += 8
                        }
                    }
                }
            }
        }
        }
        }
    }
}
