import ArgumentParser
import Foundation
import Tensors
#if canImport(CMalloc)
import CMalloc
#endif
import Models
import VideoIO

/// The `roadwatch` command: finds things that do not belong on the road in video.
@main
struct Roadwatch: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "roadwatch",
        abstract: "Watch road video for things that do not belong on the road.",
        discussion: """
            Training-free out-of-distribution segmentation: a street-scene segmentation network gives \
            features and confidences per frame, K-Means clusters the features, and clusters the network \
            is unsure about are flagged as anomalies.
            """,
        version: version,
        subcommands: [Run.self, Watch.self, Batch.self, Demo.self, Probe.self, Segment.self, Eval.self, Calibrate.self, ConfigCommand.self, Models.self, Bench.self]
    )

    /// Parses and runs; every failure becomes one line on stderr and a non-zero exit below 128.
    static func main() async {
        limitMallocArenas()
        do {
            try selectKernels()
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exitCleanly(with: error)
        }
    }

    /// glibc gives each thread that allocates its own heap (up to eight per core); the pipeline's stages hand
    /// buffers from thread to thread, so memory freed in one heap waits there while another grows. Two heaps:
    /// a 300-frame run at 512x256 peaks at 298 MB instead of 329 MB at the same speed (one heap costs a quarter
    /// of the frame rate in lock contention). `MALLOC_ARENA_MAX` in the environment still wins.
    ///
    /// Blocks over 4 MiB always come from mmap and go back to the system when freed: glibc otherwise raises that
    /// threshold to the largest block freed (up to 32 MiB), after which the per-frame maps come from the heaps and
    /// their freed pages stay resident (a 1024x512 run peaked at 587 MB, 523 MB with a fixed threshold). Fixed at
    /// 1 MiB, the frames' 1-4 MiB buffers (decoded and annotated pictures, maps the tensor pool does not keep) were
    /// fresh pages every frame: 1,300 page faults a frame on the sample at 1024x512. At 4 MiB + 64 KiB they are
    /// reused from the heap: 3,536 frames at 1024x512 ran at 16.98 frames/s against 16.46, resident memory flat at
    /// 470-473 MB against 457-461 MB from the first sample to the last. `MALLOC_MMAP_THRESHOLD_` still wins.
    static func limitMallocArenas() {
        #if canImport(CMalloc)
        let environment = ProcessInfo.processInfo.environment
        if environment["MALLOC_ARENA_MAX"] == nil { mallopt(M_ARENA_MAX, 2) }
        if environment["MALLOC_MMAP_THRESHOLD_"] == nil { mallopt(M_MMAP_THRESHOLD, (4 << 20) + (64 << 10)) }
        #endif
    }

    /// `ROADWATCH_KERNELS=generic|avx2|avx512` caps the convolution kernels' instruction set (the widest the CPU
    /// runs otherwise): for comparing them, or for a virtual machine that reports AVX-512 it does not run well.
    static func selectKernels() throws {
        guard let name = ProcessInfo.processInfo.environment["ROADWATCH_KERNELS"], !name.isEmpty else { return }
        guard let set = KernelSet(name: name) else {
            throw ValidationError("ROADWATCH_KERNELS=\(name) is not one of \(KernelSet.allCases.map(\.description).joined(separator: ", "))")
        }
        Kernels.select(set)
    }

    static func exitCleanly(with error: any Error) -> Never {
        // A bare exit status (130 after Ctrl-C, 1 after a batch with failures) was explained already.
        if let status = error as? ExitCode { Foundation.exit(status.rawValue) }
        let code = exitCode(for: error)
        if code == .success || error is CleanExit {
            exit(withError: error)  // --help and --version print and exit 0
        }
        let message: String
        if code == .validationFailure {
            message = Self.message(for: error) + " (see 'roadwatch --help')"
        } else if let problem = error as? CustomStringConvertible {
            message = problem.description  // every roadwatch error reads as one line
        } else {
            message = (error as NSError).localizedDescription
        }
        Console.error(message)
        Foundation.exit(code == .success ? 1 : code.rawValue)
    }
}

/// An error the command reports in its own words.
struct RoadwatchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes to standard error, one line at a time.
enum Console {
    static func error(_ message: String) { write("roadwatch: error: \(message)\n") }
    static func warning(_ message: String) { write("roadwatch: warning: \(message)\n") }
    static func info(_ message: String) { write("roadwatch: \(message)\n") }
    static func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
