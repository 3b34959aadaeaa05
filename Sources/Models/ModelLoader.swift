import Foundation
import Tensors

/// A ready-to-run model with what the rest of roadwatch needs to know about it.
public struct LoadedModel: Sendable {
    public var descriptor: ModelDescriptor
    public var network: any SegmentationModel
    /// The weight file it was built from.
    public var file: URL
}

/// Builds models from names, registry entries or weight files.
public enum ModelLoader {
    /// Reads a weight file by its format: PyTorch checkpoint (legacy or zip) or safetensors.
    public static func readWeights(_ file: URL) throws -> [String: WeightTensor] {
        let path = file.path
        var tensors: [String: WeightTensor]
        if path.hasSuffix(".safetensors") {
            tensors = try SafeTensorsFile(path: path).allFloats()
        } else {
            tensors = try TorchCheckpoint.load(path: path)
        }
        // Checkpoints saved from nn.DataParallel prefix every name with "module.".
        if !tensors.isEmpty, tensors.keys.allSatisfy({ $0.hasPrefix("module.") }) {
            tensors = Dictionary(uniqueKeysWithValues: tensors.map { (String($0.key.dropFirst(7)), $0.value) })
        }
        return tensors
    }

    /// The architecture a set of tensor names belongs to, if any.
    public static func architecture(of tensors: [String: WeightTensor]) -> Architecture? {
        if tensors["base_net.level1.conv.weight"] != nil { return .espnetv2 }
        if tensors["encoder.level1.conv.weight"] != nil { return .espnet }
        return nil
    }

    public static func build(_ architecture: Architecture, weights: WeightSet) throws -> any SegmentationModel {
        switch architecture {
        case .espnetv2: return try ESPNetv2(weights: weights)
        case .espnet: return try ESPNet(weights: weights)
        case .onnx: throw ModelStoreError("an ONNX model is read from its .onnx file, not from a weight file")
        }
    }

    /// An ONNX segmentation network and its definition (`FILE.json` beside it, or the defaults), prepared at
    /// the definition's default size (1024x512 without one).
    public static func loadONNX(_ file: URL, definition given: ONNXDefinition? = nil, name: String? = nil) throws -> LoadedModel {
        guard FileManager.default.fileExists(atPath: file.path) else { throw ModelStoreError("model file '\(file.path)' does not exist") }
        let definition = try given ?? ONNXDefinition.beside(file)
        let size = definition.default_size.flatMap { $0.count == 2 ? ($0[0], $0[1]) : nil } ?? (1024, 512)
        guard (1...16_384).contains(size.0), (1...16_384).contains(size.1) else {
            throw ModelStoreError("model definition of '\(file.path)': default_size \(size.0)x\(size.1) is not 1...16384 a side")
        }
        let network = try ONNXSegmentation(file: file, definition: definition, size: size)
        let classes = definition.classes ?? (network.outputChannels <= 20 && network.outputChannels >= 19
            ? Array(ModelRegistry.cityscapesClasses.prefix(network.outputChannels)) + (network.outputChannels == 20 ? ["void"] : [])
            : (0..<network.outputChannels).map { "class \($0)" })
        guard classes.count == network.outputChannels else {
            throw ModelStoreError("model definition of '\(file.path)' names \(classes.count) classes for \(network.outputChannels) logit channels")
        }
        let palette = (0..<classes.count).map { i -> [UInt8] in
            i < ModelRegistry.cityscapesPalette.count ? ModelRegistry.cityscapesPalette[i]
                : [UInt8(truncatingIfNeeded: i * 67), UInt8(truncatingIfNeeded: i * 151), UInt8(truncatingIfNeeded: i * 29)]
        }
        let inDistribution = definition.in_distribution_classes ?? min(classes.count, classes.last == "void" ? classes.count - 1 : classes.count)
        guard inDistribution >= 1, inDistribution <= classes.count else {
            throw ModelStoreError("model definition of '\(file.path)': in_distribution_classes \(inDistribution) is not 1...\(classes.count)")
        }
        let descriptor = ModelDescriptor(
            name: name ?? file.lastPathComponent, architecture: .onnx, summary: "ONNX model \(file.lastPathComponent)",
            fileName: file.lastPathComponent, url: "", sha256: "", bundled: false, defaultSize: network.fixedInputSize ?? size,
            normalization: try definition.normalization, classNames: classes, palette: palette,
            inDistributionClasses: inDistribution, licence: "as its publisher says: weights carry their training data's terms")
        return LoadedModel(descriptor: descriptor, network: network, file: file)
    }

    /// Loads `spec`: a registry name, a model added with `roadwatch models add`, or the path of a weight file
    /// whose architecture is recognised from its tensor names (settings then come from the registry entry of
    /// that architecture).
    public static func load(_ spec: String, store: ModelStore = ModelStore(), users: UserModels = UserModels(),
                            progress: (@Sendable (String) -> Void)? = nil) async throws -> LoadedModel {
        if let descriptor = ModelRegistry.named(spec) {
            let file = try await store.file(for: descriptor, progress: progress)
            let network = try build(descriptor.architecture, weights: WeightSet(file: file.path, tensors: try readWeights(file)))
            return LoadedModel(descriptor: descriptor, network: network, file: file)
        }
        if !spec.contains("/"), let entry = try users.entry(spec) {
            let file = try await users.file(for: entry, progress: progress)
            var loaded = try loadONNX(file, definition: entry.definition, name: entry.name)
            loaded.descriptor.summary = entry.summary ?? loaded.descriptor.summary
            loaded.descriptor.url = entry.url ?? ""
            loaded.descriptor.sha256 = entry.sha256
            return loaded
        }
        if spec.lowercased().hasSuffix(".onnx") { return try loadONNX(URL(fileURLWithPath: spec)) }
        guard spec.contains("/") || spec.hasSuffix(".pth") || spec.hasSuffix(".safetensors") else {
            let names = (ModelRegistry.all.map(\.name) + users.names()).joined(separator: ", ")
            throw ModelStoreError("unknown model '\(spec)' (known: \(names); or give a path to a .pth, .safetensors or .onnx file)")
        }
        let file = URL(fileURLWithPath: spec)
        guard FileManager.default.fileExists(atPath: file.path) else { throw ModelStoreError("model file '\(spec)' does not exist") }
        let tensors = try readWeights(file)
        guard let architecture = architecture(of: tensors),
              var descriptor = ModelRegistry.all.first(where: { $0.architecture == architecture }) else {
            throw ModelStoreError("'\(spec)' holds no architecture roadwatch knows (expected ESPNetv2 or ESPNet tensor names)")
        }
        descriptor.name = file.lastPathComponent
        descriptor.bundled = false
        let network = try build(architecture, weights: WeightSet(file: file.path, tensors: tensors))
        return LoadedModel(descriptor: descriptor, network: network, file: file)
    }
}
