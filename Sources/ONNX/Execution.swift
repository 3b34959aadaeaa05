import Foundation
import Tensors

/// An ONNX graph ready for one input shape: every node that does not depend on the image has been run
/// once at load (weights, shape arithmetic, constants) and its outputs kept; `run` executes the rest, in
/// the file's order (ONNX requires topological order), dropping each value after its last use.
public final class PreparedGraph: Sendable {
    public let graph: ONNXGraph
    public let inputName: String
    public let inputShape: [Int]
    private let constants: [String: Value]
    private let plan: [Node]
    /// For each planned node, the values whose last use it is.
    private let releases: [[String]]
    private let arenas = ArenaPool()
    /// Shapes of every value seen in the preparing run.
    public let shapes: [String: [Int]]

    /// Prepares `graph` for an input of `inputShape` (1xCxHxW), keeping `wanted` outputs (values by name).
    public init(_ graph: ONNXGraph, inputShape: [Int], keep wanted: [String]) throws(ONNXError) {
        self.graph = graph
        guard let input = graph.inputs.first else { throw ONNXError("'\(graph.path)' has no input") }
        guard graph.inputs.count == 1 else {
            throw ONNXError("'\(graph.path)' has \(graph.inputs.count) inputs (\(graph.inputs.map(\.name).joined(separator: ", "))); roadwatch feeds one image")
        }
        if input.shape.count != inputShape.count || zip(input.shape, inputShape).contains(where: { $0 > 0 && $0 != $1 }) {
            throw ONNXError("'\(graph.path)' takes input '\(input.name)' of shape \(input.shape), not \(inputShape)")
        }
        inputName = input.name
        self.inputShape = inputShape
        var values = graph.constants
        var dynamic: Set<String> = [input.name]
        values[input.name] = Value(shape: inputShape, floats: [Float](repeating: 0, count: inputShape.reduce(1, *)))
        var plan: [Node] = []
        var shapes: [String: [Int]] = [:]
        let arena = Arena()
        for node in graph.nodes {
            let arguments = try node.inputs.map { (name: String) throws(ONNXError) -> Value? in
                if name.isEmpty { return nil }
                guard let value = values[name] else { throw node.fail("input '\(name)' is not produced before it is used") }
                return value
            }
            let outputs = try Operators.execute(node, arguments, arena: arena)
            let isDynamic = node.op != "Shape" && node.op != "Size" && node.inputs.contains { dynamic.contains($0) }
            for (name, value) in zip(node.outputs, outputs) {
                values[name] = value
                shapes[name] = value.shape
                if isDynamic { dynamic.insert(name) }
            }
            if isDynamic { plan.append(node) }
        }
        for name in wanted where values[name] == nil {
            throw ONNXError("'\(graph.path)' has no value named '\(name)'")
        }
        plan = Fusion.fuse(plan, constants: values, dynamic: dynamic, shapes: shapes, wanted: Set(wanted))
        // Keep the constants the plan reads and the wanted ones that are constant.
        let read = Set(plan.flatMap(\.inputs)).union(wanted)
        constants = values.filter { read.contains($0.key) && !dynamic.contains($0.key) }
        var lastUse: [String: Int] = [:]
        for (index, node) in plan.enumerated() { for name in node.inputs where dynamic.contains(name) { lastUse[name] = index } }
        var releases = [[String]](repeating: [], count: plan.count)
        for (name, index) in lastUse where !wanted.contains(name) { releases[index].append(name) }
        self.plan = plan
        self.releases = releases
        self.shapes = shapes
    }

    /// Nodes left to run per frame.
    public var plannedNodes: Int { plan.count }

    /// Runs the graph on `input` (of `inputShape`), returning the `names` asked for.
    public func run(_ input: Value, names: [String]) throws(ONNXError) -> [String: Value] {
        guard input.shape == inputShape else { throw ONNXError("input of shape \(input.shape), prepared for \(inputShape)") }
        let outcome = arenas.with { arena -> Result<[String: Value], ONNXError> in
            Result { () throws(ONNXError) -> [String: Value] in try execute(input, names: names, arena: arena) }
        }
        return try outcome.get()
    }

    /// Seconds spent per operator type over one run of `input`, most first (where the time goes).
    public func profile(_ input: Value) throws(ONNXError) -> [(op: String, seconds: Double)] {
        var spent: [String: Double] = [:]
        _ = try execute(input, names: [], arena: Arena()) { op, seconds in spent[op, default: 0] += seconds }
        return spent.sorted { $0.value > $1.value }.map { ($0.key, $0.value) }
    }

    private func execute(_ input: Value, names: [String], arena: Arena,
                         timing: ((String, Double) -> Void)? = nil) throws(ONNXError) -> [String: Value] {
        do {
            var values: [String: Value] = [inputName: input]
            for (index, node) in plan.enumerated() {
                let arguments = node.inputs.map { name -> Value? in name.isEmpty ? nil : (values[name] ?? constants[name]) }
                let start = timing == nil ? nil : ContinuousClock.now
                let outputs = try Operators.execute(node, arguments, arena: arena)
                if let start, let timing {
                    let elapsed = ContinuousClock.now - start
                    timing(Fusion.label(node.op), Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
                }
                for (name, value) in zip(node.outputs, outputs) { values[name] = value }
                for name in releases[index] { values[name] = nil }
            }
            var result: [String: Value] = [:]
            for name in names { result[name] = values[name] ?? constants[name] }
            return result
        }
    }
}

/// Runs one node on its input values.
enum Operators {
    /// A convolution or pooling on what its 1xCxHxW kernels do not take directly: a batch runs image by image, a
    /// 1-D signal (NxCxL) as images of height 1 (its attributes given a leading 1, or 0 for pads).
    static func spatial(_ node: Node, _ inputs: [Value?], arena: Arena) throws(ONNXError) -> Value {
        guard var x = inputs.first ?? nil else { throw node.fail("input 0 is missing") }
        var node = node, inputs = inputs
        let lifted = x.rank == 3
        if lifted {
            x = x.reshaped([x.shape[0], x.shape[1], 1, x.shape[2]])
            if node.op != "MaxPool" && node.op != "AveragePool", inputs.count > 1, let w = inputs[1], w.rank == 3 {
                inputs[1] = w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]])
            }
            for key in ["kernel_shape", "strides", "dilations", "output_padding", "output_shape"] {
                if let values = try node.ints(key) { node.attributes[key] = .ints([1] + values.suffix(1).map { Int64($0) }) }
            }
            if let pads = try node.ints("pads"), pads.count == 2 { node.attributes["pads"] = .ints([0, Int64(pads[0]), 0, Int64(pads[1])]) }
        }
        guard x.rank == 4 else { throw node.fail("input of shape \(x.shape): only 1-D and 2-D are supported") }
        let images = x.shape[0], plane = x.count / max(1, images)
        var parts: [Value] = []
        for n in 0..<images {
            var one = inputs
            let start = n * plane
            one[0] = x.isInt ? Value(shape: [1] + x.shape.dropFirst(), ints: Array(x.intValues[start..<(start + plane)]))
                : Value(shape: [1] + x.shape.dropFirst(), floats: Array(x.floats[start..<(start + plane)]))
            switch node.op {
            case "Conv": parts.append(try NeuralOps.conv(node, one, arena: arena))
            case "ConvTranspose": parts.append(try NeuralOps.convTranspose(node, one, arena: arena))
            default: parts.append(try NeuralOps.pool(node, one[0]!))
            }
        }
        guard let first = parts.first else { throw node.fail("an empty batch") }
        var shape = [images] + first.shape.dropFirst()
        let floats = parts.flatMap(\.floatValues)
        if lifted { shape.remove(at: 2) }
        return Value(shape: shape, floats: floats)
    }

    static func execute(_ node: Node, _ inputs: [Value?], arena: Arena) throws(ONNXError) -> [Value] {
        func input(_ i: Int) throws(ONNXError) -> Value {
            guard i < inputs.count, let value = inputs[i] else { throw node.fail("input \(i) is missing") }
            return value
        }
        /// Range's length from (limit - start) / delta, which the model may make infinite, NaN or enormous.
        func rangeCount(_ steps: Double) throws(ONNXError) -> Int {
            guard steps.isFinite || steps < 0, steps.rounded(.up) <= Double(ONNXGraph.maximumElements) else {
                throw node.fail("a range of \(steps) steps")
            }
            return max(0, Int(max(-1, steps.rounded(.up))))
        }
        if node.op == "Erf" { return [Elementwise.vectorMap(try input(0), VectorMath.erf)] }
        if node.op == "Gelu", try node.string("approximate", "none") == "none" {
            return [Elementwise.vectorMap(try input(0)) { x in 0.5 * x * (1 + VectorMath.erf(x * 0.70710678118)) }]
        }
        if MoreOps.operators.contains(node.op), let values = try MoreOps.execute(node, inputs) { return values }
        if let f = try Elementwise.unary(node) {
            let x = try input(0)
            return [Elementwise.map(x, f)]
        }
        switch node.op {
        case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu", "Equal", "Less", "Greater":
            if node.op == "Max" || node.op == "Min", inputs.count != 2 {
                var acc = try input(0)
                for i in 1..<inputs.count { acc = try Elementwise.binary(node, acc, try input(i)) }
                return [acc]
            }
            return [try Elementwise.binary(node, try input(0), try input(1))]
        case "Clip": return [try Elementwise.clip(node, inputs)]
        case "Where": return [try Elementwise.whereOp(node, try input(0), try input(1), try input(2))]
        case "Conv" where inputs.first??.rank != 4 || inputs.first??.shape.first != 1,
             "ConvTranspose" where inputs.first??.rank != 4 || inputs.first??.shape.first != 1,
             "MaxPool" where inputs.first??.rank != 4 || inputs.first??.shape.first != 1,
             "AveragePool" where inputs.first??.rank != 4 || inputs.first??.shape.first != 1:
            return [try spatial(node, inputs, arena: arena)]
        case "Conv", Fusion.conv: return [try NeuralOps.conv(node, inputs, arena: arena)]
        case "ConvTranspose": return [try NeuralOps.convTranspose(node, inputs, arena: arena)]
        case "BatchNormalization": return [try NeuralOps.batchNorm(node, inputs)]
        case "MaxPool", "AveragePool": return [try NeuralOps.pool(node, try input(0))]
        case "GlobalAveragePool": return [try NeuralOps.globalAveragePool(node, try input(0))]
        case "Resize", "Upsample": return [try ResizeOp.resize(node, inputs)]
        case "MatMul": return [try NeuralOps.matMul(node, try input(0), try input(1))]
        case BandedMatMul.op: return [try BandedMatMul.run(node, try input(0), try input(1))]
        case Fusion.linearOp: return [try NeuralOps.linear(node, try input(0), try input(1), try input(2))]
        case Fusion.geluOp:
            let divisor = try node.float("divisor", 1.4142135)
            return [Elementwise.vectorMap(try input(0)) { x in 0.5 * x * (1 + VectorMath.erf(x / divisor)) }]
        case "Gemm": return [try NeuralOps.gemm(node, inputs)]
        case "Softmax", "LogSoftmax": return [try NeuralOps.softmax(node, try input(0))]
        case "LayerNormalization": return [try NeuralOps.layerNorm(node, inputs)]
        case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceSumSquare": return [try NeuralOps.reduce(node, inputs)]
        case "Pad": return [try NeuralOps.pad(node, inputs)]
        case "Transpose": return [try ShapeOps.transpose(node, try input(0))]
        case "Reshape": return [try ShapeOps.reshape(node, try input(0), try input(1))]
        case "Flatten": return [try ShapeOps.flatten(node, try input(0))]
        case "Squeeze": return [try ShapeOps.squeeze(node, inputs)]
        case "Unsqueeze": return [try ShapeOps.unsqueeze(node, inputs)]
        case "Concat": return [try ShapeOps.concat(node, try (0..<inputs.count).map { (i: Int) throws(ONNXError) in try input(i) })]
        case "Split": return try ShapeOps.split(node, inputs)
        case "Slice": return [try ShapeOps.sliceOp(node, inputs)]
        case "Gather": return [try ShapeOps.gather(node, try input(0), try input(1))]
        case "Expand": return [try ShapeOps.expand(node, try input(0), try input(1))]
        case "Tile": return [try ShapeOps.tile(node, try input(0), try input(1))]
        case "Identity": return [try input(0)]
        case "Dropout":
            // Inference: the input unchanged, and a mask that keeps everything (the loader refuses training mode).
            let x = try input(0)
            return [x, Value(shape: x.shape, ints: [Int64](repeating: 1, count: x.count))]
        case "Shape":
            let x = try input(0)
            var start = try node.int("start", 0), end = try node.int("end", x.rank)
            if start < 0 { start += x.rank }
            if end < 0 { end += x.rank }
            start = min(max(start, 0), x.rank); end = min(max(end, start), x.rank)
            return [Value(shape: [end - start], ints: x.shape[start..<end].map { Int64($0) })]
        case "Size": return [Value(shape: [], ints: [Int64(try input(0).count)])]
        case "Constant":
            if case .tensor(let value)? = node.attributes["value"] { return [value] }
            if case .float(let f)? = node.attributes["value_float"] { return [Value(shape: [], floats: [f])] }
            if case .floats(let f)? = node.attributes["value_floats"] { return [Value(shape: [f.count], floats: f)] }
            if case .int(let i)? = node.attributes["value_int"] { return [Value(shape: [], ints: [i])] }
            if case .ints(let i)? = node.attributes["value_ints"] { return [Value(shape: [i.count], ints: i)] }
            throw node.fail("a Constant without a value roadwatch reads")
        case "ConstantOfShape":
            let shape = try input(0).intValues.map { Int($0) }
            guard Value.elementCount(shape) != nil else { throw node.fail("shape \(shape)") }
            if case .tensor(let fill)? = node.attributes["value"] {
                if fill.isInt { return [Value(shape: shape, ints: [Int64](repeating: fill.intValues.first ?? 0, count: shape.reduce(1, *)))] }
                return [Value(shape: shape, floats: [Float](repeating: fill.floats.first ?? 0, count: shape.reduce(1, *)))]
            }
            return [Value(shape: shape, floats: [Float](repeating: 0, count: shape.reduce(1, *)))]
        case "Cast":
            let x = try input(0), to = try node.int("to", 1)
            switch to {
            case 1, 10, 11, 16: return [Value(shape: x.shape, floats: x.floatValues)]
            case 6, 7, 2, 3, 5, 12, 13: return [Value(shape: x.shape, ints: x.intValues)]
            case 9: return [Value(shape: x.shape, ints: x.floatValues.map { $0 != 0 ? 1 : 0 })]
            default: throw node.fail("cast to type \(to) is not supported")
            }
        case "Range":
            let start = try input(0), limit = try input(1), delta = try input(2)
            guard start.count == 1, limit.count == 1, delta.count == 1 else {
                throw node.fail("start, limit and delta of shapes \(start.shape), \(limit.shape), \(delta.shape) (one value each)")
            }
            if start.isInt {
                let s = start.intValues[0], l = limit.intValues[0], d = delta.intValues[0]
                guard d != 0 else { throw node.fail("delta 0") }
                // In Double: the model's limits may be Int64's extremes, whose difference overflows.
                let n = try rangeCount((Double(l) - Double(s)) / Double(d))
                return [Value(shape: [n], ints: (0..<n).map { s &+ Int64($0) &* d })]
            }
            let s = start.floatValues[0], l = limit.floatValues[0], d = delta.floatValues[0]
            guard d != 0 else { throw node.fail("delta 0") }
            let n = try rangeCount(Double((l - s) / d))
            return [Value(shape: [n], floats: (0..<n).map { s + Float($0) * d })]
        default:
            throw node.fail("operator \(node.op) is not supported")
        }
    }
}

extension ONNXGraph {
    /// Runs every node once on `feeds` (the graph's inputs by name), in the file's order, and returns the graph's
    /// outputs by name. Nothing is prepared or fused: for tests (ONNX's own node tests) and one-off evaluations;
    /// frames go through `PreparedGraph`.
    public func evaluate(_ feeds: [String: Value]) throws(ONNXError) -> [String: Value] {
        var values = constants
        for input in inputs {
            guard let value = feeds[input.name] else { throw ONNXError("'\(path)': input '\(input.name)' is not given") }
            values[input.name] = value
        }
        let arena = Arena()
        for node in nodes {
            let arguments = try node.inputs.map { (name: String) throws(ONNXError) -> Value? in
                if name.isEmpty { return nil }
                guard let value = values[name] else { throw node.fail("input '\(name)' is not produced before it is used") }
                return value
            }
            let results = try Operators.execute(node, arguments, arena: arena)
            for (name, value) in zip(node.outputs, results) where !name.isEmpty { values[name] = value }
        }
        var result: [String: Value] = [:]
        for name in outputs {
            guard let value = values[name] else { throw ONNXError("'\(path)': output '\(name)' is never produced") }
            result[name] = value
        }
        return result
    }
}
