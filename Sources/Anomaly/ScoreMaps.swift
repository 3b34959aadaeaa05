import Foundation
import Tensors

/// Per-pixel score maps at an output resolution (higher = more anomalous).
public enum ScoreMaps {
    /// Upsamples a grid (gw x gh) to width x height: bilinear with half-pixel centres, or nearest
    /// (`floor(dst · in / out)`).
    public static func upsample(_ grid: [Float], gridWidth gw: Int, gridHeight gh: Int, width: Int, height: Int, bilinear: Bool) -> [Float] {
        if bilinear {
            let source = Tensor(shape: [1, gh, gw], values: grid)
            let out = Tensor(uninitialized: [1, height, width])
            Resize.bilinear(source, into: out, alignCorners: false)
            return out.array
        }
        var out = [Float](repeating: 0, count: width * height)
        let columns = (0..<width).map { min(gw - 1, $0 * gw / width) }
        for y in 0..<height {
            let row = min(gh - 1, y * gh / height) * gw
            for x in 0..<width { out[y * width + x] = grid[row + columns[x]] }
        }
        return out
    }

    /// The baselines on the logits bilinearly resized to width x height, over the first `classes` channels:
    /// max-logit (−max), MSP (−max log-softmax, rank-equal to 1 − max softmax) and softmax entropy.
    public static func baselines(logits: Tensor, classes: Int, width: Int, height: Int) -> (maxLogit: [Float], msp: [Float], entropy: [Float]) {
        var resized = logits
        if logits.width != width || logits.height != height {
            resized = Tensor(uninitialized: [logits.channels, height, width])
            Resize.bilinear(logits, into: resized, alignCorners: false)
        }
        let n = width * height
        var maxLogit = [Float](repeating: 0, count: n)
        var msp = [Float](repeating: 0, count: n)
        var entropy = [Float](repeating: 0, count: n)
        let planes = (0..<classes).map { resized.channelBuffer($0) }
        maxLogit.withUnsafeMutableBufferPointer { ml in
            msp.withUnsafeMutableBufferPointer { ms in
                entropy.withUnsafeMutableBufferPointer { en in
                    ComputeThreads.forEach(n, minimumPerThread: 4096) { range in
                        for i in range {
                            var top = -Float.infinity
                            for c in 0..<classes { top = max(top, planes[c][i]) }
                            var sum = 0.0, weighted = 0.0
                            for c in 0..<classes {
                                let shifted = Double(planes[c][i] - top)
                                let e = exp(shifted)
                                sum += e
                                weighted += e * shifted
                            }
                            let logSum = log(sum)
                            ml[i] = -top
                            ms[i] = Float(logSum)              // −max log-softmax = log Σ exp(l − max)
                            en[i] = Float(logSum - weighted / sum)  // −Σ p log p
                        }
                    }
                }
            }
        }
        return (maxLogit, msp, entropy)
    }

    /// The cluster method's score map at width x height. `negativeMaxLogit` (−m(p) at that size) is needed
    /// by d1 and d3 only.
    public static func clusters(_ analysis: GridAnalysis, variant: ScoreVariant, width: Int, height: Int,
                                negativeMaxLogit: [Float]? = nil) -> [Float] {
        let gw = analysis.gridWidth, gh = analysis.gridHeight
        switch variant {
        case .d2b:
            return upsample(analysis.gridScore, gridWidth: gw, gridHeight: gh, width: width, height: height, bilinear: true)
        case .d2n:
            return upsample(analysis.gridScore, gridWidth: gw, gridHeight: gh, width: width, height: height, bilinear: false)
        case .d1, .d3:
            guard let negativeMaxLogit, negativeMaxLogit.count == width * height else {
                preconditionFailure("variants d1 and d3 need −max-logit at the output size")
            }
            let ood = upsample(analysis.oodCells.map { $0 ? 1 : 0 }, gridWidth: gw, gridHeight: gh, width: width, height: height, bilinear: false)
            if variant == .d1 {
                return zip(negativeMaxLogit, ood).map { $0 + 1000 * $1 }
            }
            let floor = (negativeMaxLogit.min() ?? 0) - 1
            return zip(negativeMaxLogit, ood).map { $1 > 0.5 ? $0 : floor }
        }
    }
}
