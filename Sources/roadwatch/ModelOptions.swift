import ArgumentParser
import Foundation
import Models
import Tensors
import VideoIO

/// Options shared by every command that runs a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model: a registry name (see 'roadwatch models list') or a .pth/.safetensors file, or an .onnx file (see the README's 'Bring your own model').")
    var model = ModelRegistry.defaultName

    @Option(help: "Network input size WxH (default: the model's own, 1024x512 for the Cityscapes models).")
    var size: String?

    @Option(help: "Compute threads (default: the machine's cores).")
    var threads: Int?

    func validate() throws {
        if let size, FrameSize(parsing: size) == nil { throw ValidationError("--size must be WxH, e.g. 1024x512, got '\(size)'") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Loads the model, says where it came from on stderr if it had to be fetched, and checks the size.
    func load() async throws -> (LoadedModel, FrameSize) {
        if let threads { ComputeThreads.set(threads) }
        let loaded = try await ModelLoader.load(model, progress: { Console.info($0) })
        let chosen = size.flatMap(FrameSize.init(parsing:))
            ?? FrameSize(width: loaded.descriptor.defaultSize.width, height: loaded.descriptor.defaultSize.height)
        try loaded.network.checkInputSize(width: chosen.width, height: chosen.height)
        return (loaded, chosen)
    }
}
