import Foundation
import Tensors

/// Resize (opset 11 and later) and Upsample in every mode ONNX defines: nearest with its four roundings, linear and
/// cubic (with `cubic_coeff_a`, `exclude_outside` and `antialias`), each coordinate transformation, scales or sizes,
/// `axes` and `keep_aspect_ratio_policy`. Interpolation is separable, so the value is resized one axis at a time,
/// each output position a weighted sum of a few input positions along that axis (weights in Double, as the
/// specification's arithmetic is).
enum ResizeOp {
    struct Settings {
        var mode = "nearest", transform = "half_pixel", nearestMode = "round_prefer_floor"
        var cubicA = -0.75, excludeOutside = false, antialias = false, extrapolation = 0.0
    }

    /// Which input positions (and weights) make output position `d` along an axis of `inSize`; nil where
    /// tf_crop_and_resize falls outside the input (the extrapolation value).
    static func taps(_ d: Int, inSize: Int, outSize: Int, scale: Double, roi: (Double, Double),
                     _ s: Settings) -> [(Int, Double)]? {
        let n = Double(inSize), outWidth = scale * n, y = Double(d)
        let x: Double
        switch s.transform {
        case "align_corners": x = outWidth == 1 ? 0 : y * (n - 1) / (outWidth - 1)
        case "asymmetric": x = y / scale
        case "tf_crop_and_resize":
            x = (outWidth == 1 ? (roi.1 - roi.0) * (n - 1) / 2 : y * (roi.1 - roi.0) * (n - 1) / (outWidth - 1)) + roi.0 * (n - 1)
            if x < 0 || x > n - 1 { return nil }
        case "pytorch_half_pixel": x = outWidth == 1 ? -0.5 : (y + 0.5) / scale - 0.5
        case "half_pixel_symmetric":
            let offset = n / 2 * (1 - Double(outSize) / outWidth)
            x = offset + (y + 0.5) / scale - 0.5
        default: x = (y + 0.5) / scale - 0.5  // half_pixel (the loader refuses other names)
        }
        // The specification takes the positions nearest x, the lower one on a tie: for a whole x, x itself is the
        // upper of the central pair (fraction 1).
        let isWhole = x == x.rounded(.down)
        let fraction = isWhole ? 1 : x - x.rounded(.down)
        let base = Int(x.rounded(.up)) - 1
        func clamp(_ i: Int) -> Int { min(max(i, 0), inSize - 1) }
        switch s.mode {
        case "nearest":
            let upper: Bool
            switch s.nearestMode {
            case "round_prefer_ceil": upper = isWhole || fraction >= 0.5
            case "floor": upper = isWhole
            case "ceil": upper = true
            default: upper = isWhole || fraction > 0.5  // round_prefer_floor
            }
            return [(clamp(upper ? base + 1 : base), 1)]
        default:
            var weights: [Double], start: Int
            let shrink = s.antialias ? min(scale, 1) : 1
            if s.mode == "linear" {
                start = Int((-1 / shrink).rounded(.down)) + 1
                weights = (start..<(2 - start)).map { i in max(0, 1 - abs((Double(i) - fraction) * shrink)) }
            } else {
                let a = s.cubicA
                func cubic(_ t: Double) -> Double {
                    let t = abs(t)
                    if t <= 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
                    if t < 2 { return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a }
                    return 0
                }
                start = Int((-2 / shrink).rounded(.down)) + 1
                weights = (start..<(2 - start)).map { i in cubic((Double(i) - fraction) * shrink) }
            }
            if s.antialias || s.excludeOutside {
                if s.excludeOutside {
                    for (k, i) in (start..<(2 - start)).enumerated() where base + i < 0 || base + i >= inSize { weights[k] = 0 }
                }
                let total = weights.reduce(0, +)
                weights = weights.map { $0 / total }
            }
            return (start..<(2 - start)).enumerated().map { k, i in (clamp(base + i), weights[k]) }
        }
    }

    /// `values` of `shape` resized along `axis` to `outSize`.
    static func along(_ values: [Double], _ shape: [Int], axis: Int, outSize: Int, scale: Double, roi: (Double, Double),
                      _ s: Settings) -> [Double] {
        let inSize = shape[axis], inner = shape[(axis + 1)...].reduce(1, *), outer = shape[..<axis].reduce(1, *)
        let table = (0..<outSize).map { taps($0, inSize: inSize, outSize: outSize, scale: scale, roi: roi, s) }
        var out = [Double](repeating: 0, count: outer * outSize * inner)
        for o in 0..<outer {
            for d in 0..<outSize {
                let target = (o * outSize + d) * inner
                guard let taps = table[d] else {
                    for i in 0..<inner { out[target + i] = s.extrapolation }
                    continue
                }
                for (index, weight) in taps where weight != 0 {
                    let source = (o * inSize + index) * inner
                    for i in 0..<inner { out[target + i] += weight * values[source + i] }
                }
            }
        }
        return out
    }

    /// A computed output side as a whole number; scales from the model may be infinite, NaN or enormous, and
    /// those become sides the check below refuses instead of traps in the conversion.
    static func side(_ value: Double) -> Int {
        value.isFinite ? Int(max(-1, min(value, Double(ONNXGraph.maximumElements) + 1))) : -1
    }

    static func resize(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let x = inputs.first ?? nil else { throw node.fail("no input") }
        func given(_ i: Int) -> Value? { i < inputs.count ? inputs[i].flatMap { $0.count > 0 ? $0 : nil } : nil }
        var settings = Settings()
        let rank = x.rank
        var axes = Array(0..<rank)
        var scales = [Double](repeating: 1, count: rank), size = x.shape
        var roi = [(Double, Double)](repeating: (0, 1), count: rank)
        if node.op == "Upsample" {
            // Upsample (opsets 7 and 9): scales as an input or an attribute, positions scaled from 0 (asymmetric).
            settings.mode = try node.string("mode", "nearest")
            settings.transform = "asymmetric"
            settings.nearestMode = "floor"
            var factors = try node.floatList("scales")
            if let input = given(1) { factors = input.floatValues }
            guard factors.count == rank else { throw node.fail("\(factors.count) scales for rank \(rank)") }
            scales = factors.map { Double($0) }
            if settings.mode == "nearest", !scales.allSatisfy({ $0 == $0.rounded(.down) && $0 >= 1 }) {
                throw node.fail("nearest Upsample by scales \(factors): only whole scales are defined")
            }
            size = zip(x.shape, scales).map { side(Double($0) * $1) }
        } else {
            settings.mode = try node.string("mode", "nearest")
            settings.transform = try node.string("coordinate_transformation_mode", "half_pixel")
            settings.nearestMode = try node.string("nearest_mode", "round_prefer_floor")
            settings.cubicA = Double(try node.float("cubic_coeff_a", -0.75))
            settings.excludeOutside = try node.int("exclude_outside", 0) == 1
            settings.antialias = try node.int("antialias", 0) == 1
            settings.extrapolation = Double(try node.float("extrapolation_value", 0))
            if let list = try node.ints("axes") {
                axes = try list.map { (a: Int) throws(ONNXError) in try ShapeOps.axis(a, rank: rank, node) }
            }
            if let sizes = given(3) {
                let wanted = sizes.intValues.map { Int($0) }
                guard wanted.count == axes.count else { throw node.fail("\(wanted.count) sizes for \(axes.count) axes") }
                for (i, a) in axes.enumerated() {
                    size[a] = wanted[i]
                    scales[a] = Double(wanted[i]) / Double(x.shape[a])
                }
                let policy = try node.string("keep_aspect_ratio_policy", "stretch")
                if policy != "stretch" {
                    let chosen = axes.map { scales[$0] }
                    let scale = policy == "not_larger" ? chosen.min()! : chosen.max()!
                    for a in axes {
                        scales[a] = scale
                        size[a] = side(scale * Double(x.shape[a]) + 0.5)
                    }
                }
            } else if let factors = given(2) {
                let values = factors.floatValues
                guard values.count == axes.count else { throw node.fail("\(values.count) scales for \(axes.count) axes") }
                for (i, a) in axes.enumerated() {
                    scales[a] = Double(values[i])
                    size[a] = side(scales[a] * Double(x.shape[a]))
                }
            } else {
                throw node.fail("neither scales nor sizes given")
            }
            if settings.transform == "tf_crop_and_resize" {
                guard let box = given(1)?.floatValues, box.count == 2 * axes.count else {
                    throw node.fail("tf_crop_and_resize needs a roi of 2 values per axis")
                }
                for (i, a) in axes.enumerated() { roi[a] = (Double(box[i]), Double(box[i + axes.count])) }
            }
        }
        guard size.allSatisfy({ $0 > 0 }), Value.elementCount(size) != nil else {
            throw node.fail("resizing \(x.shape) to \(size)")
        }
        if let fast = bilinear(x, size: size, scales: scales, settings) { return fast }
        var shape = x.shape
        if let ints = x.ints, settings.mode == "nearest" {
            // Nearest only moves values: integers stay exact.
            var positions = (0..<ints.count).map { Double($0) }
            for a in axes where !isIdentity(scales[a], size[a], shape[a], roi[a]) {
                positions = along(positions, shape, axis: a, outSize: size[a], scale: scales[a], roi: roi[a], settings)
                shape[a] = size[a]
            }
            return Value(shape: shape, ints: positions.map { ints[Int($0)] })
        }
        var values = x.floatValues.map { Double($0) }
        for a in axes where !isIdentity(scales[a], size[a], shape[a], roi[a]) {
            values = along(values, shape, axis: a, outSize: size[a], scale: scales[a], roi: roi[a], settings)
            shape[a] = size[a]
        }
        return Value(shape: shape, floats: values.map { Float($0) })
    }

    static func isIdentity(_ scale: Double, _ outSize: Int, _ inSize: Int, _ roi: (Double, Double)) -> Bool {
        abs(scale - 1) <= 1e-9 && outSize == inSize && abs(roi.0) <= 1e-9 && abs(roi.1 - 1) <= 1e-9
    }

    /// The bilinear resize of CNN decoders (1xCxHxW, only H and W change, scales equal to the size ratios) on
    /// Tensors' kernel, whose coordinate rules are exactly these modes' (half-pixel centres clamped at the border).
    static func bilinear(_ x: Value, size: [Int], scales: [Double], _ s: Settings) -> Value? {
        guard s.mode == "linear", !s.excludeOutside, x.rank == 4, x.shape[0] == 1, !x.isInt, size[0] == 1, size[1] == x.shape[1],
              size[2] > 1, size[3] > 1, s.transform == "align_corners" || s.transform == "half_pixel" || s.transform == "pytorch_half_pixel",
              scales[2] == Double(size[2]) / Double(x.shape[2]), scales[3] == Double(size[3]) / Double(x.shape[3]),
              !s.antialias || (size[2] >= x.shape[2] && size[3] >= x.shape[3]) else { return nil }
        let c = x.shape[1], h = x.shape[2], w = x.shape[3], oh = size[2], ow = size[3]
        return x.withTensor([c, h, w]) { input in
            Value.written(size, as: [c, oh, ow]) { Resize.bilinear(input, into: $0, alignCorners: s.transform == "align_corners") }
        }
    }
}
