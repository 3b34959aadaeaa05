/// What the operators compute exactly, checked when a graph is loaded: a node whose form (an attribute value, a
/// mode, an element type, a rank) the runner does not implement is refused there, in one line naming the node and
/// what is missing, so that no graph loads only to compute something else than ONNX specifies.
enum Support {
    /// What is known of a value before anything runs (a declared input or output, a weight).
    struct Declared {
        var type: Int
        var rank: Int?
    }

    /// The element types values may have: floats are computed in Float32 (double too), integers and booleans exactly
    /// in Int64.
    static let computedTypes: [Int: String] = [
        1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 11: "double",
        12: "uint32",
    ]
    static let computedTypeList = "float, double, integers up to int64 and bool are"

    static func isInteger(_ type: Int) -> Bool { computedTypes[type] != nil && type != 1 && type != 11 }

    static func typeName(_ type: Int) -> String {
        let others = [0: "undefined", 8: "string", 10: "float16", 13: "uint64", 14: "complex64", 15: "complex128",
                      16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
                      21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2"]
        return computedTypes[type] ?? others[type] ?? "#\(type)"
    }

    static func check(_ node: Node, opset: Int, known: [String: Declared], file: String) throws(ONNXError) {
        func refuse(_ what: String) -> ONNXError { ONNXError("'\(file)': \(node.label): \(what)") }
        func rank(_ i: Int) -> Int? { i < node.inputs.count ? known[node.inputs[i]]?.rank : nil }
        func type(_ i: Int) -> Int? { i < node.inputs.count ? known[node.inputs[i]]?.type : nil }
        func has(_ i: Int) -> Bool { i < node.inputs.count && !node.inputs[i].isEmpty }
        for (key, attribute) in node.attributes {
            if case .unsupported(let what) = attribute { throw refuse("attribute '\(key)' is of \(what), which roadwatch does not read") }
        }
        // Outputs beyond those computed (training statistics, pooling indices, normalisation statistics).
        let computed = ["BatchNormalization": 1, "LayerNormalization": 1, "MaxPool": 1, "Dropout": 2]
        if let most = computed[node.op], let extra = node.outputs.indices.dropFirst(most).first(where: { !node.outputs[$0].isEmpty }) {
            throw refuse("output \(extra) ('\(node.outputs[extra])') is not computed")
        }
        switch node.op {
        case "Conv", "ConvTranspose", "MaxPool", "AveragePool":
            if let r = rank(0), r != 3 && r != 4 { throw refuse("input of rank \(r): only 1-D and 2-D windows are supported") }
        case "Cast":
            let to = try node.int("to", 1)
            if computedTypes[to] == nil { throw refuse("cast to \(typeName(to)) is not supported (\(computedTypeList))") }
        case "CastLike":
            if let to = type(1), computedTypes[to] == nil { throw refuse("cast to \(typeName(to)) is not supported (\(computedTypeList))") }
        case "BatchNormalization":
            if try node.int("training_mode", 0) != 0 { throw refuse("training mode (batch statistics) is not supported") }
        case "Dropout":
            // Inference only: training mode drops at random.
            if has(2) { throw refuse("a training_mode input is not supported (inference only)") }
        case "Resize":
            if opset < 11 { throw refuse("Resize of opset \(opset) (before 11) is not supported") }
            let mode = try node.string("mode", "nearest")
            guard ["nearest", "linear", "cubic"].contains(mode) else { throw refuse("mode '\(mode)' is not defined") }
            let transform = try node.string("coordinate_transformation_mode", "half_pixel")
            guard ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                   "tf_crop_and_resize"].contains(transform) else { throw refuse("coordinate_transformation_mode '\(transform)' is not defined") }
            let nearest = try node.string("nearest_mode", "round_prefer_floor")
            guard ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"].contains(nearest) else { throw refuse("nearest_mode '\(nearest)' is not defined") }
            if mode == "nearest", try node.int("antialias", 0) != 0 { throw refuse("antialias with mode nearest is not defined") }
            if let t = type(0), Support.isInteger(t), mode != "nearest" { throw refuse("\(mode) resizing of \(typeName(t)) values (rounding back to integers) is not supported") }
        case "Upsample":
            let mode = try node.string("mode", "nearest")
            guard ["nearest", "linear"].contains(mode) else { throw refuse("mode '\(mode)' is not supported") }
        default:
            break
        }
    }
}
