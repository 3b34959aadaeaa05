import CKernels
import COpenBLAS

/// A 2x2, stride-2 transposed convolution (each input pixel paints a 2x2 block), with optional bias,
/// folded batch-norm and per-channel PReLU.
public struct TransposedConv2x2: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    /// [inChannels, outChannels, 2, 2], PyTorch's layout.
    public let weight: [Float]
    public private(set) var scale: [Float]
    public private(set) var bias: [Float]
    public private(set) var prelu: [Float]?

    public init(inChannels: Int, outChannels: Int, weight: [Float], bias: [Float]? = nil) {
        precondition(weight.count == inChannels * outChannels * 4, "weight size mismatch")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.weight = weight
        scale = [Float](repeating: 1, count: outChannels)
        self.bias = bias ?? [Float](repeating: 0, count: outChannels)
    }

    /// Applies a batch norm after the convolution (kept as a per-channel scale in the scatter step).
    public mutating func foldBatchNorm(_ bn: BatchNorm) {
        precondition(bn.channels == outChannels)
        for o in 0..<outChannels {
            scale[o] *= bn.scale[o]
            bias[o] = bias[o] * bn.scale[o] + bn.shift[o]
        }
    }

    public mutating func setPReLU(_ slopes: [Float]) {
        precondition(slopes.count == outChannels)
        prelu = slopes
    }

    public func macs(_ h: Int, _ w: Int) -> Int { h * w * inChannels * outChannels * 4 }

    /// `out` must be [outChannels, 2h, 2w]. A band of input rows at a time: the GEMM's products for the band (each
    /// output channel's four kernel phases), then each output row interleaved from its two column phases with the
    /// scale, bias and PReLU. The products stay near the cores (at 1024x512 the whole map's were 42 MB).
    public func forward(_ x: Tensor, into out: Tensor, arena: Arena) {
        precondition(x.channels == inChannels && out.shape == [outChannels, 2 * x.height, 2 * x.width])
        let n = x.plane, h = x.height, w = x.width, ow = 2 * w
        OperationCounter.add(macs(h, w))
        let bandRows = max(1, min(h, 4096 / max(w, 1)))
        let isa = Kernels.argument
        let products = arena.tensor("convT", [outChannels * 4 * bandRows * w])
        for y0 in stride(from: 0, to: h, by: bandRows) {
            let rows = min(bandRows, h - y0), columns = rows * w
            // (out*4 x in) = weightᵀ, times (in x the band's pixels).
            weight.withUnsafeBufferPointer { wp in
                Gemm.multiply(transposeA: true, m: outChannels * 4, n: columns, k: inChannels, a: wp.baseAddress!,
                              lda: outChannels * 4, b: x.data + y0 * w, ldb: n, c: products.data, ldc: columns)
            }
            ComputeThreads.forEach(outChannels, minimumPerThread: 2) { range in
                for o in range {
                    let dst = out.channel(o)
                    for i in 0..<2 {
                        // Phase (i, j) of channel o is row o * 4 + i * 2 + j of the products.
                        let even = products.data + (o * 4 + i * 2) * columns
                        for y in 0..<rows {
                            rw_interleave_affine(isa, even + y * w, even + columns + y * w, dst + (2 * (y0 + y) + i) * ow,
                                                 Int32(w), scale[o], bias[o], prelu == nil ? 0 : 1, prelu?[o] ?? 0)
                        }
                    }
                }
            }
        }
    }
}
