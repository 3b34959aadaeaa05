/// Rewrites a prepared plan so a convolution takes in what follows it: an Add of another map of its output's
/// shape (a residual) and then a per-channel activation (PRelu, Relu, LeakyRelu), each only when the
/// convolution's output has no other reader. The fused node computes `act(conv(x) + bias + residual)` in the
/// convolution's own pass (Tensors' `Conv2D`) instead of three passes over fresh arrays.
enum Fusion {
    /// The fused node's operator; inputs X, W, B, residual ("" where absent), slopes in the attribute
    /// `roadwatch.slopes`.
    static let conv = "roadwatch.Conv"

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
        for index in plan.indices {
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
                       given.shape == [channels] || Array(given.shape.drop(while: { $0 == 1 })) == [channels] + [Int](repeating: 1, count: max(0, given.shape.drop(while: { $0 == 1 }).count - 1)) {
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
