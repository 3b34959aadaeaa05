import Foundation
import SwiftProtobuf
import Tensors

/// An ONNX model read and checked: its nodes in order, its weights, its inputs and outputs.
///
/// Loading refuses, in one line, what it cannot run exactly: an operator not implemented here (naming it
/// and the node), a file that does not parse, sizes that do not match their data, external data outside
/// the model's folder. `prepared(input:)` then folds everything that does not depend on the image for a
/// fixed input shape (weights, shape arithmetic), so a frame runs only the nodes that need it.
public struct ONNXGraph: Sendable {
    public let path: String
    public private(set) var nodes: [Node]
    /// Weights and folded values by name.
    public private(set) var constants: [String: Value]
    /// The graph's inputs that are not weights, with their declared shapes (0 where symbolic).
    public let inputs: [(name: String, shape: [Int])]
    public let outputs: [String]
    public let opset: Int
    /// The files beside the model that hold its external data (relative paths, as the file names them).
    public let externalFiles: [String]

    /// Files larger than this are refused (a lying size or an archive passed by mistake).
    public static let maximumFileBytes = 2 << 30
    /// Tensors with more elements than this are refused.
    public static let maximumElements = 1 << 30

    public static let supportedOperators: Set<String> = Set<String>([
        "Conv", "ConvTranspose", "BatchNormalization", "Relu", "PRelu", "LeakyRelu", "Clip", "HardSwish",
        "HardSigmoid", "Sigmoid", "Gelu", "Erf", "Tanh", "Elu", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Floor",
        "Ceil", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Max", "Min", "Equal", "Less", "Greater", "Where",
        "MatMul", "Gemm", "Softmax", "LogSoftmax", "LayerNormalization", "ReduceMean", "ReduceSum", "ReduceMax",
        "ReduceSumSquare", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice",
        "Gather", "Expand", "Tile", "Resize", "Upsample", "MaxPool", "AveragePool", "GlobalAveragePool", "Pad",
        "Shape", "Size", "Constant", "ConstantOfShape", "Identity", "Cast", "Dropout", "Range",
    ]).union(MoreOps.operators)

    public init(path: String) throws(ONNXError) {
        let url = URL(fileURLWithPath: path)
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let size = attributes?[.size] as? Int else { throw ONNXError("cannot read ONNX model '\(path)': no such file") }
        guard size > 0 else { throw ONNXError("ONNX model '\(path)' is empty") }
        guard size <= Self.maximumFileBytes else { throw ONNXError("ONNX model '\(path)' is \(size) bytes, more than roadwatch reads") }
        guard let data = try? Data(contentsOf: url) else { throw ONNXError("cannot read ONNX model '\(path)'") }
        try self.init(data: data, path: path)
    }

    /// A model from its bytes; `path` names it in errors and locates its external data.
    public init(data: Data, path: String) throws(ONNXError) {
        self.path = path
        let url = URL(fileURLWithPath: path)
        let model: RoadwatchOnnx_ModelProto
        do {
            model = try RoadwatchOnnx_ModelProto(serializedBytes: data)
        } catch {
            throw ONNXError("'\(path)' is not an ONNX model (protobuf: \(error))")
        }
        guard model.hasGraph, !model.graph.node.isEmpty else { throw ONNXError("ONNX model '\(path)' has no graph") }
        opset = Int(model.opsetImport.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version ?? 0)
        let folder = url.deletingLastPathComponent()
        var constants: [String: Value] = [:]
        for tensor in model.graph.initializer {
            constants[tensor.name] = try Self.value(tensor, folder: folder, file: path)
        }
        nodes = try model.graph.node.map { (proto: RoadwatchOnnx_NodeProto) throws(ONNXError) -> Node in
            try Self.node(proto, folder: folder, file: path)
        }
        inputs = model.graph.input.filter { constants[$0.name] == nil }.map { input in
            (input.name, input.type.tensorType.shape.dim.map { Int($0.dimValue) })
        }
        outputs = model.graph.output.map(\.name)
        // What each value is known to be before anything runs: the declared inputs and outputs, the weights.
        // Forms the operators cannot compute exactly are refused here, at load, rather than computed wrongly.
        var known: [String: Support.Declared] = [:]
        for tensor in model.graph.initializer { known[tensor.name] = .init(type: Int(tensor.dataType), rank: tensor.dims.count) }
        for info in model.graph.input + model.graph.output where known[info.name] == nil {
            let kind = info.name.isEmpty ? "a value" : "'\(info.name)'"
            guard info.hasType else { continue }  // undeclared: nothing to check
            guard info.type.hasTensorType else {
                throw ONNXError("'\(path)': \(kind) is not a tensor (a sequence, map or optional), which roadwatch does not run")
            }
            let type = Int(info.type.tensorType.elemType)
            guard type == 0 || Support.computedTypes[type] != nil else {
                throw ONNXError("'\(path)': \(kind) has element type \(Support.typeName(type)), which roadwatch does not compute (\(Support.computedTypeList))")
            }
            if type != 0 { known[info.name] = .init(type: type, rank: info.type.tensorType.hasShape ? info.type.tensorType.shape.dim.count : nil) }
        }
        externalFiles = Array(Set(model.graph.initializer.filter { $0.dataLocation == 1 }
            .compactMap { tensor in tensor.externalData.first { $0.key == "location" }?.value })).sorted()
        guard !outputs.isEmpty else { throw ONNXError("ONNX model '\(path)' declares no output") }
        self.constants = constants
        for node in nodes { try Support.check(node, opset: opset, known: known, file: path) }
        // CastLike casts to its second input's type, which values do not carry: it must be declared.
        for index in nodes.indices where nodes[index].op == "CastLike" {
            guard nodes[index].inputs.count > 1, let type = known[nodes[index].inputs[1]]?.type else {
                throw ONNXError("'\(path)': \(nodes[index].label): the type to cast like is not declared")
            }
            nodes[index].attributes["to"] = .int(Int64(type))
        }
    }

    static func node(_ proto: RoadwatchOnnx_NodeProto, folder: URL, file: String) throws(ONNXError) -> Node {
        var node = Node(name: proto.name, op: proto.opType, domain: proto.domain, inputs: proto.input, outputs: proto.output,
                        attributes: [:])
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ONNXError("'\(file)': \(node.label) is in domain '\(node.domain)', which roadwatch does not run")
        }
        guard supportedOperators.contains(node.op) else {
            throw ONNXError("'\(file)': \(node.label): operator \(node.op) is not supported")
        }
        for attribute in proto.attribute {
            let value: Attribute
            switch attribute.type {
            case 1: value = .float(attribute.f)
            case 2: value = .int(attribute.i)
            case 3: value = .string(String(decoding: attribute.s, as: UTF8.self))
            case 4: value = .tensor(try Self.value(attribute.t, folder: folder, file: file))
            case 6: value = .floats(attribute.floats)
            case 7: value = .ints(attribute.ints)
            default: value = .unsupported("attribute type \(attribute.type)")
            }
            node.attributes[attribute.name] = value
        }
        return node
    }

    /// A weight or constant tensor: raw bytes, typed fields, or external data inside the model's folder.
    static func value(_ tensor: RoadwatchOnnx_TensorProto, folder: URL, file: String) throws(ONNXError) -> Value {
        let name = "'\(file)': tensor '\(tensor.name)'"
        guard tensor.dims.allSatisfy({ $0 >= 0 && $0 <= Int64(maximumElements) }) else {
            throw ONNXError("\(name) has dimensions \(tensor.dims)")
        }
        let shape = tensor.dims.map { Int($0) }
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        guard !overflow, count <= maximumElements else { throw ONNXError("\(name) of shape \(shape) is too large") }
        var raw = tensor.rawData
        if tensor.dataLocation == 1 {
            let entries = Dictionary(tensor.externalData.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let location = entries["location"] else { throw ONNXError("\(name): external data without a location") }
            let target = folder.appendingPathComponent(location).standardizedFileURL
            let root = folder.standardizedFileURL.path.hasSuffix("/") ? folder.standardizedFileURL.path : folder.standardizedFileURL.path + "/"
            guard !location.hasPrefix("/"), target.path.hasPrefix(root) else {
                throw ONNXError("\(name): external data '\(location)' is outside the model's folder")
            }
            guard let handle = try? FileHandle(forReadingFrom: target) else {
                throw ONNXError("\(name): cannot read external data '\(location)'")
            }
            defer { try? handle.close() }
            let offset = UInt64(entries["offset"].flatMap { UInt64($0) } ?? 0)
            let length = entries["length"].flatMap { Int($0) }
            do {
                try handle.seek(toOffset: offset)
                raw = try handle.read(upToCount: length ?? Int.max) ?? Data()
            } catch {
                throw ONNXError("\(name): cannot read external data '\(location)': \(error.localizedDescription)")
            }
        }
        func check(_ n: Int) throws(ONNXError) {
            guard n == count else { throw ONNXError("\(name) of shape \(shape) holds \(n) values") }
        }
        switch tensor.dataType {
        case 1:  // float
            if !raw.isEmpty {
                guard raw.count == count * 4 else { throw ONNXError("\(name): \(raw.count) bytes for \(count) floats") }
                let floats = raw.withUnsafeBytes { bytes in (0..<count).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
                return Value(shape: shape, floats: floats)
            }
            try check(tensor.floatData.count)
            return Value(shape: shape, floats: tensor.floatData)
        case 11:  // double
            if !raw.isEmpty {
                guard raw.count == count * 8 else { throw ONNXError("\(name): \(raw.count) bytes for \(count) doubles") }
                return Value(shape: shape, floats: raw.withUnsafeBytes { bytes in (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) } })
            }
            try check(tensor.doubleData.count)
            return Value(shape: shape, floats: tensor.doubleData.map { Float($0) })
        case 7:  // int64
            if !raw.isEmpty {
                guard raw.count == count * 8 else { throw ONNXError("\(name): \(raw.count) bytes for \(count) int64s") }
                return Value(shape: shape, ints: raw.withUnsafeBytes { bytes in (0..<count).map { Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } })
            }
            try check(tensor.int64Data.count)
            return Value(shape: shape, ints: tensor.int64Data)
        case 6, 9, 2, 3, 5, 4, 12:  // int32, bool, uint8, int8, int16, uint16, uint32
            if !raw.isEmpty {
                let type = tensor.dataType
                let width = type == 6 || type == 12 ? 4 : (type == 5 || type == 4 ? 2 : 1)
                guard raw.count == count * width else { throw ONNXError("\(name): \(raw.count) bytes for \(count) values") }
                let ints: [Int64] = raw.withUnsafeBytes { bytes in
                    (0..<count).map { i in
                        switch width {
                        case 4:
                            let bits = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                            return type == 12 ? Int64(bits) : Int64(Int32(bitPattern: bits))
                        case 2:
                            let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
                            return type == 4 ? Int64(bits) : Int64(Int16(bitPattern: bits))
                        default: return tensor.dataType == 3 ? Int64(Int8(bitPattern: bytes[i])) : Int64(bytes[i])
                        }
                    }
                }
                return Value(shape: shape, ints: ints)
            }
            try check(tensor.int32Data.count)
            return Value(shape: shape, ints: tensor.int32Data.map { Int64($0) })
        default:
            throw ONNXError("\(name) has data type \(Support.typeName(Int(tensor.dataType))), which roadwatch does not read (\(Support.computedTypeList))")
        }
    }

    /// A tensor file (one serialized TensorProto, as ONNX's test data stores inputs and expected outputs), read
    /// with the same rules as a model's weights.
    public static func tensor(file path: String) throws(ONNXError) -> Value {
        guard let data = FileManager.default.contents(atPath: path) else { throw ONNXError("cannot read tensor file '\(path)'") }
        let tensor: RoadwatchOnnx_TensorProto
        do {
            tensor = try RoadwatchOnnx_TensorProto(serializedBytes: data)
        } catch {
            throw ONNXError("'\(path)' is not a TensorProto (protobuf: \(error))")
        }
        return try value(tensor, folder: URL(fileURLWithPath: path).deletingLastPathComponent(), file: path)
    }

    /// The operator types of a model file's nodes, in order, without checking them (for reports on files
    /// that load refuses).
    public static func operatorTypes(path: String) throws(ONNXError) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ONNXError("cannot read ONNX model '\(path)'") }
        do {
            return try RoadwatchOnnx_ModelProto(serializedBytes: data).graph.node.map(\.opType)
        } catch {
            throw ONNXError("'\(path)' is not an ONNX model (protobuf: \(error))")
        }
    }
}
