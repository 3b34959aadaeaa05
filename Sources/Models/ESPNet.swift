import Tensors

/// ESPNet (p = 2, q = 8) semantic segmentation for Cityscapes, 20 outputs, after Mehta et al. (ECCV 2018).
/// Features for clustering: `encoder.b3`, 256 channels at 1/8.
public final class ESPNet: SegmentationModel, @unchecked Sendable {
    public let sizeMultiple = 8
    public let minimumSize = (width: 512, height: 256)
    public let featureStride = 8
    public let outputChannels = 20
    static let bnEps: Float = 1e-3

    private let level1: Conv2D
    private let b1: BatchNorm, b1Slopes: [Float]
    private let level2Down: ESPBlock, level2: [ESPBlock]
    private let b2: BatchNorm, b2Slopes: [Float]
    private let level3Down: ESPBlock, level3: [ESPBlock]
    private let b3: BatchNorm, b3Slopes: [Float]
    private let encoderClassifier: Conv2D
    private let br: BatchNorm
    private let upL3: TransposedConv2x2
    private let level3C: Conv2D
    private let combineNorm: BatchNorm, combineSlopes: [Float]
    private let combine: ESPBlock
    private let upL2: TransposedConv2x2
    private let fuse: Conv2D
    private let classifier: TransposedConv2x2
    // Pools, not single arenas: the model is shared by every monitor that loads it, and they run at once.
    private let encoderArenas = ArenaPool()
    private let decoderArenas = ArenaPool()

    public init(weights w: WeightSet) throws(WeightError) {
        let eps = Self.bnEps
        level1 = try w.cbr("encoder.level1", in: 3, out: 16, kernel: 3, stride: 2, eps: eps)
        b1 = try w.batchNorm("encoder.b1.bn", 19, eps: eps); b1Slopes = try w.prelu("encoder.b1.act", 19)
        level2Down = try ESPBlock(w, "encoder.level2_0", in: 19, out: 64, down: true)
        level2 = try (0..<2).map { i throws(WeightError) in try ESPBlock(w, "encoder.level2.\(i)", in: 64, out: 64) }
        b2 = try w.batchNorm("encoder.b2.bn", 131, eps: eps); b2Slopes = try w.prelu("encoder.b2.act", 131)
        level3Down = try ESPBlock(w, "encoder.level3_0", in: 131, out: 128, down: true)
        level3 = try (0..<8).map { i throws(WeightError) in try ESPBlock(w, "encoder.level3.\(i)", in: 128, out: 128) }
        b3 = try w.batchNorm("encoder.b3.bn", 256, eps: eps); b3Slopes = try w.prelu("encoder.b3.act", 256)
        encoderClassifier = try w.conv("encoder.classifier.conv", in: 256, out: 20, kernel: 1)
        br = try w.batchNorm("br", 20, eps: eps)
        upL3 = TransposedConv2x2(inChannels: 20, outChannels: 20, weight: try w.take("up_l3.0.weight", [20, 20, 2, 2]))
        level3C = try w.conv("level3_C.conv", in: 131, out: 20, kernel: 1)
        combineNorm = try w.batchNorm("combine_l2_l3.0.bn", 40, eps: eps)
        combineSlopes = try w.prelu("combine_l2_l3.0.act", 40)
        combine = try ESPBlock(w, "combine_l2_l3.1", in: 40, out: 20, residual: false)
        var up2 = TransposedConv2x2(inChannels: 20, outChannels: 20, weight: try w.take("up_l2.0.weight", [20, 20, 2, 2]))
        up2.foldBatchNorm(try w.batchNorm("up_l2.1.bn", 20, eps: eps))
        up2.setPReLU(try w.prelu("up_l2.1.act", 20))
        upL2 = up2
        fuse = try w.cbr("conv", in: 36, out: 20, kernel: 3, eps: eps)
        classifier = TransposedConv2x2(inChannels: 20, outChannels: 20, weight: try w.take("classifier.weight", [20, 20, 2, 2]))
        try w.checkAllUsed()
    }

    public func backbone(_ x: Tensor, capture: Capture?) -> BackboneOutput {
        encoderArenas.with { backbone(x, capture: capture, arena: $0) }
    }

    private func backbone(_ x: Tensor, capture: Capture?, arena a: Arena) -> BackboneOutput {
        let h = x.height, w = x.width
        precondition(x.channels == 3 && h % 8 == 0 && w % 8 == 0, "ESPNet input must be 3 x H x W with H, W multiples of 8")
        // cat[l1, sample1] is built in place: level1 writes channels 0..<16, the pooled image 16..<19.
        let c0 = a.tensor("c0", [19, h / 2, w / 2])
        let l1View = Tensor(channelsOf: c0, 0..<16)
        level1.forward(x, into: l1View, arena: a)
        let l1 = l1View.copy()  // the decoder reuses level1's output: it leaves with the frame
        capture?("encoder.level1", l1)
        let sample1 = Tensor(channelsOf: c0, 16..<19)
        Pooling.average3x3Stride2(x, into: sample1)
        capture?("encoder.sample1", sample1)
        // c1 = BR(cat[level2 output, level2_0 output, sample2]).
        let c1 = Tensor(uninitialized: [131, h / 4, w / 4])
        let sample2 = Tensor(channelsOf: c1, 128..<131)
        Pooling.average3x3Stride2(sample1, into: sample2)
        capture?("encoder.sample2", sample2)
        Ops.affine(c0, scale: b1.scale, shift: b1.shift, prelu: b1Slopes, into: c0)
        capture?("encoder.b1", c0)

        let d1 = Tensor(channelsOf: c1, 64..<128)
        level2Down.forward(c0, into: d1, arena: a, name: "l2d")
        capture?("encoder.level2_0", d1)
        var o1 = d1
        for (i, block) in level2.enumerated() {
            let out = i == level2.count - 1 ? Tensor(channelsOf: c1, 0..<64) : a.tensor("l2_\(i)", d1.shape)
            block.forward(o1, into: out, arena: a, name: "l2")
            o1 = out
            capture?("encoder.level2.\(i)", o1)
        }
        Ops.affine(c1, scale: b2.scale, shift: b2.shift, prelu: b2Slopes, into: c1)
        capture?("encoder.b2", c1)

        let features = Tensor(uninitialized: [256, h / 8, w / 8])
        let d2 = Tensor(channelsOf: features, 0..<128)
        level3Down.forward(c1, into: d2, arena: a, name: "l3d")
        capture?("encoder.level3_0", d2)
        var o2 = d2
        for (i, block) in level3.enumerated() {
            let out = i == level3.count - 1 ? Tensor(channelsOf: features, 128..<256) : a.tensor("l3_\(i % 2)", d2.shape)
            block.forward(o2, into: out, arena: a, name: "l3")
            o2 = out
            capture?("encoder.level3.\(i)", o2)
        }
        Ops.affine(features, scale: b3.scale, shift: b3.shift, prelu: b3Slopes, into: features)
        capture?("encoder.b3", features)
        return BackboneOutput(features: features, maps: ["l1": l1, "c1": c1])
    }

    public func decoder(_ encoded: BackboneOutput, capture: Capture?) -> Tensor {
        decoderArenas.with { decoder(encoded, capture: capture, arena: $0) }
    }

    private func decoder(_ encoded: BackboneOutput, capture: Capture?, arena a: Arena) -> Tensor {
        guard let l1 = encoded.maps["l1"], let c1 = encoded.maps["c1"] else {
            preconditionFailure("ESPNet decoder needs the l1 and c1 maps of its own backbone")
        }
        let feat = encoded.features
        let p3 = a.tensor("p3", [20, feat.height, feat.width])
        encoderClassifier.forward(feat, into: p3, arena: a)
        capture?("encoder.classifier", p3)
        Ops.affine(p3, scale: br.scale, shift: br.shift, into: p3)
        capture?("br", p3)
        // cat[p2, u3] built in place, then BR, then the ESP block without residual.
        let merged = a.tensor("p2u3", [40, c1.height, c1.width])
        let p2 = Tensor(channelsOf: merged, 0..<20)
        level3C.forward(c1, into: p2, arena: a)
        capture?("level3_C", p2)
        let u3 = Tensor(channelsOf: merged, 20..<40)
        upL3.forward(p3, into: u3, arena: a)
        capture?("up_l3", u3)
        Ops.affine(merged, scale: combineNorm.scale, shift: combineNorm.shift, prelu: combineSlopes, into: merged)
        let m = a.tensor("combine", [20, c1.height, c1.width])
        combine.forward(merged, into: m, arena: a, name: "combine")
        capture?("combine_l2_l3", m)
        // cat[u2, l1] -> CBR 3x3 -> transposed conv to full size.
        let u2l1 = a.tensor("u2l1", [36, l1.height, l1.width])
        let u2 = Tensor(channelsOf: u2l1, 0..<20)
        upL2.forward(m, into: u2, arena: a)
        capture?("up_l2", u2)
        Ops.copyChannels(l1, into: u2l1, at: 20)
        let f = a.tensor("fuse", [20, l1.height, l1.width])
        fuse.forward(u2l1, into: f, arena: a)
        capture?("conv", f)
        let logits = Tensor(uninitialized: [20, 2 * l1.height, 2 * l1.width])
        classifier.forward(f, into: logits, arena: a)
        return logits
    }
}

/// ESP block: reduce (1x1, or 3x3 stride 2 when down-sampling), five dilated 3x3 branches (1, 2, 4, 8, 16)
/// with hierarchical sums of the last four, concatenation, optional residual, BN + PReLU.
struct ESPBlock {
    let reduce: Conv2D
    let branches: [Conv2D]
    let norm: BatchNorm
    let slopes: [Float]
    let residual: Bool

    init(_ w: WeightSet, _ name: String, in cin: Int, out cout: Int, down: Bool = false, residual: Bool = true) throws(WeightError) {
        let n = cout / 5
        self.residual = residual && !down
        reduce = down ? try w.conv("\(name).c1.conv", in: cin, out: n, kernel: 3, stride: 2)
                      : try w.conv("\(name).c1.conv", in: cin, out: n, kernel: 1)
        var branches = [try w.conv("\(name).d1.conv", in: n, out: cout - 4 * n, kernel: 3)]
        for d in [2, 4, 8, 16] {
            branches.append(try w.conv("\(name).d\(d).conv", in: n, out: n, kernel: 3, dilation: d))
        }
        self.branches = branches
        let normName = down ? name : "\(name).bn"
        norm = try w.batchNorm("\(normName).bn", cout, eps: ESPNet.bnEps)
        slopes = try w.prelu("\(normName).act", cout)
    }

    func forward(_ x: Tensor, into out: Tensor, arena a: Arena, name: String) {
        let n = reduce.outChannels
        let (h, w) = reduce.outputSize(x.height, x.width)
        let r = a.tensor("\(name).r", [n, h, w])
        reduce.forward(x, into: r, arena: a)
        // The five branches read one bordered copy of r; d4, d8 and d16 each add the branch before them.
        let first = branches[0].outChannels
        let parts = [Tensor(channelsOf: out, 0..<first)]
            + (0..<4).map { i in Tensor(channelsOf: out, (first + i * n)..<(first + (i + 1) * n)) }
        Conv2D.forward(branches, sharing: r, into: parts, cumulativeFrom: 1, arena: a, name: "conv.padded")
        if residual {
            Ops.affine(out, adding: x, scale: norm.scale, shift: norm.shift, prelu: slopes, into: out)
        } else {
            Ops.affine(out, scale: norm.scale, shift: norm.shift, prelu: slopes, into: out)
        }
    }
}
