import Foundation
import Tensors

/// The operators with arithmetic over neighbourhoods or rows: convolutions, pooling, resizing,
/// normalisation, matrix products, softmax, reductions, padding.
enum NeuralOps {
    /// 2-D spatial attributes of a Conv or pool: kernel, strides, dilations, pads (top, left, bottom, right).
    struct Window {
        var kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int), pads: [Int]

        init(_ node: Node, kernel: (Int, Int), input: (h: Int, w: Int)) throws(ONNXError) {
            self.kernel = kernel
            let s = try node.ints("strides") ?? [1, 1], d = try node.ints("dilations") ?? [1, 1]
            guard s.count == 2, d.count == 2 else { throw node.fail("only 2-D windows are supported") }
            // Zero strides divide by zero and huge ones overflow the size arithmetic; no real network is near the bound.
            let sane = 1...Self.maximumExtent
            guard sane.contains(kernel.0), sane.contains(kernel.1), s.allSatisfy(sane.contains), d.allSatisfy(sane.contains) else {
                throw node.fail("kernel \(kernel), strides \(s), dilations \(d): each must be 1...\(Self.maximumExtent)")
            }
            stride = (s[0], s[1])
            dilation = (d[0], d[1])
            var pads = try node.ints("pads") ?? [0, 0, 0, 0]
            let auto = try node.string("auto_pad", "NOTSET")
            if auto == "SAME_UPPER" || auto == "SAME_LOWER" {
                pads = [0, 0, 0, 0]
                for (axis, size) in [input.h, input.w].enumerated() {
                    let k = axis == 0 ? kernel.0 : kernel.1, st = s[axis], dl = d[axis]
                    let out = (size + st - 1) / st
                    let total = max(0, (out - 1) * st + (k - 1) * dl + 1 - size)
                    let small = total / 2, large = total - small
                    pads[axis] = auto == "SAME_UPPER" ? small : large
                    pads[axis + 2] = auto == "SAME_UPPER" ? large : small
                }
            } else if auto == "VALID" {
                pads = [0, 0, 0, 0]
            }
            guard pads.count == 4, pads.allSatisfy({ $0 >= 0 && $0 <= Self.maximumExtent }) else { throw node.fail("pads \(pads) (2-D only)") }
            self.pads = pads
        }

        /// The largest kernel side, stride, dilation or pad a window may have.
        static let maximumExtent = 4096

        func outputSize(_ h: Int, _ w: Int, ceil: Bool = false) -> (Int, Int) {
            func size(_ n: Int, _ k: Int, _ s: Int, _ d: Int, _ p: Int, _ begin: Int) -> Int {
                let span = n + p - d * (k - 1) - 1
                var out = (ceil ? (span + s - 1) / s : span / s) + 1
                // With ceil_mode the last window must still start inside the input or the leading padding.
                if ceil, (out - 1) * s >= n + begin { out -= 1 }
                return out
            }
            return (size(h, kernel.0, stride.0, dilation.0, pads[0] + pads[2], pads[0]),
                    size(w, kernel.1, stride.1, dilation.1, pads[1] + pads[3], pads[1]))
        }
    }

    static func require4D(_ x: Value, _ node: Node) throws(ONNXError) {
        guard x.rank == 4, x.shape[0] == 1 else { throw node.fail("input of shape \(x.shape): only 1xCxHxW is supported") }
    }

    /// Zero-pads a 1xCxHxW value by `pads` (top, left, bottom, right).
    static func padded(_ x: Value, _ pads: [Int], fill: Float = 0) -> Value {
        let c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let oh = h + pads[0] + pads[2], ow = w + pads[1] + pads[3]
        var out = [Float](repeating: fill, count: c * oh * ow)
        let source = x.floatValues
        for ch in 0..<c {
            for y in 0..<h {
                let from = (ch * h + y) * w, to = (ch * oh + y + pads[0]) * ow + pads[1]
                for i in 0..<w { out[to + i] = source[from + i] }
            }
        }
        return Value(shape: [1, c, oh, ow], floats: out)
    }

    static func conv(_ node: Node, _ inputs: [Value?], arena: Arena) throws(ONNXError) -> Value {
        guard var x = inputs[0], let weight = inputs[1] else { throw node.fail("needs X and W") }
        try require4D(x, node)
        guard weight.rank == 4 else { throw node.fail("weight of shape \(weight.shape): only 2-D convolutions are supported") }
        let groups = try node.int("group", 1)
        let m = weight.shape[0], cg = weight.shape[1]
        guard groups >= 1, x.shape[1] == cg * groups, m % groups == 0 else {
            throw node.fail("input channels \(x.shape[1]), weight \(weight.shape), \(groups) groups do not fit")
        }
        var window = try Window(node, kernel: (weight.shape[2], weight.shape[3]), input: (x.shape[2], x.shape[3]))
        let bias = inputs.count > 2 ? inputs[2]?.floatValues : nil
        if window.pads[0] != window.pads[2] || window.pads[1] != window.pads[3] {
            x = padded(x, window.pads)
            window.pads = [0, 0, 0, 0]
        }
        let (oh, ow) = window.outputSize(x.shape[2], x.shape[3])
        guard oh > 0, ow > 0 else { throw node.fail("output would be empty for input \(x.shape)") }
        var layer = Conv2D(inChannels: x.shape[1], outChannels: m, kernel: window.kernel, stride: window.stride,
                           padding: (window.pads[0], window.pads[1]), dilation: window.dilation, groups: groups,
                           weight: weight.floatValues, bias: bias)
        // A fused node (`Fusion`): a residual added and an activation applied in the convolution's own pass.
        if case .floats(let slopes)? = node.attributes["roadwatch.slopes"] {
            guard slopes.count == m else { throw node.fail("\(slopes.count) activation slopes for \(m) channels") }
            layer.setPReLU(slopes)
        }
        let residual = inputs.count > 3 ? inputs[3] : nil
        if let residual, residual.shape != [1, m, oh, ow] {
            throw node.fail("residual of shape \(residual.shape) for an output of \([1, m, oh, ow])")
        }
        let layerCopy = layer
        return x.withTensor(Array(x.shape.dropFirst())) { input in
            Value.written([1, m, oh, ow], as: [m, oh, ow]) { output in
                if let residual {
                    residual.withTensor([m, oh, ow]) { layerCopy.forward(input, into: output, arena: arena, residual: $0) }
                } else {
                    layerCopy.forward(input, into: output, arena: arena, residual: nil)
                }
            }
        }
    }

    static func convTranspose(_ node: Node, _ inputs: [Value?], arena: Arena) throws(ONNXError) -> Value {
        guard let x = inputs[0], let weight = inputs[1] else { throw node.fail("needs X and W") }
        try require4D(x, node)
        let groups = try node.int("group", 1)
        let c = x.shape[1], h = x.shape[2], w = x.shape[3]
        guard weight.rank == 4, weight.shape[0] == c, c % groups == 0 else { throw node.fail("weight \(weight.shape) for \(c) channels") }
        let mg = weight.shape[1], m = mg * groups, kh = weight.shape[2], kw = weight.shape[3]
        let s = try node.ints("strides") ?? [1, 1], d = try node.ints("dilations") ?? [1, 1]
        let extra = try node.ints("output_padding") ?? [0, 0]
        guard s.count == 2, d.count == 2, extra.count == 2 else { throw node.fail("only 2-D is supported") }
        let auto = try node.string("auto_pad", "NOTSET")
        let wanted = try node.ints("output_shape").map { Array($0.suffix(2)) }
        var p = try node.ints("pads") ?? [0, 0, 0, 0]
        if node.attributes["pads"] == nil, auto == "SAME_UPPER" || auto == "SAME_LOWER" {
            // The padding that makes the output `output_shape` (by default the input times the stride), its odd
            // unit at the end for SAME_UPPER and at the start for SAME_LOWER (halves rounded down, as in Python).
            let target = wanted ?? [h * s[0], w * s[1]]
            for (axis, (size, k)) in [(h, kh), (w, kw)].enumerated() {
                let total = s[axis] * (size - 1) + extra[axis] + (k - 1) * d[axis] + 1 - target[axis]
                let half = Int((Double(total) / 2).rounded(.down))
                p[axis] = auto == "SAME_UPPER" ? half : total - half
                p[axis + 2] = auto == "SAME_UPPER" ? total - half : half
            }
        }
        guard p.count == 4 else { throw node.fail("only 2-D is supported") }
        let oh = wanted?[0] ?? (h - 1) * s[0] + (kh - 1) * d[0] + 1 + extra[0] - p[0] - p[2]
        let ow = wanted?[1] ?? (w - 1) * s[1] + (kw - 1) * d[1] + 1 + extra[1] - p[1] - p[3]
        guard oh > 0, ow > 0 else { throw node.fail("output would be empty") }
        if groups == 1, kh == 2, kw == 2, s == [2, 2], d == [1, 1], p == [0, 0, 0, 0], extra == [0, 0], wanted == nil {
            // The common upsampling step: one GEMM and a scatter (Tensors' kernel).
            let layer = TransposedConv2x2(inChannels: c, outChannels: m, weight: weight.floatValues,
                                          bias: inputs.count > 2 ? inputs[2]?.floatValues : nil)
            return x.withTensor([c, h, w]) { input in
                Value.written([1, m, oh, ow], as: [m, oh, ow]) { layer.forward(input, into: $0, arena: arena) }
            }
        }
        var out = [Float](repeating: 0, count: m * oh * ow)
        if inputs.count > 2, let bias = inputs[2]?.floatValues {
            for o in 0..<m { for i in 0..<(oh * ow) { out[o * oh * ow + i] = bias[o] } }
        }
        let xs = x.floatValues, ws = weight.floatValues
        let cPerGroup = c / groups
        for i in 0..<c {
            let g = i / cPerGroup
            for oLocal in 0..<mg {
                let o = g * mg + oLocal
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let wv = ws[((i * mg + oLocal) * kh + ky) * kw + kx]
                        if wv == 0 { continue }
                        for y in 0..<h {
                            let oy = y * s[0] - p[0] + ky * d[0]
                            if oy < 0 || oy >= oh { continue }
                            for xx in 0..<w {
                                let ox = xx * s[1] - p[1] + kx * d[1]
                                if ox < 0 || ox >= ow { continue }
                                out[(o * oh + oy) * ow + ox] += xs[(i * h + y) * w + xx] * wv
                            }
                        }
                    }
                }
            }
        }
        return Value(shape: [1, m, oh, ow], floats: out)
    }

    static func pool(_ node: Node, _ x: Value) throws(ONNXError) -> Value {
        try require4D(x, node)
        guard let k = try node.ints("kernel_shape"), k.count == 2 else { throw node.fail("only 2-D kernels are supported") }
        let window = try Window(node, kernel: (k[0], k[1]), input: (x.shape[2], x.shape[3]))
        let ceil = try node.int("ceil_mode", 0) == 1
        let includePad = try node.int("count_include_pad", 0) == 1
        let isMax = node.op == "MaxPool"
        let c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let (oh, ow) = window.outputSize(h, w, ceil: ceil)
        guard oh > 0, ow > 0 else { throw node.fail("a \(k[0])x\(k[1]) window leaves no output for input \(x.shape)") }
        if !isMax, window.dilation == (1, 1), oh > 0, ow > 0 {
            // The two average poolings of image pyramids, on Tensors' vector kernels.
            if k == [3, 3], window.stride == (2, 2), window.pads == [1, 1, 1, 1], includePad, !ceil {
                return x.withTensor([c, h, w]) { input in
                    Value.written([1, c, oh, ow], as: [c, oh, ow]) { Pooling.average3x3Stride2(input, into: $0) }
                }
            }
            if k == [2, 2], window.stride == (2, 2), window.pads == [0, 0, 0, 0], h % 2 == 0, w % 2 == 0 {
                return x.withTensor([c, h, w]) { input in Value.written([1, c, oh, ow], as: [c, oh, ow]) { Pooling.halve(input, into: $0) } }
            }
        }
        let xs = x.floatValues
        var out = [Float](repeating: 0, count: c * oh * ow)
        for ch in 0..<c {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var best = -Float.infinity, sum: Float = 0, n = 0, padded = 0
                    for ky in 0..<k[0] {
                        let y = oy * window.stride.0 - window.pads[0] + ky * window.dilation.0
                        for kx in 0..<k[1] {
                            let xx = ox * window.stride.1 - window.pads[1] + kx * window.dilation.1
                            if y < 0 || y >= h || xx < 0 || xx >= w {
                                // Inside the declared pads counts for count_include_pad; past them (ceil_mode) never.
                                if y < h + window.pads[2] && xx < w + window.pads[3] { padded += 1 }
                                continue
                            }
                            let v = xs[(ch * h + y) * w + xx]
                            best = max(best, v)
                            sum += v
                            n += 1
                        }
                    }
                    out[(ch * oh + oy) * ow + ox] = isMax ? best : sum / Float(max(1, includePad ? n + padded : n))
                }
            }
        }
        return Value(shape: [1, c, oh, ow], floats: out)
    }

    static func globalAveragePool(_ node: Node, _ x: Value) throws(ONNXError) -> Value {
        guard x.rank >= 3 else { throw node.fail("input of shape \(x.shape)") }
        let outer = x.shape[0] * x.shape[1], inner = x.count / outer
        let xs = x.floatValues
        let means = xs.withUnsafeBufferPointer { values in
            (0..<outer).map { o in
                var sum: Float = 0
                for i in (o * inner)..<((o + 1) * inner) { sum += values[i] }
                return sum / Float(inner)
            }
        }
        return Value(shape: Array(x.shape[0..<2]) + [Int](repeating: 1, count: x.rank - 2), floats: means)
    }

    static func batchNorm(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard inputs.count >= 5, let x = inputs[0], let scale = inputs[1], let bias = inputs[2], let mean = inputs[3],
              let variance = inputs[4], x.rank >= 2 else { throw node.fail("needs X, scale, B, mean, var") }
        let eps = try node.float("epsilon", 1e-5)
        let c = x.shape[1], inner = x.count / (x.shape[0] * c)
        let g = scale.floatValues, b = bias.floatValues, m = mean.floatValues, v = variance.floatValues
        guard g.count == c, b.count == c, m.count == c, v.count == c else { throw node.fail("parameters for \(c) channels") }
        if x.rank == 4, x.shape[0] == 1, !x.isInt {
            let scales = (0..<c).map { g[$0] / (v[$0] + eps).squareRoot() }, shape = Array(x.shape.dropFirst())
            let shifts = (0..<c).map { b[$0] - m[$0] * scales[$0] }
            return x.withTensor(shape) { input in Value.written(x.shape, as: shape) { Ops.affine(input, scale: scales, shift: shifts, into: $0) } }
        }
        var out = x.floatValues
        out.withUnsafeMutableBufferPointer { o in
            for n in 0..<x.shape[0] {
                for ch in 0..<c {
                    let k = g[ch] / (v[ch] + eps).squareRoot(), shift = b[ch] - m[ch] * k
                    let base = (n * c + ch) * inner
                    for i in base..<(base + inner) { o[i] = o[i] * k + shift }
                }
            }
        }
        return Value(shape: x.shape, floats: out)
    }

    /// x (…, K) · W (K, N) + b (N), the bias written first and the GEMM accumulating onto it.
    static func linear(_ node: Node, _ x: Value, _ weight: Value, _ bias: Value) throws(ONNXError) -> Value {
        let k = weight.shape[0], n = weight.shape[1]
        guard x.rank >= 1, x.shape.last == k, bias.count == n else { throw node.fail("cannot multiply \(x.shape) by \(weight.shape) + \(bias.shape)") }
        let rows = x.count / k, xs = x.floatValues, ws = weight.floats, bs = bias.floatValues
        var out = [Float](unsafeUninitializedCapacity: rows * n) { memory, initialized in
            for r in 0..<rows { for j in 0..<n { (memory.baseAddress! + r * n + j).initialize(to: bs[j]) } }
            initialized = rows * n
        }
        xs.withUnsafeBufferPointer { a in
            ws.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { c in
                    Gemm.multiply(m: rows, n: n, k: k, a: a.baseAddress!, lda: k, b: w.baseAddress!, ldb: n,
                                  c: c.baseAddress!, ldc: n, accumulate: true)
                }
            }
        }
        return Value(shape: Array(x.shape.dropLast()) + [n], floats: out)
    }

    static func matMul(_ node: Node, _ a: Value, _ b: Value) throws(ONNXError) -> Value {
        var ashape = a.shape, bshape = b.shape
        if ashape.count == 1 { ashape = [1] + ashape }
        if bshape.count == 1 { bshape = bshape + [1] }
        let m = ashape[ashape.count - 2], k = ashape[ashape.count - 1], n = bshape[bshape.count - 1]
        guard bshape[bshape.count - 2] == k, let batch = Broadcast.shape(Array(ashape.dropLast(2)), Array(bshape.dropLast(2))) else {
            throw node.fail("cannot multiply \(a.shape) by \(b.shape)")
        }
        let batches = batch.reduce(1, *)
        let ia = Broadcast.indices(of: Array(ashape.dropLast(2)), in: batch), ib = Broadcast.indices(of: Array(bshape.dropLast(2)), in: batch)
        let xs = a.floatValues, ys = b.floatValues
        var out = [Float](repeating: 0, count: batches * m * n)
        xs.withUnsafeBufferPointer { x in
            ys.withUnsafeBufferPointer { y in
                out.withUnsafeMutableBufferPointer { o in
                    for t in 0..<batches {
                        Gemm.multiply(m: m, n: n, k: k, a: x.baseAddress! + ia[t] * m * k, lda: k,
                                      b: y.baseAddress! + ib[t] * k * n, ldb: n, c: o.baseAddress! + t * m * n, ldc: n)
                    }
                }
            }
        }
        var shape = batch + [m, n]
        if a.rank == 1 { shape.remove(at: shape.count - 2) }
        if b.rank == 1 { shape.removeLast() }
        return Value(shape: shape, floats: out)
    }

    static func gemm(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let a0 = inputs[0], let b0 = inputs[1], a0.rank == 2, b0.rank == 2 else { throw node.fail("needs 2-D A and B") }
        func transposed(_ m: Value) -> Value {
            let (rows, columns) = (m.shape[0], m.shape[1])
            return Value(shape: [columns, rows], floats: ShapeOps.transposed(m.floatValues, shape: [columns, rows], strides: [1, columns]))
        }
        let a = try node.int("transA", 0) == 1 ? transposed(a0) : a0
        let b = try node.int("transB", 0) == 1 ? transposed(b0) : b0
        let alpha = try node.float("alpha", 1), beta = try node.float("beta", 1)
        var product = try matMul(node, a, b)
        if alpha != 1 { product.floats = product.floats.map { $0 * alpha } }
        if inputs.count > 2, let c = inputs[2] {
            let scaled = Value(shape: c.shape, floats: c.floatValues.map { $0 * beta })
            product = try Broadcast.floats(product, scaled, node, +)
        }
        return product
    }

    /// Runs `body` over every 1-D lane along `axis`: (start, stride, count) of each lane.
    static func lanes(_ shape: [Int], axis: Int, _ body: (Int, Int, Int) -> Void) {
        let inner = shape[(axis + 1)...].reduce(1, *), size = shape[axis], outer = shape[..<axis].reduce(1, *)
        for o in 0..<outer { for i in 0..<inner { body(o * size * inner + i, inner, size) } }
    }

    static func softmax(_ node: Node, _ x: Value) throws(ONNXError) -> Value {
        let axis = try ShapeOps.axis(try node.int("axis", -1), rank: x.rank, node)
        let isLog = node.op == "LogSoftmax"
        if !isLog, axis == x.rank - 1, x.shape[axis] > 0, !x.isInt {
            // softmax(s·x) for a fused scale s > 0 (attention's 1/√d): the row's maximum is s times x's.
            // Rows of the last axis (attention): vector exp, rows split over the compute threads.
            let n = x.shape[axis], rows = x.count / n
            let scale = try node.float("roadwatch.scale", 1)
            guard scale > 0 else { throw node.fail("a fused softmax scale must be positive") }
            let out = x.floats.withUnsafeBufferPointer { xs in
                Elementwise.parallel(rows, minimumPerThread: max(1, 16384 / n), size: x.count) { range, o in
                    for row in range {
                        let source = xs.baseAddress! + row * n, target = o.baseAddress! + row * n
                        let top = VectorMath.maximum(source, n)
                        VectorMath.apply(source, target, n) { VectorMath.exp(($0 - top) * scale) }
                        let inverse = 1 / VectorMath.sum(target, n)
                        VectorMath.apply(target, target, n) { $0 * inverse }
                    }
                }
            }
            return Value(shape: x.shape, floats: out)
        }
        var out = x.floatValues
        lanes(x.shape, axis: axis) { start, stride, count in
            var top = -Float.infinity
            for j in 0..<count { top = max(top, out[start + j * stride]) }
            var sum: Float = 0
            if isLog {
                for j in 0..<count { sum += expf(out[start + j * stride] - top) }
                let shift = top + logf(sum)
                for j in 0..<count { out[start + j * stride] -= shift }
                return
            }
            for j in 0..<count {
                let e = expf(out[start + j * stride] - top)
                out[start + j * stride] = e
                sum += e
            }
            let scale = 1 / sum
            for j in 0..<count { out[start + j * stride] *= scale }
        }
        return Value(shape: x.shape, floats: out)
    }

    static func layerNorm(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let x = inputs[0], let scale = inputs[1] else { throw node.fail("needs X and scale") }
        let axis = try ShapeOps.axis(try node.int("axis", -1), rank: x.rank, node)
        let eps = try node.float("epsilon", 1e-5)
        let inner = x.shape[axis...].reduce(1, *), outer = x.count / inner
        let g = scale.floatValues, b = inputs.count > 2 ? inputs[2]?.floatValues : nil
        guard g.count == inner || g.count == 1 else { throw node.fail("scale of \(g.count) for rows of \(inner)") }
        let gains = g.count == inner ? g : [Float](repeating: g[0], count: inner)
        let biases = b.map { $0.count == inner ? $0 : [Float](repeating: $0.first ?? 0, count: inner) } ?? [Float](repeating: 0, count: inner)
        guard biases.count == inner else { throw node.fail("bias of \(b?.count ?? 0) for rows of \(inner)") }
        let values = x.floatValues
        let out = values.withUnsafeBufferPointer { xs in
            gains.withUnsafeBufferPointer { gain in
                biases.withUnsafeBufferPointer { bias in
                    Elementwise.parallel(outer, minimumPerThread: max(1, 16384 / inner), size: x.count) { range, o in
                        for row in range {
                            let source = xs.baseAddress! + row * inner, target = o.baseAddress! + row * inner
                            var mean: Float = 0
                            for i in 0..<inner { mean += source[i] }
                            mean /= Float(inner)
                            var variance: Float = 0
                            for i in 0..<inner { let d = source[i] - mean; variance += d * d }
                            let inv = 1 / (variance / Float(inner) + eps).squareRoot()
                            for i in 0..<inner { target[i] = (source[i] - mean) * inv * gain[i] + bias[i] }
                        }
                    }
                }
            }
        }
        return Value(shape: x.shape, floats: out)
    }

    static func reduce(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let x = inputs[0] else { throw node.fail("no input") }
        let keep = try node.int("keepdims", 1) == 1
        var axes = inputs.count > 1 ? inputs[1]?.intValues.map { Int($0) } : try node.ints("axes")
        if axes?.isEmpty ?? true {
            if try node.int("noop_with_empty_axes", 0) == 1 { return x }
            axes = Array(0..<x.rank)
        }
        let resolved = try axes!.map { (a: Int) throws(ONNXError) in try ShapeOps.axis(a, rank: x.rank, node) }
        var shape = x.shape
        for a in resolved { shape[a] = 1 }
        let count = shape.reduce(1, *)
        var sums = [Float](repeating: node.op == "ReduceMax" ? -.infinity : 0, count: count)
        let target = Broadcast.indices(of: shape, in: x.shape)
        let xs = x.floatValues
        for i in 0..<xs.count {
            switch node.op {
            case "ReduceMax": sums[target[i]] = max(sums[target[i]], xs[i])
            case "ReduceSumSquare": sums[target[i]] += xs[i] * xs[i]
            default: sums[target[i]] += xs[i]
            }
        }
        if node.op == "ReduceMean" {
            let n = Float(x.count / count)
            sums = sums.map { $0 / n }
        }
        let outShape = keep ? shape : x.shape.enumerated().filter { !resolved.contains($0.offset) }.map(\.element)
        return Value(shape: outShape, floats: sums)
    }

    static func pad(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let x = inputs[0] else { throw node.fail("no input") }
        var pads = inputs.count > 1 ? inputs[1]?.intValues.map { Int($0) } : try node.ints("pads")
        if inputs.count > 3, let axes = inputs[3], let given = pads {
            // Pads for the listed axes only (opset 18): the others are not padded.
            let listed = try axes.intValues.map { (a: Int64) throws(ONNXError) in try ShapeOps.axis(Int(a), rank: x.rank, node) }
            guard given.count == 2 * listed.count else { throw node.fail("\(given.count) pads for \(listed.count) axes") }
            var all = [Int](repeating: 0, count: 2 * x.rank)
            for (i, a) in listed.enumerated() { all[a] = given[i]; all[a + x.rank] = given[i + listed.count] }
            pads = all
        }
        guard let pads, pads.count == 2 * x.rank else { throw node.fail("pads for rank \(x.rank)") }
        let fill = inputs.count > 2 ? inputs[2]?.floatValues.first ?? 0 : try node.float("value", 0)
        let mode = try node.string("mode", "constant")
        guard pads.allSatisfy({ $0 >= 0 }) else { throw node.fail("negative pads are not supported") }
        guard pads.allSatisfy({ $0 <= ONNXGraph.maximumElements }) else { throw node.fail("pads \(pads)") }
        let shape = (0..<x.rank).map { x.shape[$0] + pads[$0] + pads[$0 + x.rank] }
        guard Value.elementCount(shape) != nil else { throw node.fail("pads \(pads) make too large a value of \(x.shape)") }
        let strides = Value.strides(x.shape), outStrides = Value.strides(shape)
        let xs = x.floatValues
        var out = [Float](repeating: fill, count: shape.reduce(1, *))
        for i in out.indices {
            var rest = i, index = 0, inside = true
            for axis in 0..<shape.count {
                var p = rest / outStrides[axis] - pads[axis]
                rest %= outStrides[axis]
                let n = x.shape[axis]
                if p < 0 || p >= n {
                    switch mode {
                    case "edge": p = min(max(p, 0), n - 1)
                    case "reflect":
                        guard n > 1 else { p = 0; break }
                        let period = 2 * (n - 1)
                        p = ((p % period) + period) % period
                        if p >= n { p = period - p }
                    case "wrap": p = ((p % n) + n) % n
                    case "constant": inside = false
                    default: throw node.fail("mode '\(mode)' is not supported")
                    }
                }
                index += p * strides[axis]
            }
            if inside { out[i] = xs[index] }
        }
        return Value(shape: shape, floats: out)
    }
}
