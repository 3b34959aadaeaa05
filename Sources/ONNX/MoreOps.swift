import Foundation
import Tensors

/// Operators real exports use beyond the CNN core: more activations and math, logic, comparisons, the reduction
/// family, arg-max/min, cumulative sums, triangles, element gathers, top-k, block rearrangements and the
/// instance and group normalisations. Written from the ONNX operator specification.
enum MoreOps {
    static let operators: Set<String> = [
        "Cos", "Sin", "Tan", "Acos", "Asin", "Atan", "Cosh", "Sinh", "Acosh", "Asinh", "Atanh", "Softplus", "Softsign",
        "Mish", "Round", "Sign", "Selu", "Celu", "ThresholdedRelu", "Shrink", "Swish", "IsNaN", "IsInf",
        "Not", "And", "Or", "Xor", "GreaterOrEqual", "LessOrEqual", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Mod",
        "Sum", "Mean", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
        "ArgMax", "ArgMin", "CumSum", "Trilu", "GatherElements", "DepthToSpace", "SpaceToDepth",
        "InstanceNormalization", "GroupNormalization", "TopK", "CastLike",
    ]

    static func floatFunction(_ node: Node) throws(ONNXError) -> ((Double) -> Double)? {
        switch node.op {
        case "Cos": return { cos($0) }
        case "Sin": return { sin($0) }
        case "Tan": return { tan($0) }
        case "Acos": return { acos($0) }
        case "Asin": return { asin($0) }
        case "Atan": return { atan($0) }
        case "Cosh": return { cosh($0) }
        case "Sinh": return { sinh($0) }
        case "Acosh": return { acosh($0) }
        case "Asinh": return { asinh($0) }
        case "Atanh": return { atanh($0) }
        case "Softplus": return { $0 > 30 ? $0 : log1p(exp($0)) }
        case "Softsign": return { $0 / (1 + abs($0)) }
        case "Mish": return { x in x * tanh(x > 30 ? x : log1p(exp(x))) }
        case "Round": return { $0.rounded(.toNearestOrEven) }
        case "Selu":
            let alpha = Double(try node.float("alpha", 1.67326319217681884765625))
            let gamma = Double(try node.float("gamma", 1.05070102214813232421875))
            return { $0 > 0 ? gamma * $0 : gamma * (alpha * exp($0) - alpha) }
        case "Celu":
            let alpha = Double(try node.float("alpha", 1))
            return { max(0, $0) + min(0, alpha * (exp($0 / alpha) - 1)) }
        case "ThresholdedRelu":
            let alpha = Double(try node.float("alpha", 1))
            return { $0 > alpha ? $0 : 0 }
        case "Shrink":
            let lambd = Double(try node.float("lambd", 0.5)), bias = Double(try node.float("bias", 0))
            return { $0 < -lambd ? $0 + bias : ($0 > lambd ? $0 - bias : 0) }
        case "Swish":
            let alpha = Double(try node.float("alpha", 1))
            return { $0 / (1 + exp(-alpha * $0)) }
        default: return nil
        }
    }

    static func execute(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> [Value]? {
        func input(_ i: Int) throws(ONNXError) -> Value {
            guard i < inputs.count, let value = inputs[i] else { throw node.fail("input \(i) is missing") }
            return value
        }
        func optional(_ i: Int) -> Value? { i < inputs.count ? inputs[i] : nil }
        if let f = try floatFunction(node) {
            let x = try input(0)
            return [Value(shape: x.shape, floats: x.floatValues.map { Float(f(Double($0))) })]
        }
        switch node.op {
        case "Sign":
            let x = try input(0)
            if let ints = x.ints { return [Value(shape: x.shape, ints: ints.map { $0.signum() })] }
            return [Value(shape: x.shape, floats: x.floats.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) })]
        case "IsNaN":
            let x = try input(0)
            return [Value(shape: x.shape, ints: x.floatValues.map { $0.isNaN ? 1 : 0 })]
        case "IsInf":
            let x = try input(0)
            let negative = try node.int("detect_negative", 1) == 1, positive = try node.int("detect_positive", 1) == 1
            return [Value(shape: x.shape, ints: x.floatValues.map { ($0 == .infinity && positive) || ($0 == -.infinity && negative) ? 1 : 0 })]
        case "Not":
            let x = try input(0)
            return [Value(shape: x.shape, ints: x.intValues.map { $0 == 0 ? 1 : 0 })]
        case "And": return [try Broadcast.ints(try input(0), try input(1), node) { $0 != 0 && $1 != 0 ? 1 : 0 }]
        case "Or": return [try Broadcast.ints(try input(0), try input(1), node) { $0 != 0 || $1 != 0 ? 1 : 0 }]
        case "Xor": return [try Broadcast.ints(try input(0), try input(1), node) { ($0 != 0) != ($1 != 0) ? 1 : 0 }]
        // Two's complement widening keeps and/or/xor exact for every integer width.
        case "BitwiseAnd": return [try Broadcast.ints(try input(0), try input(1), node) { $0 & $1 }]
        case "BitwiseOr": return [try Broadcast.ints(try input(0), try input(1), node) { $0 | $1 }]
        case "BitwiseXor": return [try Broadcast.ints(try input(0), try input(1), node) { $0 ^ $1 }]
        case "GreaterOrEqual", "LessOrEqual":
            let a = try input(0), b = try input(1), greater = node.op == "GreaterOrEqual"
            if a.isInt && b.isInt { return [try Broadcast.ints(a, b, node) { (greater ? $0 >= $1 : $0 <= $1) ? 1 : 0 }] }
            return [Elementwise.bool(try Broadcast.floats(a, b, node) { (greater ? $0 >= $1 : $0 <= $1) ? 1 : 0 })]
        case "Mod":
            let a = try input(0), b = try input(1), fmod = try node.int("fmod", 0) == 1
            if a.isInt && b.isInt {
                return [try Broadcast.ints(a, b, node) { x, y in
                    guard y != 0 else { return 0 }
                    let r = x % y
                    return fmod || r == 0 || (r < 0) == (y < 0) ? r : r + y  // the divisor's sign unless fmod
                }]
            }
            return [try Broadcast.floats(a, b, node) { x, y in
                let r = Float(Foundation.fmod(Double(x), Double(y)))
                return fmod || r == 0 || (r < 0) == (y < 0) ? r : r + y
            }]
        case "Sum", "Mean":
            var total = try input(0)
            if node.op == "Sum", inputs.allSatisfy({ $0?.isInt ?? false }) {
                for i in 1..<max(1, inputs.count) { total = try Broadcast.ints(total, try input(i), node, &+) }
                return [total]
            }
            for i in 1..<max(1, inputs.count) { total = try Broadcast.floats(total, try input(i), node, +) }
            let n = Float(inputs.count)
            return [node.op == "Mean" ? Value(shape: total.shape, floats: total.floatValues.map { $0 / n }) : Value(shape: total.shape, floats: total.floatValues)]
        case "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp":
            return [try reduce(node, inputs)]
        case "ArgMax", "ArgMin": return [try argExtreme(node, try input(0))]
        case "CumSum": return [try cumulativeSum(node, try input(0), try input(1))]
        case "Trilu": return [try trilu(node, try input(0), optional(1))]
        case "GatherElements": return [try gatherElements(node, try input(0), try input(1))]
        case "DepthToSpace", "SpaceToDepth": return [try blocks(node, try input(0))]
        case "InstanceNormalization", "GroupNormalization": return [try groupNorm(node, inputs)]
        case "TopK": return try topK(node, try input(0), try input(1))
        case "CastLike":
            var cast = node
            cast.op = "Cast"
            return try Operators.execute(cast, [try input(0)], arena: Arena())
        default: return nil
        }
    }

    /// The axes a reduction runs over (attribute before opset 18, input after); nil when it is the identity.
    static func axes(_ node: Node, _ inputs: [Value?], rank: Int) throws(ONNXError) -> [Int]? {
        var axes = inputs.count > 1 ? inputs[1]?.intValues.map { Int($0) } : try node.ints("axes")
        if axes?.isEmpty ?? true {
            if try node.int("noop_with_empty_axes", 0) == 1 { return nil }
            axes = Array(0..<rank)
        }
        return try axes!.map { (a: Int) throws(ONNXError) in try ShapeOps.axis(a, rank: rank, node) }
    }

    /// Every Reduce operator: accumulated in Double, an empty reduction giving the operation's identity.
    static func reduce(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let x = inputs.first ?? nil else { throw node.fail("no input") }
        guard let axes = try axes(node, inputs, rank: x.rank) else { return x }
        let keep = try node.int("keepdims", 1) == 1
        var shape = x.shape
        for a in axes { shape[a] = 1 }
        let count = shape.reduce(1, *), n = Double(x.count / max(count, 1))
        let start: Double
        switch node.op {
        case "ReduceMax": start = -.infinity
        case "ReduceMin": start = .infinity
        case "ReduceProd": start = 1
        default: start = 0
        }
        var acc = [Double](repeating: start, count: count)
        let target = Broadcast.indices(of: shape, in: x.shape), xs = x.floatValues
        for i in 0..<xs.count {
            let v = Double(xs[i]), t = target[i]
            switch node.op {
            case "ReduceMax": acc[t] = max(acc[t], v)
            case "ReduceMin": acc[t] = min(acc[t], v)
            case "ReduceProd": acc[t] *= v
            case "ReduceL1": acc[t] += abs(v)
            case "ReduceL2", "ReduceSumSquare": acc[t] += v * v
            case "ReduceLogSumExp": acc[t] += exp(v)
            default: acc[t] += v
            }
        }
        switch node.op {
        case "ReduceMean": acc = acc.map { $0 / n }
        case "ReduceL2": acc = acc.map { $0.squareRoot() }
        case "ReduceLogSum", "ReduceLogSumExp": acc = acc.map { log($0) }
        default: break
        }
        let outShape = keep ? shape : x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        if x.isInt, ["ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceSumSquare"].contains(node.op), x.count > 0 {
            return Value(shape: outShape, ints: acc.map { Int64($0) })
        }
        return Value(shape: outShape, floats: acc.map { Float($0) })
    }

    static func argExtreme(_ node: Node, _ x: Value) throws(ONNXError) -> Value {
        let axis = try ShapeOps.axis(try node.int("axis", 0), rank: x.rank, node)
        let keep = try node.int("keepdims", 1) == 1, last = try node.int("select_last_index", 0) == 1
        let isMax = node.op == "ArgMax", xs = x.floatValues
        var out: [Int64] = []
        NeuralOps.lanes(x.shape, axis: axis) { start, stride, count in
            var best = 0
            for j in 1..<max(1, count) {
                let v = xs[start + j * stride], b = xs[start + best * stride]
                if isMax ? (v > b || (last && v == b)) : (v < b || (last && v == b)) { best = j }
            }
            out.append(Int64(best))
        }
        // lanes walks outer then inner: the order of the output with the axis removed.
        var shape = x.shape
        if keep { shape[axis] = 1 } else { shape.remove(at: axis) }
        return Value(shape: shape, ints: out)
    }

    static func cumulativeSum(_ node: Node, _ x: Value, _ axisValue: Value) throws(ONNXError) -> Value {
        guard let raw = axisValue.intValues.first else { throw node.fail("no axis") }
        let axis = try ShapeOps.axis(Int(raw), rank: x.rank, node)
        let exclusive = try node.int("exclusive", 0) == 1, reverse = try node.int("reverse", 0) == 1
        var floats = x.floatValues.map { Double($0) }
        let source = floats
        var ints = x.ints
        NeuralOps.lanes(x.shape, axis: axis) { start, stride, count in
            var sum = 0.0, isum: Int64 = 0
            for step in 0..<count {
                let j = reverse ? count - 1 - step : step, i = start + j * stride
                let v = source[i], iv = ints?[i] ?? 0
                if exclusive { floats[i] = sum; ints?[i] = isum }
                sum += v; isum &+= iv
                if !exclusive { floats[i] = sum; ints?[i] = isum }
            }
        }
        if let ints { return Value(shape: x.shape, ints: ints) }
        return Value(shape: x.shape, floats: floats.map { Float($0) })
    }

    static func trilu(_ node: Node, _ x: Value, _ k: Value?) throws(ONNXError) -> Value {
        guard x.rank >= 2 else { throw node.fail("input of rank \(x.rank)") }
        let upper = try node.int("upper", 1) == 1, diagonal = Int(k?.intValues.first ?? 0)
        let rows = x.shape[x.rank - 2], columns = x.shape[x.rank - 1]
        func keep(_ i: Int) -> Bool {
            let r = (i / columns) % max(rows, 1), c = i % columns
            return upper ? c - r >= diagonal : c - r <= diagonal
        }
        if let ints = x.ints { return Value(shape: x.shape, ints: ints.indices.map { keep($0) ? ints[$0] : 0 }) }
        return Value(shape: x.shape, floats: x.floats.indices.map { keep($0) ? x.floats[$0] : 0 })
    }

    static func gatherElements(_ node: Node, _ x: Value, _ indices: Value) throws(ONNXError) -> Value {
        let axis = try ShapeOps.axis(try node.int("axis", 0), rank: x.rank, node)
        guard indices.rank == x.rank else { throw node.fail("indices of rank \(indices.rank) for data of rank \(x.rank)") }
        let strides = Value.strides(x.shape), outStrides = Value.strides(indices.shape), picks = indices.intValues
        var source = [Int](repeating: 0, count: indices.count)
        for i in 0..<indices.count {
            var rest = i, index = 0
            for a in 0..<x.rank {
                var p = rest / outStrides[a]
                rest %= outStrides[a]
                if a == axis {
                    let raw = Int(picks[i]), size = x.shape[a]
                    p = raw < 0 ? raw + size : raw
                    guard p >= 0 && p < size else { throw node.fail("index \(raw) out of range for size \(size)") }
                }
                index += p * strides[a]
            }
            source[i] = index
        }
        return ShapeOps.gathered(x, shape: indices.shape, source)
    }

    /// DepthToSpace (DCR or CRD) and SpaceToDepth on NxCxHxW.
    static func blocks(_ node: Node, _ x: Value) throws(ONNXError) -> Value {
        guard x.rank == 4 else { throw node.fail("input of shape \(x.shape): only NxCxHxW") }
        let b = try node.int("blocksize", 0), n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        guard b > 0 else { throw node.fail("blocksize \(b)") }
        let shape: [Int], source: [Int]
        if node.op == "DepthToSpace" {
            guard c % (b * b) == 0 else { throw node.fail("\(c) channels for blocksize \(b)") }
            let crd = try node.string("mode", "DCR") == "CRD", oc = c / (b * b)
            shape = [n, oc, h * b, w * b]
            var s: [Int] = []
            s.reserveCapacity(x.count)
            for ni in 0..<n { for o in 0..<oc { for y in 0..<(h * b) { for xx in 0..<(w * b) {
                let by = y % b, bx = xx % b
                let channel = crd ? (o * b + by) * b + bx : (by * b + bx) * oc + o
                s.append(((ni * c + channel) * h + y / b) * w + xx / b)
            } } } }
            source = s
        } else {
            guard h % b == 0, w % b == 0 else { throw node.fail("\(h)x\(w) for blocksize \(b)") }
            shape = [n, c * b * b, h / b, w / b]
            var s: [Int] = []
            s.reserveCapacity(x.count)
            for ni in 0..<n { for oc in 0..<(c * b * b) { for y in 0..<(h / b) { for xx in 0..<(w / b) {
                let ch = oc % c, block = oc / c, by = block / b, bx = block % b
                s.append(((ni * c + ch) * h + y * b + by) * w + xx * b + bx)
            } } } }
            source = s
        }
        return ShapeOps.gathered(x, shape: shape, source)
    }

    /// InstanceNormalization (one group per channel) and GroupNormalization: statistics over each group of channels
    /// and the spatial axes, then a per-channel (or, before opset 21, per-group) scale and bias.
    static func groupNorm(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard inputs.count >= 3, let x = inputs[0], let scale = inputs[1], let bias = inputs[2], x.rank >= 2 else {
            throw node.fail("needs X, scale and B")
        }
        let n = x.shape[0], c = x.shape[1], spatial = x.count / max(1, n * c)
        let groups = node.op == "InstanceNormalization" ? c : try node.int("num_groups", 0)
        guard groups > 0, c % groups == 0 else { throw node.fail("\(groups) groups for \(c) channels") }
        let eps = Double(try node.float("epsilon", 1e-5))
        let g = scale.floatValues, b = bias.floatValues
        guard (g.count == c || g.count == groups), g.count == b.count else { throw node.fail("scale of \(g.count) for \(c) channels") }
        let perGroup = c / groups, xs = x.floatValues
        var out = [Float](repeating: 0, count: x.count)
        for ni in 0..<n {
            for group in 0..<groups {
                let start = (ni * c + group * perGroup) * spatial, size = perGroup * spatial
                var mean = 0.0
                for i in start..<(start + size) { mean += Double(xs[i]) }
                mean /= Double(size)
                var variance = 0.0
                for i in start..<(start + size) { let d = Double(xs[i]) - mean; variance += d * d }
                let inverse = 1 / (variance / Double(size) + eps).squareRoot()
                for i in start..<(start + size) {
                    let channel = group * perGroup + (i - start) / spatial, k = g.count == c ? channel : group
                    out[i] = Float((Double(xs[i]) - mean) * inverse * Double(g[k]) + Double(b[k]))
                }
            }
        }
        return Value(shape: x.shape, floats: out)
    }

    /// The k largest (or smallest) along an axis, ties to the lower index, with their indices.
    static func topK(_ node: Node, _ x: Value, _ kValue: Value) throws(ONNXError) -> [Value] {
        let axis = try ShapeOps.axis(try node.int("axis", -1), rank: x.rank, node)
        let largest = try node.int("largest", 1) == 1
        guard let k = kValue.intValues.first.map({ Int($0) }), k >= 0, k <= x.shape[axis] else { throw node.fail("k \(kValue.intValues) for axis size \(x.shape[axis])") }
        var shape = x.shape
        shape[axis] = k
        let inner = x.shape[(axis + 1)...].reduce(1, *), size = x.shape[axis], outer = x.shape[..<axis].reduce(1, *)
        let xs = x.floatValues, ints = x.ints
        var positions = [Int](repeating: 0, count: outer * k * inner), picks = [Int64](repeating: 0, count: positions.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * size * inner + i
                let order = (0..<size).sorted { a, b in
                    let va = xs[base + a * inner], vb = xs[base + b * inner]
                    if let ints {
                        let ia = ints[base + a * inner], ib = ints[base + b * inner]
                        return ia != ib ? (largest ? ia > ib : ia < ib) : a < b
                    }
                    return va != vb ? (largest ? va > vb : va < vb) : a < b
                }
                for j in 0..<k {
                    let target = (o * k + j) * inner + i
                    positions[target] = base + order[j] * inner
                    picks[target] = Int64(order[j])
                }
            }
        }
        return [ShapeOps.gathered(x, shape: shape, positions), Value(shape: shape, ints: picks)]
    }
}
