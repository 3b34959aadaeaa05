import Foundation
import Tensors

/// Per-pixel score maps at an output resolution (higher = more anomalous).
public enum ScoreMaps {
    /// Upsamples a grid (gw x gh) to width x height: bilinear with half-pixel centres, or nearest
    /// (`floor(dst · in / out)`).
    /// With `stride` > 1 only every `stride`-th row and column from 0 is made (the values those pixels have in
    /// the full map): ⌈width/stride⌉ x ⌈height/stride⌉ values.
    public static func upsample(_ grid: [Float], gridWidth gw: Int, gridHeight gh: Int, width: Int, height: Int, bilinear: Bool,
                                stride: Int = 1) -> [Float] {
        if bilinear {
            let source = Tensor(shape: [1, gh, gw], values: grid)
            return Resize.bilinear(source, width: width, height: height, stride: stride, alignCorners: false).array
        }
        return nearest(grid, gridWidth: gw, gridHeight: gh, width: width, height: height, stride: stride)
    }

    /// The bilinear upsampling of `upsample` at full size, written into `out` (kept by the caller from frame to frame).
    public static func upsampleBilinear(_ grid: [Float], gridWidth gw: Int, gridHeight gh: Int, width: Int, height: Int,
                                        into out: inout [Float]) {
        Resize.bilinear(Tensor(shape: [1, gh, gw], values: grid), width: width, height: height, alignCorners: false, into: &out)
    }

    /// Nearest upsampling (`floor(dst · in / out)`) of any per-cell value, e.g. the flagged cells to a pixel mask.
    /// Inlinable so callers in other modules get it specialised for their type: unspecialised, every pixel's copy
    /// went through the generic value witness (3% of a 512x256 run's CPU for the annotate stage's mask).
    @inlinable
    public static func nearest<T>(_ grid: [T], gridWidth gw: Int, gridHeight gh: Int, width: Int, height: Int,
                                  stride: Int = 1) -> [T] {
        let columns = Swift.stride(from: 0, to: width, by: stride).map { min(gw - 1, $0 * gw / width) }
        var out: [T] = []
        out.reserveCapacity(columns.count * ((height + stride - 1) / stride))
        for y in Swift.stride(from: 0, to: height, by: stride) {
            let row = min(gh - 1, y * gh / height) * gw
            for column in columns { out.append(grid[row + column]) }
        }
        return out
    }

    /// `values` (width x height, row-major) at every `stride`-th row and column from 0.
    public static func sampled<T>(_ values: [T], width: Int, height: Int, stride: Int) -> [T] {
        guard stride > 1 else { return values }
        var out: [T] = []
        out.reserveCapacity(((width + stride - 1) / stride) * ((height + stride - 1) / stride))
        for y in Swift.stride(from: 0, to: height, by: stride) {
            for x in Swift.stride(from: 0, to: width, by: stride) { out.append(values[y * width + x]) }
        }
        return out
    }

    /// The baselines on the logits bilinearly resized to width x height, over the first `classes` channels:
    /// max-logit (−max), MSP (−max log-softmax, rank-equal to 1 − max softmax) and softmax entropy.
    /// With `stride` > 1, only at every `stride`-th row and column (the values those pixels have at full size).
    public static func baselines(logits: Tensor, classes: Int, width: Int, height: Int, stride: Int = 1)
        -> (maxLogit: [Float], msp: [Float], entropy: [Float]) {
        var resized = logits
        if logits.width != width || logits.height != height || stride > 1 {
            resized = Resize.bilinear(logits, width: width, height: height, stride: stride, alignCorners: false)
        }
        let n = resized.plane
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
                                negativeMaxLogit: [Float]? = nil, stride: Int = 1) -> [Float] {
        let gw = analysis.gridWidth, gh = analysis.gridHeight
        switch variant {
        case .d2b:
            return upsample(analysis.gridScore, gridWidth: gw, gridHeight: gh, width: width, height: height, bilinear: true, stride: stride)
        case .d2n:
            return upsample(analysis.gridScore, gridWidth: gw, gridHeight: gh, width: width, height: height, bilinear: false, stride: stride)
        case .d1, .d3:
            let count = ((width + stride - 1) / stride) * ((height + stride - 1) / stride)
            guard let negativeMaxLogit, negativeMaxLogit.count == count else {
                preconditionFailure("variants d1 and d3 need −max-logit at the output size")
            }
            let ood = upsample(analysis.oodCells.map { $0 ? 1 : 0 }, gridWidth: gw, gridHeight: gh, width: width, height: height,
                               bilinear: false, stride: stride)
            if variant == .d1 {
                return zip(negativeMaxLogit, ood).map { $0 + 1000 * $1 }
            }
            let floor = (negativeMaxLogit.min() ?? 0) - 1
            return zip(negativeMaxLogit, ood).map { $1 > 0.5 ? $0 : floor }
        }
    }
}
