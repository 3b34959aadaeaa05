import Tensors
import Foundation

/// Numpy-style broadcasting for the element-wise operators.
enum Broadcast {
    static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let a = [Int](repeating: 1, count: rank - a.count) + a
        let b = [Int](repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for (x, y) in zip(a, b) {
            if x == y || y == 1 { out.append(x) } else if x == 1 { out.append(y) } else { return nil }
        }
        // Expand's target comes from the model: a negative or enormous side is no shape.
        return Value.elementCount(out) == nil ? nil : out
    }

    /// For each element of `target`, the index into an array of `shape` broadcast to it.
    static func indices(of shape: [Int], in target: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
        let strides = Value.strides(padded)
        let count = target.reduce(1, *)
        var result = [Int](repeating: 0, count: count)
        var position = [Int](repeating: 0, count: target.count)
        for i in 0..<count {
            var index = 0
            for axis in 0..<target.count where padded[axis] != 1 { index += position[axis] * strides[axis] }
            result[i] = index
            var axis = target.count - 1
            while axis >= 0 {
                position[axis] += 1
                if position[axis] < target[axis] { break }
                position[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    /// `f` applied pairwise over the broadcast of `a` and `b` (inlined, so each operator's `f` is compiled in).
    @inline(__always)
    static func floats(_ a: Value, _ b: Value, _ node: Node, _ f: (Float, Float) -> Float) throws(ONNXError) -> Value {
        guard let shape = shape(a.shape, b.shape) else {
            throw node.fail("shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let x = a.floatValues, y = b.floatValues
        let count = shape.reduce(1, *)
        if a.shape == b.shape {
            let out = x.withUnsafeBufferPointer { xs in
                y.withUnsafeBufferPointer { ys in
                    Elementwise.parallel(count) { range, o in for i in range { o[i] = f(xs[i], ys[i]) } }
                }
            }
            return Value(shape: shape, floats: out)
        }
        if y.count == 1 { let s = y[0]; return Value(shape: shape, floats: x.count == count ? x.map { f($0, s) } : expand(x, a.shape, shape).map { f($0, s) }) }
        if x.count == 1 { let s = x[0]; return Value(shape: shape, floats: y.count == count ? y.map { f(s, $0) } : expand(y, b.shape, shape).map { f(s, $0) }) }
        if b.shape == shape, a.shape != shape, x.count > 1, singleAxis(a.shape, rank: shape.count) != nil {
            return try floats(b, a, node) { f($1, $0) }  // the small operand first (a bias added to a map)
        }
        if a.shape == shape, let (axis, size) = singleAxis(b.shape, rank: shape.count), size == shape[axis] {
            // One value per slice along one axis (per-channel slopes, biases, scales): no index arrays.
            let inner = shape[(axis + 1)...].reduce(1, *)
            let out = x.withUnsafeBufferPointer { xs in
                y.withUnsafeBufferPointer { ys in
                    if inner == 1 {  // along the last axis (a bias over channels-last rows)
                        return Elementwise.parallel(count / size, minimumPerThread: max(1, 131072 / size), size: count) { range, o in
                            for row in range {
                                let start = row * size
                                for c in 0..<size { o[start + c] = f(xs[start + c], ys[c]) }
                            }
                        }
                    }
                    return Elementwise.parallel(count / inner, minimumPerThread: max(1, 131072 / inner), size: count) { range, o in
                        for slice in range {
                            let s = ys[slice % size], start = slice * inner
                            for j in start..<(start + inner) { o[j] = f(xs[j], s) }
                        }
                    }
                }
            }
            return Value(shape: shape, floats: out)
        }
        let ia = a.shape == shape ? nil : indices(of: a.shape, in: shape)
        let ib = b.shape == shape ? nil : indices(of: b.shape, in: shape)
        var out = [Float](repeating: 0, count: count)
        for i in 0..<count { out[i] = f(x[ia?[i] ?? i], y[ib?[i] ?? i]) }
        return Value(shape: shape, floats: out)
    }

    /// The one axis (and its size) along which `shape`, padded to `rank`, is not 1; nil if there are more.
    static func singleAxis(_ shape: [Int], rank: Int) -> (Int, Int)? {
        let padded = [Int](repeating: 1, count: rank - shape.count) + shape
        let axes = padded.indices.filter { padded[$0] != 1 }
        guard axes.count == 1 else { return nil }
        return (axes[0], padded[axes[0]])
    }

    static func ints(_ a: Value, _ b: Value, _ node: Node, _ f: (Int64, Int64) -> Int64) throws(ONNXError) -> Value {
        guard let shape = shape(a.shape, b.shape) else {
            throw node.fail("shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let x = a.intValues, y = b.intValues
        let ia = indices(of: a.shape, in: shape), ib = indices(of: b.shape, in: shape)
        return Value(shape: shape, ints: (0..<shape.reduce(1, *)).map { f(x[ia[$0]], y[ib[$0]]) })
    }

    static func expand(_ values: [Float], _ from: [Int], _ to: [Int]) -> [Float] {
        indices(of: from, in: to).map { values[$0] }
    }
}

/// The element-wise operators: arithmetic, activations, comparisons.
enum Elementwise {
    /// A fresh array of `size` (default `n`) values, written by `body` over parts of `0..<n` on the compute
    /// threads (each part writes only the outputs of its own range).
    @inline(__always)
    static func parallel(_ n: Int, minimumPerThread: Int = 131072, size: Int? = nil,
                         _ body: (Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
        let size = size ?? n
        return [Float](unsafeUninitializedCapacity: size) { memory, initialized in
            let target = memory
            ComputeThreads.forEach(n, minimumPerThread: minimumPerThread) { range in body(range, target) }
            initialized = size
        }
    }

    /// `f` over every value eight at a time, on the compute threads.
    static func vectorMap(_ x: Value, _ f: (VectorMath.Vector) -> VectorMath.Vector) -> Value {
        let values = x.floatValues
        let out = values.withUnsafeBufferPointer { xs in
            parallel((values.count + 7) / 8, minimumPerThread: 16384, size: values.count) { range, o in
                let start = range.lowerBound * 8, end = min(values.count, range.upperBound * 8)
                VectorMath.apply(xs.baseAddress! + start, o.baseAddress! + start, end - start, f)
            }
        }
        return Value(shape: x.shape, floats: out)
    }

    /// `f` over every value, on the compute threads.
    static func map(_ x: Value, _ f: (Float) -> Float) -> Value {
        let values = x.floatValues
        let out = values.withUnsafeBufferPointer { xs in parallel(values.count) { range, o in for i in range { o[i] = f(xs[i]) } } }
        return Value(shape: x.shape, floats: out)
    }

    static func binary(_ node: Node, _ a: Value, _ b: Value) throws(ONNXError) -> Value {
        if a.isInt && b.isInt {
            switch node.op {
            case "Add": return try Broadcast.ints(a, b, node, &+)
            case "Sub": return try Broadcast.ints(a, b, node, &-)
            case "Mul": return try Broadcast.ints(a, b, node, &*)
            case "Div": return try Broadcast.ints(a, b, node) { $1 == 0 ? 0 : $0 / $1 }
            case "Equal": return try Broadcast.ints(a, b, node) { $0 == $1 ? 1 : 0 }
            case "Less": return try Broadcast.ints(a, b, node) { $0 < $1 ? 1 : 0 }
            case "Greater": return try Broadcast.ints(a, b, node) { $0 > $1 ? 1 : 0 }
            case "Max": return try Broadcast.ints(a, b, node) { max($0, $1) }
            case "Min": return try Broadcast.ints(a, b, node) { min($0, $1) }
            default: break
            }
        }
        if let fast = channelwise(node.op, a, b) { return fast }
        switch node.op {
        case "Add": return try Broadcast.floats(a, b, node, +)
        case "Sub": return try Broadcast.floats(a, b, node, -)
        case "Mul": return try Broadcast.floats(a, b, node, *)
        case "Div": return try Broadcast.floats(a, b, node, /)
        case "Pow": return try Broadcast.floats(a, b, node) { $1 == 2 ? $0 * $0 : ($1 == 0.5 ? $0.squareRoot() : powf($0, $1)) }
        case "Max": return try Broadcast.floats(a, b, node) { max($0, $1) }
        case "Min": return try Broadcast.floats(a, b, node) { min($0, $1) }
        case "PRelu": return try Broadcast.floats(a, b, node) { $0 < 0 ? $0 * $1 : $0 }
        case "Equal": return bool(try Broadcast.floats(a, b, node) { $0 == $1 ? 1 : 0 })
        case "Less": return bool(try Broadcast.floats(a, b, node) { $0 < $1 ? 1 : 0 })
        case "Greater": return bool(try Broadcast.floats(a, b, node) { $0 > $1 ? 1 : 0 })
        default: throw node.fail("not a binary operator")
        }
    }

    /// The operators of CNN blocks on 1xCxHxW maps, on Tensors' vector kernels: the sum of two maps, and a
    /// per-channel bias, scale or PReLU (`a` the map, `b` one value per channel; Add and Mul either way round).
    static func channelwise(_ op: String, _ a: Value, _ b: Value) -> Value? {
        guard !a.isInt, !b.isInt else { return nil }
        if op == "Add", a.shape == b.shape, a.rank == 4, a.shape[0] == 1 {
            let shape = Array(a.shape.dropFirst())
            return a.withTensor(shape) { x in b.withTensor(shape) { y in Value.written(a.shape, as: shape) { Ops.add(x, y, into: $0) } } }
        }
        func perChannel(_ map: Value, _ small: Value) -> (shape: [Int], values: [Float])? {
            guard map.rank == 4, map.shape[0] == 1, map.shape[2] * map.shape[3] > 1,
                  let (axis, size) = Broadcast.singleAxis(small.shape, rank: 4), axis == 1, size == map.shape[1] else { return nil }
            return (Array(map.shape.dropFirst()), small.floatValues)
        }
        var map = a, other = b
        if perChannel(a, b) == nil, op == "Add" || op == "Mul", perChannel(b, a) != nil { (map, other) = (b, a) }
        guard let (shape, values) = perChannel(map, other) else { return nil }
        let ones = [Float](repeating: 1, count: values.count), zeros = [Float](repeating: 0, count: values.count)
        let (scale, shift, slopes): ([Float], [Float], [Float]?)
        switch op {
        case "Add": (scale, shift, slopes) = (ones, values, nil)
        case "Sub": (scale, shift, slopes) = (ones, values.map { -$0 }, nil)
        case "Mul": (scale, shift, slopes) = (values, zeros, nil)
        case "PRelu": (scale, shift, slopes) = (ones, zeros, values)
        default: return nil
        }
        return map.withTensor(shape) { x in
            Value.written(map.shape, as: shape) { Ops.affine(x, scale: scale, shift: shift, prelu: slopes, into: $0) }
        }
    }

    static func bool(_ value: Value) -> Value { Value(shape: value.shape, ints: value.floats.map { $0 != 0 ? 1 : 0 }) }

    /// The unary function of `node`, or nil if it is not one.
    static func unary(_ node: Node) throws(ONNXError) -> ((Float) -> Float)? {
        switch node.op {
        case "Relu": return { max($0, 0) }
        case "Sigmoid": return { 1 / (1 + expf(-$0)) }
        case "Tanh": return { tanhf($0) }
        case "Erf": return { erff($0) }
        case "Sqrt": return { $0.squareRoot() }
        case "Exp": return { expf($0) }
        case "Log": return { logf($0) }
        case "Neg": return { -$0 }
        case "Abs": return { abs($0) }
        case "Reciprocal": return { 1 / $0 }
        case "Floor": return { $0.rounded(.down) }
        case "Ceil": return { $0.rounded(.up) }
        case "LeakyRelu":
            let alpha = try node.float("alpha", 0.01)
            return { $0 < 0 ? alpha * $0 : $0 }
        case "Elu":
            let alpha = try node.float("alpha", 1)
            return { $0 < 0 ? alpha * (expf($0) - 1) : $0 }
        case "HardSigmoid":
            let alpha = try node.float("alpha", 0.2), beta = try node.float("beta", 0.5)
            return { max(0, min(1, alpha * $0 + beta)) }
        case "HardSwish": return { $0 * max(0, min(1, $0 / 6 + 0.5)) }
        case "Gelu":
            if try node.string("approximate", "none") == "tanh" {
                return { 0.5 * $0 * (1 + tanhf(0.7978845608 * ($0 + 0.044715 * $0 * $0 * $0))) }
            }
            return { 0.5 * $0 * (1 + erff($0 * 0.70710678118)) }
        default: return nil
        }
    }

    static func clip(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let x = inputs.first ?? nil else { throw node.fail("no input") }
        var low = -Float.infinity, high = Float.infinity
        if inputs.count > 1, let value = inputs[1] { low = value.floatValues.first ?? low }
        if inputs.count > 2, let value = inputs[2] { high = value.floatValues.first ?? high }
        if inputs.count == 1 {  // opset 6: attributes
            low = try node.float("min", low)
            high = try node.float("max", high)
        }
        return Value(shape: x.shape, floats: x.floatValues.map { min(max($0, low), high) })
    }

    static func whereOp(_ node: Node, _ condition: Value, _ a: Value, _ b: Value) throws(ONNXError) -> Value {
        guard let ab = Broadcast.shape(a.shape, b.shape), let shape = Broadcast.shape(condition.shape, ab) else {
            throw node.fail("shapes \(condition.shape), \(a.shape), \(b.shape) do not broadcast")
        }
        let ic = Broadcast.indices(of: condition.shape, in: shape), ia = Broadcast.indices(of: a.shape, in: shape)
        let ib = Broadcast.indices(of: b.shape, in: shape)
        let c = condition.intValues
        if a.isInt && b.isInt {
            let x = a.intValues, y = b.intValues
            return Value(shape: shape, ints: (0..<ic.count).map { c[ic[$0]] != 0 ? x[ia[$0]] : y[ib[$0]] })
        }
        let x = a.floatValues, y = b.floatValues
        return Value(shape: shape, floats: (0..<ic.count).map { c[ic[$0]] != 0 ? x[ia[$0]] : y[ib[$0]] })
    }
}
