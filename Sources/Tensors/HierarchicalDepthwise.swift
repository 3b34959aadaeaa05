import CKernels

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
        run(padded, out)
    }

    private func run(_ padded: PaddedPlanes, _ out: Tensor) {
        let dilations = branches.map { Int32($0.dilation.h) }
        taps.withUnsafeBufferPointer { taps in
        biases.withUnsafeBufferPointer { biases in
        dilations.withUnsafeBufferPointer { dilations in
        scale.withUnsafeBufferPointer { scale in
        shift.withUnsafeBufferPointer { shift in
        slopes.withUnsafeBufferPointer { slopes in
            let isa = Kernels.argument
            let h = rw_hierarchical(
                input: UnsafePointer(padded.origin(0)), plane_stride: padded.planeStride, row_stride: padded.rowStride,
                channels: Int32(channels), branches: Int32(branches.count), stride: Int32(branches[0].stride.h),
                dilations: dilations.baseAddress, taps: taps.baseAddress, biases: biases.baseAddress,
                scale: scale.baseAddress, shift: shift.baseAddress, slopes: slopes.baseAddress,
                output: out.data, output_plane: out.plane, out_height: Int32(out.height), out_width: Int32(out.width))
            ComputeThreads.forEach(channels, minimumPerThread: 2) { range in
                withUnsafePointer(to: h) { rw_hierarchical_run(isa, $0, Int32(range.lowerBound), Int32(range.upperBound)) }
            }
        }
        }
        }
        }
        }
        }
    }
}
