import Foundation

/// Element-wise and shape operations on (C, H, W) tensors. Each writes into a given output.
public enum Ops {
    /// `out[c] = x[c] * scale[c] + shift[c]`, then a PReLU with `slopes` if given. `out` may be `x`.
    public static func affine(_ x: Tensor, scale: [Float], shift: [Float], prelu slopes: [Float]? = nil, into out: Tensor) {
        precondition(x.shape == out.shape && scale.count == x.channels && shift.count == x.channels)
        let n = x.plane
        ComputeThreads.forEach(x.channels, minimumPerThread: 4) { range in
            for c in range {
                affineRow(x.channel(c), into: out.channel(c), count: n, scale: scale[c], shift: shift[c], slope: slopes?[c])
            }
        }
    }

    /// `out[c] = (x[c] + residual[c]) * scale[c] + shift[c]`, then a PReLU with `slopes` if given: `add` then
    /// `affine` in one pass over memory, with the same roundings. `out` may be `x` or `residual`.
    public static func affine(_ x: Tensor, adding residual: Tensor, scale: [Float], shift: [Float], prelu slopes: [Float]? = nil,
                              into out: Tensor) {
        precondition(x.shape == out.shape && residual.shape == x.shape && scale.count == x.channels && shift.count == x.channels)
        let n = x.plane
        ComputeThreads.forEach(x.channels, minimumPerThread: 4) { range in
            for c in range {
                let a = x.channel(c), b = residual.channel(c), z = out.channel(c)
                let k = scale[c], t = shift[c]
                if let slope = slopes?[c] {
                    for i in 0..<n {
                        let v = (a[i] + b[i]) * k + t
                        z[i] = v > 0 ? v : v * slope
                    }
                } else {
                    for i in 0..<n { z[i] = (a[i] + b[i]) * k + t }
                }
            }
        }
    }

    /// Per-channel PReLU in place.
    public static func prelu(_ x: Tensor, slopes: [Float]) {
        precondition(slopes.count == x.channels)
        let n = x.plane
        ComputeThreads.forEach(x.channels, minimumPerThread: 4) { range in
            for c in range { biasPReLU(x.channel(c), n, 0, slopes[c]) }
        }
    }

    /// `out = a + b`. `out` may be `a` or `b`.
    public static func add(_ a: Tensor, _ b: Tensor, into out: Tensor) {
        precondition(a.shape == b.shape && a.shape == out.shape, "add \(a.shape) + \(b.shape) -> \(out.shape)")
        let n = a.plane
        ComputeThreads.forEach(a.channels, minimumPerThread: 4) { range in
            for c in range {
                let x = a.channel(c), y = b.channel(c), z = out.channel(c)
                for i in 0..<n { z[i] = x[i] + y[i] }
            }
        }
    }

    /// Copies `x` into `out` starting at channel `offset` (one part of a concatenation along channels).
    public static func copyChannels(_ x: Tensor, into out: Tensor, at offset: Int) {
        precondition(x.height == out.height && x.width == out.width && offset + x.channels <= out.channels)
        out.channel(offset).update(from: x.data, count: x.count)
    }

    /// Channel shuffle with `groups`: output channel `j * groups + g` is input channel `g * (C/groups) + j`.
    public static func channelShuffle(_ x: Tensor, groups: Int, into out: Tensor) {
        precondition(x.shape == out.shape && x.channels % groups == 0 && x.data != out.data)
        let perGroup = x.channels / groups
        for g in 0..<groups {
            for j in 0..<perGroup {
                out.channel(j * groups + g).update(from: x.channel(g * perGroup + j), count: x.plane)
            }
        }
    }

    /// `out[c] = x[c] * gate[c]` for a per-channel gate. `out` may be `x`.
    public static func scaleChannels(_ x: Tensor, by gate: [Float], into out: Tensor) {
        precondition(x.shape == out.shape && gate.count == x.channels)
        let n = x.plane
        ComputeThreads.forEach(x.channels, minimumPerThread: 4) { range in
            for c in range {
                let g = gate[c]
                let src = x.channel(c), dst = out.channel(c)
                for i in 0..<n { dst[i] = src[i] * g }
            }
        }
    }

    /// Index of the largest of the first `classes` channels at each pixel (the first one on ties).
    public static func argmax(_ x: Tensor, classes: Int? = nil) -> [Int32] {
        let k = classes ?? x.channels
        var result = [Int32](repeating: 0, count: x.plane)
        var best = [Float](x.channel(0).withMemoryRebound(to: Float.self, capacity: x.plane) { UnsafeBufferPointer(start: $0, count: x.plane) })
        for c in 1..<k {
            let p = x.channel(c)
            for i in 0..<x.plane where p[i] > best[i] {
                best[i] = p[i]
                result[i] = Int32(c)
            }
        }
        return result
    }

    /// Maximum over the first `classes` channels at each pixel, as a 1-channel tensor.
    public static func channelMax(_ x: Tensor, classes: Int? = nil, into out: Tensor) {
        let k = classes ?? x.channels
        precondition(out.count == x.plane && k >= 1 && k <= x.channels)
        out.data.update(from: x.channel(0), count: x.plane)
        for c in 1..<k {
            let p = x.channel(c)
            for i in 0..<x.plane where p[i] > out.data[i] { out.data[i] = p[i] }
        }
    }
}

/// `dst[i] = src[i] * scale + shift` for `count` values, then a PReLU with `slope` if given. `dst` may be `src`.
@inline(__always)
func affineRow(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float,
               slope: Float?) {
    if let slope {
        for i in 0..<count {
            let v = src[i] * scale + shift
            dst[i] = v > 0 ? v : v * slope
        }
    } else {
        for i in 0..<count { dst[i] = src[i] * scale + shift }
    }
}
