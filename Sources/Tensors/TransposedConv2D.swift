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

    /// `out` must be [outChannels, 2h, 2w].
    public func forward(_ x: Tensor, into out: Tensor, arena: Arena) {
        precondition(x.channels == inChannels && out.shape == [outChannels, 2 * x.height, 2 * x.width])
        let n = x.plane, h = x.height, w = x.width, ow = 2 * w
        OperationCounter.add(macs(h, w))
        let products = arena.tensor("convT", [outChannels * 4 * n])
        // (out*4 x in) = weightᵀ, times (in x pixels).
        weight.withUnsafeBufferPointer { wp in
            Gemm.multiply(transposeA: true, m: outChannels * 4, n: n, k: inChannels, a: wp.baseAddress!,
                          lda: outChannels * 4, b: x.data, ldb: n, c: products.data, ldc: n)
        }
        ComputeThreads.forEach(outChannels, minimumPerThread: 2) { range in
            for o in range {
                let s = scale[o], b = bias[o], a = prelu?[o]
                let dst = out.channel(o)
                for k in 0..<4 {
                    let i = k / 2, j = k % 2
                    let src = products.data + (o * 4 + k) * n
                    for y in 0..<h {
                        let line = dst + (2 * y + i) * ow + j
                        let row = src + y * w
                        for x in 0..<w {
                            var v = row[x] * s + b
                            if let a, v < 0 { v *= a }
                            line[2 * x] = v
                        }
                    }
                }
            }
        }
    }
}
