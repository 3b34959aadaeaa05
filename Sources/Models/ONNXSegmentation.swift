import Foundation
import ONNX
import Synchronization
import Tensors

/// What roadwatch needs to know about an ONNX segmentation network beyond the file: read from `FILE.json`
/// beside `FILE.onnx` when it is there, every field optional.
///
///     {"input": {"order": "rgb", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
///                "scaling": "divideFirst", "size_multiple": 32},
///      "default_size": [1024, 512], "logits": "logits", "features": "features",
///      "classes": ["road", ...], "in_distribution_classes": 19}
public struct ONNXDefinition: Codable, Sendable, Equatable {
    public struct Input: Codable, Sendable, Equatable {
        public var order: String?
        public var mean: [Float]?
        public var std: [Float]?
        public var scaling: String?
        public var size_multiple: Int?
    }

    public var input: Input?
    public var default_size: [Int]?
    /// The output (or any value) holding the logits, 1 x C x h x w; default: `logits`, else the first output.
    public var logits: String?
    /// The value whose map is clustered, 1 x C x h x w; default: the logits themselves.
    public var features: String?
    public var classes: [String]?
    public var in_distribution_classes: Int?

    public init() {}

    /// `model.json` for `model.onnx`, or the defaults when there is none.
    public static func beside(_ onnx: URL) throws -> ONNXDefinition {
        let file = onnx.deletingPathExtension().appendingPathExtension("json")
        guard let data = FileManager.default.contents(atPath: file.path) else { return ONNXDefinition() }
        do {
            return try JSONDecoder().decode(ONNXDefinition.self, from: data)
        } catch {
            throw ModelStoreError("model definition '\(file.path)' does not parse: \(error)")
        }
    }

    var normalization: Normalization {
        get throws {
            let order = Normalization.ChannelOrder(rawValue: input?.order ?? "rgb")
            let scaling = Normalization.Scaling(rawValue: input?.scaling ?? "divideFirst")
            let mean = input?.mean ?? [0.485, 0.456, 0.406], std = input?.std ?? [0.229, 0.224, 0.225]
            guard let order, let scaling, mean.count == 3, std.count == 3, std.allSatisfy({ $0 != 0 }) else {
                throw ModelStoreError("model definition: input needs order rgb|bgr, scaling divideFirst|divideLast, 3 means and 3 non-zero stds")
            }
            return Normalization(order: order, mean: mean, std: std, scaling: scaling)
        }
    }
}

/// An ONNX segmentation network as roadwatch's backbone and decoder. The whole graph runs in the backbone
/// stage (an ONNX file is one graph); the decoder stage hands on its logits, resized to the input (half-pixel
/// bilinear) when the network gives them smaller, so scores and class maps are read as for the native models.
public final class ONNXSegmentation: SegmentationModel, Sendable {
    public let graph: ONNXGraph
    public let logitsName: String
    public let featuresName: String
    public let sizeMultiple: Int
    public let featureStride: Int
    public let outputChannels: Int
    public var minimumSize: (width: Int, height: Int) { (sizeMultiple, sizeMultiple) }
    public let fixedInputSize: (width: Int, height: Int)?
    private let prepared = Mutex<[[Int]: PreparedGraph]>([:])

    /// Loads the file and prepares it at `size` to learn its strides and classes.
    public init(file: URL, definition: ONNXDefinition, size: (width: Int, height: Int)) throws {
        graph = try ONNXGraph(path: file.path)
        let declared = graph.inputs.first?.shape ?? []
        fixedInputSize = declared.count == 4 && declared[2] > 0 && declared[3] > 0 ? (declared[3], declared[2]) : nil
        logitsName = definition.logits ?? (graph.outputs.contains("logits") ? "logits" : graph.outputs[0])
        featuresName = definition.features ?? logitsName
        sizeMultiple = definition.input?.size_multiple ?? 32
        guard sizeMultiple >= 1, size.width % sizeMultiple == 0, size.height % sizeMultiple == 0 else {
            throw ModelStoreError("'\(file.path)': size \(size.width)x\(size.height) is not a multiple of \(sizeMultiple)")
        }
        let size = fixedInputSize ?? size
        let shape = [1, 3, size.height, size.width]
        let first = try PreparedGraph(graph, inputShape: shape, keep: [logitsName, featuresName])
        guard let logits = first.shapes[logitsName], logits.count == 4 else {
            throw ModelStoreError("'\(file.path)': logits '\(logitsName)' are not 1 x C x h x w (\(first.shapes[logitsName] ?? []))")
        }
        guard let features = first.shapes[featuresName], features.count == 4 else {
            throw ModelStoreError("'\(file.path)': features '\(featuresName)' are not 1 x C x h x w (\(first.shapes[featuresName] ?? [])); name a 4-D map in the model definition")
        }
        guard features[3] > 0, features[2] > 0, size.width % features[3] == 0, size.height % features[2] == 0,
              size.width / features[3] == size.height / features[2] else {
            throw ModelStoreError("'\(file.path)': features of \(features[3])x\(features[2]) are not the input \(size.width)x\(size.height) divided by a whole stride")
        }
        featureStride = size.width / features[3]
        outputChannels = logits[1]
        prepared.withLock { $0[shape] = first }
    }

    private func graph(for shape: [Int]) throws -> PreparedGraph {
        if let ready = prepared.withLock({ $0[shape] }) { return ready }
        let made = try PreparedGraph(graph, inputShape: shape, keep: [logitsName, featuresName])
        prepared.withLock { $0[shape] = made }
        return made
    }

    public func prepare(width: Int, height: Int) -> String? {
        do {
            let ready = try graph(for: [1, 3, height, width])
            guard let features = ready.shapes[featuresName], features.count == 4, features[3] * featureStride == width,
                  features[2] * featureStride == height else {
                return "'\(graph.path)' at \(width)x\(height): features '\(featuresName)' are not the input divided by \(featureStride)"
            }
            return nil
        } catch {
            return "'\(graph.path)' cannot run at \(width)x\(height): \(error)"
        }
    }

    /// The value as a (C, H, W) tensor.
    static func tensor(_ value: Value) -> Tensor {
        Tensor(shape: Array(value.shape.dropFirst()), values: value.floatValues)
    }

    public func backbone(_ input: Tensor, capture: Capture?) -> BackboneOutput {
        let shape = [1] + input.shape
        do {
            let outputs = try graph(for: shape).run(Value(shape: shape, floats: input.array), names: [logitsName, featuresName])
            let raw = Self.tensor(outputs[logitsName]!)
            // The features keep the network's own grid, even when they are the logits.
            let features = featuresName == logitsName ? raw : Self.tensor(outputs[featuresName]!)
            var logits = raw
            if logits.height != input.height || logits.width != input.width {
                logits = Tensor(uninitialized: [raw.channels, input.height, input.width])
                Resize.bilinear(raw, into: logits, alignCorners: false)
            }
            capture?("logits", logits)
            return BackboneOutput(features: features, maps: ["logits": logits])
        } catch {
            // The size was checked and the graph prepared at load; a failure here is a bug in an operator.
            preconditionFailure("ONNX model '\(graph.path)' failed on a \(input.shape) input: \(error)")
        }
    }

    /// Seconds per operator type over one pass on `input`, most first (`bench model --blocks`).
    public func operatorProfile(_ input: Tensor) throws -> [(op: String, seconds: Double)] {
        let shape = [1] + input.shape
        return try graph(for: shape).profile(Value(shape: shape, floats: input.array))
    }

    public func decoder(_ backbone: BackboneOutput, capture: Capture?) -> Tensor {
        backbone.maps["logits"]!
    }
}
