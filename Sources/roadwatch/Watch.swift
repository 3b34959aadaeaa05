import ArgumentParser
import Foundation
import Logging
import Models
import Service
import Tensors
import VideoIO

/// `roadwatch watch CONFIG.yaml`: the service.
struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch many cameras (and files) in one process, as configured in a YAML file.",
        discussion: """
            Each camera writes under <output>/<camera>/: events.jsonl (new/update/end), snapshots/*.jpg, \
            clips/*.mp4 and, when recording, recordings/*.mp4. The model is loaded once for all cameras. Runs \
            until SIGINT or SIGTERM, then ends open events and closes every file so it plays. A config error \
            exits with 64; --check validates the config without opening anything. See samples/watch.yaml.
            """
    )

    @Argument(help: "The config file (YAML).")
    var config: String

    @Flag(help: "Check the config and exit: 0 when it is valid, 64 (and one line naming the key) when not.")
    var check = false

    func run() async throws {
        let parsed: WatchConfig
        do {
            parsed = try WatchConfig.load(config)
        } catch {
            Console.error(error.description)
            throw ExitCode(64)
        }
        if check {
            let enabled = parsed.cameras.filter(\.enabled).count
            print("\(config): valid; \(parsed.cameras.count) cameras (\(enabled) enabled) into \(parsed.output)")
            return
        }
        let level = Logger.Level(rawValue: parsed.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "roadwatch")
        if let threads = parsed.threads { ComputeThreads.set(threads) }
        let loaded = try await ModelLoader.load(parsed.model ?? ModelRegistry.defaultName, progress: { logger.info("\($0)") })
        let size = FrameSize(width: loaded.descriptor.defaultSize.width, height: loaded.descriptor.defaultSize.height)
        let service = try WatchService(config: parsed, model: loaded, defaultSize: size, logger: logger)
        let trap = SignalTrap { service.stop() }
        let started = Date()
        await service.run()
        let seconds = Date().timeIntervalSince(started)
        for report in service.status {
            let s = report.status
            print(String(format: "%@: %d frames (%.2f fps), %d dropped, %d reconnects, %d events, latency p50 %.0f ms p99 %.0f ms; %@",
                         s.name, s.frames, Double(s.frames) / max(seconds, 1e-9), s.dropped, s.reconnects, s.events,
                         report.latencyP50 * 1000, report.latencyP99 * 1000, s.state.rawValue))
        }
        print("status: \(service.statusPath)")
        if let status = trap.exitStatus { throw ExitCode(status) }
    }
}
