import Foundation
import Tensors

/// ESPNetv2 (s = 2.0) semantic segmentation for Cityscapes, 20 outputs, after Mehta et al. (CVPR 2019)
/// and the EdgeNets layer names. Features for clustering: level 4 (512 channels, 1/16) or level 3 (256, 1/8).
public final class ESPNetv2: SegmentationModel, @unchecked Sendable {
    /// Which encoder level feeds the clustering.
    public enum FeatureLevel: Sendable { case level3, level4 }

    public let sizeMultiple = 16
    public let minimumSize = (width: 64, height: 64)
    public let outputChannels = 20
    public let featureLevel: FeatureLevel
    public var featureStride: Int { featureLevel == .level4 ? 16 : 8 }
    static let bnEps: Float = 1e-5

    private let level1: Conv2D
    private let level2: DownSampler, level3Down: DownSampler, level4Down: DownSampler
    private let level3: [EESP], level4: [EESP]
    private let dec1: PyramidPool, dec2: PyramidPool, dec3: PyramidPool, dec4: PyramidPool
    private let merge2: PointwiseMerge, merge3: PointwiseMerge, merge4: PointwiseMerge
    private let br2: BatchNorm, br3: BatchNorm, br4: BatchNorm
    private let br2Slopes: [Float], br3Slopes: [Float], br4Slopes: [Float]
    // Pools, not single arenas: the model is shared by every monitor that loads it, and they run at once.
    private let encoderArenas = ArenaPool()
    private let decoderArenas = ArenaPool()

    public init(weights w: WeightSet, featureLevel: FeatureLevel = .level4) throws(WeightError) {
        self.featureLevel = featureLevel
        let eps = Self.bnEps
        level1 = try w.cbr("base_net.level1", in: 3, out: 32, kernel: 3, stride: 2, eps: eps)
        level2 = try DownSampler(w, "base_net.level2_0", in: 32, out: 128, dilations: [1, 2, 3, 4])
        level3Down = try DownSampler(w, "base_net.level3_0", in: 128, out: 256, dilations: [1, 2, 3, 4])
        level3 = try (0..<3).map { i throws(WeightError) in try EESP(w, "base_net.level3.\(i)", in: 256, out: 256, stride: 1, dilations: [1, 2, 3, 4]) }
        level4Down = try DownSampler(w, "base_net.level4_0", in: 256, out: 512, dilations: [1, 2, 3, 4])
        level4 = try (0..<7).map { i throws(WeightError) in try EESP(w, "base_net.level4.\(i)", in: 512, out: 512, stride: 1, dilations: [1, 1, 2, 3]) }
        dec1 = try PyramidPool(w, "bu_dec_l1", in: 512, out: 64)
        dec2 = try PyramidPool(w, "bu_dec_l2", in: 64, out: 48)
        dec3 = try PyramidPool(w, "bu_dec_l3", in: 48, out: 32)
        dec4 = try PyramidPool(w, "bu_dec_l4", in: 32, out: 20, lastBR: false)
        merge2 = try PointwiseMerge(w, "merge_enc_dec_l2", in: 256, out: 64)
        merge3 = try PointwiseMerge(w, "merge_enc_dec_l3", in: 128, out: 48)
        merge4 = try PointwiseMerge(w, "merge_enc_dec_l4", in: 32, out: 32)
        br2 = try w.batchNorm("bu_br_l2.0", 64, eps: eps); br2Slopes = try w.prelu("bu_br_l2.1", 64)
        br3 = try w.batchNorm("bu_br_l3.0", 48, eps: eps); br3Slopes = try w.prelu("bu_br_l3.1", 48)
        br4 = try w.batchNorm("bu_br_l4.0", 32, eps: eps); br4Slopes = try w.prelu("bu_br_l4.1", 32)
        try w.checkAllUsed()
    }

    public func backbone(_ x: Tensor, capture: Capture?) -> BackboneOutput {
        encoderArenas.with { backbone(x, capture: capture, arena: $0) }
    }

    private func backbone(_ x: Tensor, capture: Capture?, arena a: Arena) -> BackboneOutput {
        let h = x.height, w = x.width
        precondition(x.channels == 3 && h % 16 == 0 && w % 16 == 0, "ESPNetv2 input must be 3 x H x W with H, W multiples of 16")
        let half = a.tensor("image_pool2", [3, h / 2, w / 2])
        Pooling.average3x3Stride2(x, into: half)
        let pool4 = a.tensor("image_pool4", [3, h / 4, w / 4])
        Pooling.average3x3Stride2(half, into: pool4)
        let pool8 = a.tensor("image_pool8", [3, h / 8, w / 8])
        Pooling.average3x3Stride2(pool4, into: pool8)
        let pool16 = a.tensor("image_pool16", [3, h / 16, w / 16])
        Pooling.average3x3Stride2(pool8, into: pool16)
        capture?("image_pool4", pool4)
        capture?("image_pool8", pool8)
        capture?("image_pool16", pool16)

        // Maps the decoder reads are fresh tensors: they leave with the frame.
        let l1 = Tensor(uninitialized: [32, h / 2, w / 2])
        level1.forward(x, into: l1, arena: a)
        capture?("base_net.level1", l1)
        let l2 = Tensor(uninitialized: [128, h / 4, w / 4])
        level2.forward(l1, image: pool4, into: l2, arena: a)
        capture?("base_net.level2_0", l2)

        var l3 = a.tensor("l3_0", [256, h / 8, w / 8])
        level3Down.forward(l2, image: pool8, into: l3, arena: a)
        capture?("base_net.level3_0", l3)
        for (i, block) in level3.enumerated() {
            let out = i == level3.count - 1 ? Tensor(uninitialized: l3.shape) : a.tensor("l3_\((i + 1) % 2)", l3.shape)
            block.forward(l3, into: out, arena: a)
            l3 = out
            capture?("base_net.level3.\(i)", l3)
        }
        var l4 = a.tensor("l4_0", [512, h / 16, w / 16])
        level4Down.forward(l3, image: pool16, into: l4, arena: a)
        capture?("base_net.level4_0", l4)
        for (i, block) in level4.enumerated() {
            let out = i == level4.count - 1 ? Tensor(uninitialized: l4.shape) : a.tensor("l4_\((i + 1) % 2)", l4.shape)
            block.forward(l4, into: out, arena: a)
            l4 = out
            capture?("base_net.level4.\(i)", l4)
        }
        let features = featureLevel == .level4 ? l4 : l3
        return BackboneOutput(features: features, maps: ["l1": l1, "l2": l2, "l3": l3, "l4": l4])
    }

    public func decoder(_ encoded: BackboneOutput, capture: Capture?) -> Tensor {
        decoderScores(encoded, capture: capture).materialized()
    }

    /// The last decoder level at half the input size, and its bilinear resize (align corners) to the input size.
    public func decoderScores(_ encoded: BackboneOutput) -> ClassScores {
        decoderScores(encoded, capture: nil)
    }

    private func decoderScores(_ encoded: BackboneOutput, capture: Capture?) -> ClassScores {
        let d4 = decoderArenas.with { decoder(encoded, capture: capture, arena: $0) }
        return .resized(d4, width: d4.width * 2, height: d4.height * 2, alignCorners: true)
    }

    /// The decoder up to its last level (a fresh tensor: it outlives the arena's turn).
    private func decoder(_ encoded: BackboneOutput, capture: Capture?, arena a: Arena) -> Tensor {
        guard let l1 = encoded.maps["l1"], let l2 = encoded.maps["l2"], let l3 = encoded.maps["l3"], let l4 = encoded.maps["l4"] else {
            preconditionFailure("ESPNetv2 decoder needs the l1...l4 maps of its own backbone")
        }
        let d1 = a.tensor("d1", [64, l4.height, l4.width])
        dec1.forward(l4, into: d1, arena: a)
        capture?("bu_dec_l1", d1)
        let y2 = upAndMerge(d1, skip: l3, merge: merge2, bn: br2, slopes: br2Slopes, level: 2, capture: capture, arena: a)
        let d2 = a.tensor("d2", [48, y2.height, y2.width])
        dec2.forward(y2, into: d2, arena: a)
        capture?("bu_dec_l2", d2)
        let y3 = upAndMerge(d2, skip: l2, merge: merge3, bn: br3, slopes: br3Slopes, level: 3, capture: capture, arena: a)
        let d3 = a.tensor("d3", [32, y3.height, y3.width])
        dec3.forward(y3, into: d3, arena: a)
        capture?("bu_dec_l3", d3)
        let y4 = upAndMerge(d3, skip: l1, merge: merge4, bn: br4, slopes: br4Slopes, level: 4, capture: capture, arena: a)
        let d4 = Tensor(uninitialized: [20, y4.height, y4.width])
        dec4.forward(y4, into: d4, arena: a)
        capture?("bu_dec_l4", d4)
        return d4
    }

    /// `BR(up2(y) + merge(skip))`: one step up the decoder. The merge's gate, the sum and the batch norm with its
    /// PReLU are applied as the upsampled rows are made.
    private func upAndMerge(_ y: Tensor, skip: Tensor, merge: PointwiseMerge, bn: BatchNorm, slopes: [Float],
                            level: Int, capture: Capture?, arena a: Arena) -> Tensor {
        // One slot for every level's map: the level below's is dead once its pyramid has read it.
        let merged = a.tensor("merge", [y.channels, skip.height, skip.width])
        let gate = merge.expanded(skip, into: merged, arena: a)
        if let capture {
            // The steps one by one, for the references only.
            let up = Tensor(uninitialized: merged.shape)
            Resize.bilinear(y, into: up, alignCorners: true)
            capture("up_l\(level)", up)
            let gated = Tensor(uninitialized: merged.shape)
            Ops.scaleChannels(merged, by: gate, into: gated)
            capture("merge_enc_dec_l\(level)", gated)
        }
        // Written over the merge itself: each value's addend is read before the value is stored in its place
        // (one slot of the input's size less: 16 MB at 1024x512).
        let out = merged
        Resize.bilinear(y, into: out, alignCorners: true, plus: merged, times: gate, scale: bn.scale, shift: bn.shift,
                        prelu: slopes)
        capture?("bu_br_l\(level)", out)
        return out
    }
}

extension WeightSet {
    /// Conv `name.conv` + BN `name.bn` folded, + PReLU `name.act` when `act`.
    func cbr(_ name: String, in cin: Int, out cout: Int, kernel: Int, stride: Int = 1, groups: Int = 1,
             act: Bool = true, eps: Float) throws(WeightError) -> Conv2D {
        var conv = try conv("\(name).conv", in: cin, out: cout, kernel: kernel, stride: stride, groups: groups)
        conv.foldBatchNorm(try batchNorm("\(name).bn", cout, eps: eps))
        if act { conv.setPReLU(try prelu("\(name).act", cout)) }
        return conv
    }

    /// The `Sequential(conv, BN, PReLU)` form: `name.cbr.0/1/2`.
    func seqCBR(_ name: String, in cin: Int, out cout: Int, kernel: Int, groups: Int = 1, eps: Float) throws(WeightError) -> Conv2D {
        var conv = try conv("\(name).cbr.0", in: cin, out: cout, kernel: kernel, groups: groups)
        conv.foldBatchNorm(try batchNorm("\(name).cbr.1", cout, eps: eps))
        conv.setPReLU(try prelu("\(name).cbr.2", cout))
        return conv
    }
}

/// EESP: grouped 1x1 reduction, four depthwise dilated 3x3 branches fused hierarchically, BN+PReLU,
/// grouped 1x1 expansion; with stride 1 a residual and a PReLU.
struct EESP {
    let reduce: Conv2D
    /// The four dilated depthwise branches, their hierarchical sums and the BN + PReLU after the concatenation.
    let middle: HierarchicalDepthwise
    /// The grouped 1x1 expansion; with stride 1 it also takes the residual and the block's PReLU.
    let expand: Conv2D
    let stride: Int

    init(_ w: WeightSet, _ name: String, in cin: Int, out cout: Int, stride: Int, dilations: [Int]) throws(WeightError) {
        let eps = ESPNetv2.bnEps
        let n = cout / 4
        self.stride = stride
        reduce = try w.cbr("\(name).proj_1x1", in: cin, out: n, kernel: 1, groups: 4, eps: eps)
        let branches = try dilations.enumerated().map { i, d throws(WeightError) in
            try w.conv("\(name).spp_dw.\(i).conv", in: n, out: n, kernel: 3, stride: stride, dilation: d, groups: n)
        }
        let catNorm = try w.batchNorm("\(name).br_after_cat.bn", cout, eps: eps)
        middle = HierarchicalDepthwise(branches: branches, scale: catNorm.scale, shift: catNorm.shift,
                                       slopes: try w.prelu("\(name).br_after_cat.act", cout))
        var expand = try w.cbr("\(name).conv_1x1_exp", in: cout, out: cout, kernel: 1, groups: 4, act: false, eps: eps)
        if stride == 1 {
            expand.setPReLU(try w.prelu("\(name).module_act", cout))
        } else {
            w.skip("\(name).module_act.weight")  // stored, unused inside a DownSampler
        }
        self.expand = expand
    }

    func forward(_ x: Tensor, into out: Tensor, arena a: Arena) {
        let n = reduce.outChannels
        let r = a.tensor("eesp.r", [n, x.height, x.width])
        reduce.forward(x, into: r, arena: a)
        let cat = a.tensor("eesp.cat", [4 * n, out.height, out.width])
        middle.forward(r, into: cat, arena: a)
        expand.forward(cat, into: out, arena: a, residual: stride == 1 ? x : nil)
    }
}

/// Strided block: `PReLU(cat[avgpool(x), EESP_s2(x)] + reinforce(image))`.
struct DownSampler {
    let eesp: EESP
    let reinforce1: Conv2D
    let reinforce2: Conv2D
    let slopes: [Float]
    let inChannels: Int

    init(_ w: WeightSet, _ name: String, in cin: Int, out cout: Int, dilations: [Int]) throws(WeightError) {
        let eps = ESPNetv2.bnEps
        inChannels = cin
        eesp = try EESP(w, "\(name).eesp", in: cin, out: cout - cin, stride: 2, dilations: dilations)
        reinforce1 = try w.cbr("\(name).inp_reinf.0", in: 3, out: 3, kernel: 3, eps: eps)
        reinforce2 = try w.cbr("\(name).inp_reinf.1", in: 3, out: cout, kernel: 1, act: false, eps: eps)
        slopes = try w.prelu("\(name).act", cout)
    }

    func forward(_ x: Tensor, image: Tensor, into out: Tensor, arena a: Arena) {
        Pooling.average3x3Stride2(x, into: Tensor(channelsOf: out, 0..<inChannels))
        eesp.forward(x, into: Tensor(channelsOf: out, inChannels..<out.channels), arena: a)
        let r1 = a.tensor("reinforce1", [3, image.height, image.width])
        reinforce1.forward(image, into: r1, arena: a)
        reinforce2.forward(r1, addingTo: out, prelu: slopes)
    }
}

/// EfficientPyrPool: project to 10 channels, five branches at scales 2, 1.5, 1, 0.5, 0.1, merge.
struct PyramidPool {
    static let scales: [Double] = [2.0, 1.5, 1.0, 0.5, 0.1]
    /// Channel shuffle over 5 groups of 10: shuffled channel `j * 5 + g` is concatenated channel `g * 10 + j`.
    static let shuffleOrder: [Int] = (0..<50).map { k in (k % 5) * 10 + k / 5 }
    let project: Conv2D
    let stages: [Conv2D]
    let catNorm: BatchNorm
    let catSlopes: [Float]
    let mergeConv: Conv2D
    let output: Conv2D

    init(_ w: WeightSet, _ name: String, in cin: Int, out cout: Int, lastBR: Bool = true) throws(WeightError) {
        let eps = ESPNetv2.bnEps
        project = try w.seqCBR("\(name).projection_layer", in: cin, out: 10, kernel: 1, eps: eps)
        stages = try (0..<5).map { i throws(WeightError) in try w.conv("\(name).stages.\(i)", in: 10, out: 10, kernel: 3, groups: 10) }
        catNorm = try w.batchNorm("\(name).merge_layer.0.br.0", 50, eps: eps)
        catSlopes = try w.prelu("\(name).merge_layer.0.br.1", 50)
        mergeConv = try w.seqCBR("\(name).merge_layer.2", in: 50, out: 10, kernel: 3, groups: 10, eps: eps)
        var last = try w.conv("\(name).merge_layer.3", in: 10, out: cout, kernel: 1, bias: !lastBR)
        if lastBR {
            last.foldBatchNorm(try w.batchNorm("\(name).br.br.0", cout, eps: eps))
            last.setPReLU(try w.prelu("\(name).br.br.1", cout))
        }
        output = last
    }

    /// Branch grid sizes for an h x w input: max(ceil(side * scale), 5), the ceil in double.
    static func branchSize(_ h: Int, _ w: Int, scale: Double) -> (Int, Int) {
        (max(Int((Double(h) * scale).rounded(.up)), 5), max(Int((Double(w) * scale).rounded(.up)), 5))
    }

    func forward(_ x: Tensor, into out: Tensor, arena a: Arena) {
        let h = x.height, w = x.width
        let p = a.tensor("pyramid.proj", [10, h, w])
        project.forward(x, into: p, arena: a)
        let cat = a.tensor("pyramid.cat", [50, h, w])
        for (i, scale) in Self.scales.enumerated() {
            let part = Tensor(channelsOf: cat, (i * 10)..<((i + 1) * 10))
            let (bh, bw) = Self.branchSize(h, w, scale: scale)
            if scale > 1 {
                // Upsampled, convolved and pooled back a band of rows at a time (the upsampled map is never whole).
                stages[i].forward(resizing: p, toHeight: bh, width: bw, alignCorners: true, poolingInto: part, arena: a,
                                  name: "pyramid.up")
            } else if scale < 1 {
                let down = a.tensor("pyramid.b\(i).in", [10, bh, bw])
                Pooling.adaptiveAverage(p, into: down)
                let conv = a.tensor("pyramid.b\(i).out", [10, bh, bw])
                stages[i].forward(down, into: conv, arena: a)
                Resize.bilinear(conv, into: part, alignCorners: true)
            } else {
                stages[i].forward(p, into: part, arena: a)
            }
        }
        // The concatenation's BN + PReLU and the channel shuffle happen while copying it into the merge
        // convolution's zero-bordered input.
        // Slots shared with maps dead by now: the projection (read only by the branches) and the bordered input
        // of the branches' and the merge's convolutions.
        let merged = a.tensor("pyramid.proj", [10, h, w])
        mergeConv.forward(cat, channelOrder: Self.shuffleOrder, scale: catNorm.scale, shift: catNorm.shift, slopes: catSlopes,
                          into: merged, arena: a, name: "conv.padded")
        output.forward(merged, into: out, arena: a)
    }
}

/// EfficientPWConv: `CBR3x3(groups = gcd)(x) * sigmoid(W · mean_hw(x))`.
struct PointwiseMerge {
    let expansion: Conv2D
    let gateWeight: [Float]
    let inChannels: Int, outChannels: Int

    init(_ w: WeightSet, _ name: String, in cin: Int, out cout: Int) throws(WeightError) {
        var a = cin, b = cout
        while b != 0 { (a, b) = (b, a % b) }
        expansion = try w.seqCBR("\(name).expansion_layer", in: cin, out: cout, kernel: 3, groups: a, eps: ESPNetv2.bnEps)
        gateWeight = try w.take("\(name).wt_layer.1.weight", [cout, cin, 1, 1])
        inChannels = cin
        outChannels = cout
    }

    /// The expansion into `out`, and the gate per output channel the block multiplies it by (applied by the caller,
    /// in the pass that adds it to the decoder's map).
    func expanded(_ x: Tensor, into out: Tensor, arena a: Arena) -> [Float] {
        let means = expansion.forwardAndInputMeans(x, into: out, arena: a)
        return (0..<outChannels).map { o -> Float in
            var z: Float = 0
            for i in 0..<inChannels { z += gateWeight[o * inChannels + i] * means[i] }
            return 1 / (1 + exp(-z))
        }
    }
}
