/// Rewrites a prepared plan so a convolution takes in what follows it: an Add of another map of its output's
/// shape (a residual) and then a per-channel activation (PRelu, Relu, LeakyRelu), each only when the
/// convolution's output has no other reader. The fused node computes `act(conv(x) + bias + residual)` in the
/// convolution's own pass (Tensors' `Conv2D`) instead of three passes over fresh arrays.
enum Fusion {
    /// The fused node's operator; inputs X, W, B, residual ("" where absent), slopes in the attribute
    /// `roadwatch.slopes`.
    static let conv = "roadwatch.Conv"

    /// x · W + b with a constant W (2-D) and b (1-D).
    static let linearOp = "roadwatch.Linear"
    /// GELU as exported from PyTorch: `Div(x, √2) → Erf → Add 1 → Mul x → Mul 0.5`; attribute `divisor`.
    static let geluOp = "roadwatch.Gelu"

    /// How a planned node's operator reads in a profile.
    static func label(_ op: String) -> String {
        switch op {
        case conv: return "Conv (fused)"
        case BandedMatMul.op: return "MatMul (banded)"
        case linearOp: return "MatMul+Add (fused)"
        case geluOp: return "Erf (fused GELU)"
        default: return op
        }
    }

    static func fuse(_ plan: [Node], constants: [String: Value], dynamic: Set<String>, shapes: [String: [Int]],
                     wanted: Set<String>) -> [Node] {
        var readers: [String: [Int]] = [:]
        for (index, node) in plan.enumerated() { for name in node.inputs where !name.isEmpty { readers[name, default: []].append(index) } }
        var plan = plan.map { Optional($0) }
        /// The one node reading `name`, if nothing else (nor the caller) does.
        func soleReader(_ name: String) -> Int? {
            guard !wanted.contains(name), let list = readers[name], list.count == 1, plan[list[0]] != nil else { return nil }
            return list[0]
        }
        /// A constant holding one float (scalar or a single-element tensor).
        func scalar(_ name: String) -> Float? {
            guard !dynamic.contains(name), let value = constants[name], value.count == 1, !value.isInt else { return nil }
            return value.floats[0]
        }
        /// The erf form of GELU starting at the Div at `start`, when every step's output has one reader.
        func gelu(from start: Int, divisor: Float) -> (node: Node, last: Int, removed: [Int])? {
            guard let div = plan[start], let e = soleReader(div.outputs[0]), let erf = plan[e], erf.op == "Erf",
                  let a = soleReader(erf.outputs[0]), let add = plan[a], add.op == "Add", add.inputs.count == 2,
                  scalar(add.inputs[0] == erf.outputs[0] ? add.inputs[1] : add.inputs[0]) == 1,
                  let m = soleReader(add.outputs[0]), let mul = plan[m], mul.op == "Mul", mul.inputs.count == 2,
                  (mul.inputs[0] == add.outputs[0] ? mul.inputs[1] : mul.inputs[0]) == div.inputs[0],
                  let h = soleReader(mul.outputs[0]), let half = plan[h], half.op == "Mul", half.inputs.count == 2,
                  scalar(half.inputs[0] == mul.outputs[0] ? half.inputs[1] : half.inputs[0]) == 0.5 else { return nil }
            var fused = div
            fused.op = geluOp
            fused.inputs = [div.inputs[0]]
            fused.outputs = half.outputs
            fused.attributes = ["divisor": .float(divisor)]
            return (fused, h, [start, e, a, m])
        }
        for index in plan.indices {
            if let node = plan[index], node.op == "Mul", node.inputs.count == 2, let next = soleReader(node.outputs[0]),
               let softmax = plan[next], softmax.op == "Softmax", softmax.attributes["roadwatch.scale"] == nil {
                // Attention's scale before its softmax (on the last axis, by a positive constant).
                let (x, factor) = scalar(node.inputs[1]) != nil ? (node.inputs[0], node.inputs[1]) : (node.inputs[1], node.inputs[0])
                if let s = scalar(factor), s > 0, dynamic.contains(x), let shape = shapes[x], !shape.isEmpty,
                   let axis = try? softmax.int("axis", -1), axis == -1 || axis == shape.count - 1 {
                    var fused = softmax
                    fused.inputs = [x]
                    fused.attributes["roadwatch.scale"] = .float(s)
                    plan[index] = nil
                    plan[next] = fused
                    continue
                }
            }
            if let node = plan[index], node.op == "Div", node.inputs.count == 2, let divisor = scalar(node.inputs[1]),
               let gelu = gelu(from: index, divisor: divisor) {
                plan[gelu.last] = gelu.node
                for removed in gelu.removed { plan[removed] = nil }
                continue
            }
            if let node = plan[index], node.op == "MatMul", node.inputs.count == 2, !dynamic.contains(node.inputs[1]),
               dynamic.contains(node.inputs[0]), let weight = constants[node.inputs[1]], weight.rank == 2,
               BandedMatMul.bands(of: weight, perColumn: true) == nil,
               let next = soleReader(node.outputs[0]), let add = plan[next], add.op == "Add", add.inputs.count == 2 {
                // x · W + b: the bias is C's starting value, the GEMM adds into it.
                let bias = add.inputs[0] == node.outputs[0] ? add.inputs[1] : add.inputs[0]
                if !dynamic.contains(bias), let b = constants[bias], b.rank == 1, b.count == weight.shape[1] {
                    var linear = node
                    linear.op = linearOp
                    linear.inputs = [node.inputs[0], node.inputs[1], bias]
                    linear.outputs = add.outputs
                    plan[index] = nil
                    plan[next] = linear
                    continue
                }
            }
            if let node = plan[index], node.op == "MatMul", node.inputs.count == 2 {
                // A constant, mostly-zero 2-D operand (exported pooling or resizing matrices).
                let (a, b) = (node.inputs[0], node.inputs[1])
                if !dynamic.contains(b), dynamic.contains(a), let matrix = constants[b], (shapes[a]?.count ?? 0) >= 2,
                   let bands = BandedMatMul.bands(of: matrix, perColumn: true) {
                    var banded = node
                    banded.op = BandedMatMul.op
                    banded.attributes = BandedMatMul.attributes(bands, constantIsLeft: false)
                    plan[index] = banded
                } else if !dynamic.contains(a), dynamic.contains(b), let matrix = constants[a], (shapes[b]?.count ?? 0) >= 2,
                          let bands = BandedMatMul.bands(of: matrix, perColumn: false) {
                    var banded = node
                    banded.op = BandedMatMul.op
                    banded.attributes = BandedMatMul.attributes(bands, constantIsLeft: true)
                    plan[index] = banded
                }
                continue
            }
            guard let node = plan[index], node.op == "Conv", node.inputs.count >= 2, node.outputs.count == 1,
                  constants[node.inputs[1]] != nil, !dynamic.contains(node.inputs[1]),
                  node.inputs.count < 3 || node.inputs[2].isEmpty || !dynamic.contains(node.inputs[2]),
                  let shape = shapes[node.outputs[0]], shape.count == 4 else { continue }
            let channels = shape[1]
            var fused = node
            fused.op = conv
            fused.inputs = [node.inputs[0], node.inputs[1], node.inputs.count > 2 ? node.inputs[2] : "", ""]
            var output = node.outputs[0], last = index
            var slopes: [Float]?
            if let next = soleReader(output), let add = plan[next], add.op == "Add", add.inputs.count == 2,
               add.inputs[0] != add.inputs[1] {
                let other = add.inputs[0] == output ? add.inputs[1] : add.inputs[0]
                if dynamic.contains(other), shapes[other] == shape {
                    fused.inputs[3] = other
                    output = add.outputs[0]
                    plan[next] = nil
                    last = next
                }
            }
            if let next = soleReader(output), let act = plan[next] {
                switch act.op {
                case "PRelu" where act.inputs.count == 2 && !dynamic.contains(act.inputs[1]):
                    // One slope per channel, shaped to broadcast along the channel axis only.
                    if let given = constants[act.inputs[1]], given.count == channels,
                       let (axis, _) = Broadcast.singleAxis(given.shape, rank: shape.count), axis == 1 {
                        slopes = given.floatValues
                    }
                case "Relu": slopes = [Float](repeating: 0, count: channels)
                case "LeakyRelu": if let alpha = try? act.float("alpha", 0.01) { slopes = [Float](repeating: alpha, count: channels) }
                default: break
                }
                if let slopes {
                    fused.attributes["roadwatch.slopes"] = .floats(slopes)
                    output = act.outputs[0]
                    plan[next] = nil
                    last = next
                }
            }
            guard last != index else { continue }
            fused.outputs = [output]
            plan[index] = nil
            plan[last] = fused
            // The fused node now reads the residual at `last`; readers of its own output are unchanged.
        }
        return plan.compactMap { $0 }
    }
}
