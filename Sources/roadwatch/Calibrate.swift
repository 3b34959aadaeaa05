import Anomaly
import ArgumentParser
import Foundation
import Models
import Monitoring
import VideoIO

/// `roadwatch calibrate`: a memory of normal road from clean footage, for `--memory` and the YAML key `memory`.
struct Calibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a memory of normal road from clean clips (for --alarm memory's --memory).",
        discussion: """
            Reads every Nth frame of each clip, takes the features of the drivable road the memory rule looks at, \
            and keeps a coreset of them in a small file tied to the model and the input size. Use footage without \
            obstacles: whatever is in it counts as normal.
            """
    )

    @Argument(help: "Clean video files.")
    var clips: [String]

    @Option(name: .shortAndLong, help: "The memory file to write (.rwmem).")
    var output: String

    @Option(help: "Read every Nth frame.")
    var every = 4

    @Option(help: "Vectors kept (each 1 KB at 512 channels).")
    var vectors = 4096

    @Flag(help: "Take every cell of the picture, not only the drivable road's.")
    var everywhere = false

    @Flag(help: "No progress on stderr.")
    var quiet = false

    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        guard every >= 1 else { throw ValidationError("--every must be at least 1, got \(every)") }
        guard (1...65536).contains(vectors) else { throw ValidationError("--vectors must be between 1 and 65536, got \(vectors)") }
        for clip in clips where !FileManager.default.fileExists(atPath: clip) {
            throw ValidationError("clip '\(clip)' does not exist")
        }
    }

    func run() async throws {
        let (model, size) = try await modelOptions.load()
        let progress = Progress(total: nil, unit: "frames", quiet: quiet)
        var options = Calibration.Options(size: size, every: every, vectors: vectors)
        options.everywhere = everywhere
        let bank = try await Calibration.run(clips: clips, model: model, options: options,
                                             onWarning: { Console.warning($0) }) { clip, _ in
            progress.advance(note: URL(fileURLWithPath: clip).lastPathComponent)
        }
        progress.finish()
        let data = try bank.encoded()
        do {
            try data.write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            throw RoadwatchError("cannot write '\(output)': \(error.localizedDescription)")
        }
        print("\(output): \(bank.header.count) vectors of \(bank.header.dimension) from \(bank.header.candidates) cells in \(clips.count) clip(s), \(model.descriptor.name) at \(size), \(data.count / 1024) KB")
    }
}
