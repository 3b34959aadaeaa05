import ArgumentParser
import Foundation
import Logging
import Models
import Service
import Tensors
import VideoIO
import Web

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
        for warning in parsed.warnings { Console.warning(warning) }
        if check {
            let enabled = parsed.cameras.filter(\.enabled).count
            print("\(config): valid; \(parsed.cameras.count) cameras (\(enabled) enabled) into \(parsed.output)")
            // The broker is tried, not required: watch keeps retrying a broker that is down, so this only informs.
            if let mqtt = parsed.mqtt {
                let probe = await MQTTSink.probe(mqtt)
                if probe.ok { print(probe.line) } else { Console.warning(probe.line) }
            }
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
        let web = parsed.http.enabled || !parsed.webhooks.isEmpty || parsed.mqtt != nil ? WebLayer(config: parsed, logger: logger) : nil
        let service = try WatchService(config: parsed, model: loaded, defaultSize: size, logger: logger,
                                       onRecord: { _, record in web?.record(record) },
                                       onFrame: { camera, done in web?.frame(camera: camera.name, done) },
                                       onClip: { camera, id, clip, part in web?.clipFinished(camera: camera.name, id: id, clip: clip, part: part) })
        let trap = SignalTrap { service.stop() }
        let started = Date()
        var helpers: [Task<Void, Never>] = []
        let shutdown = Shutdown()
        var retention: Task<Void, Never>?
        if let web {
            helpers.append(Task { await web.webhooks.run() })
            if let mqtt = web.mqtt { helpers.append(Task { await mqtt.run(service: service) }) }
            retention = Task { await web.retainEvents(parsed.cameras, interval: parsed.retentionInterval) }
            if parsed.http.enabled {
                let server = WebServer(service: service, store: web.store, metrics: web.metrics, previews: web.previews,
                                       settings: parsed.http, logger: logger)
                let address = "http://\(parsed.http.host.contains(":") ? "[\(parsed.http.host)]" : parsed.http.host):\(parsed.http.port)/"
                helpers.append(Task {
                    do {
                        try await server.run(shutdown: shutdown, onRunning: { logger.info("serving \(address)") })
                    } catch {
                        // The cameras go on without the page: one line says why.
                        logger.error("the web server stopped: \(error) (is \(parsed.http.host):\(parsed.http.port) in use? set http.listen)")
                    }
                })
            }
        }
        // Events a kill left open are ended (reason: interrupted) before the cameras start new ones.
        await web?.closeInterrupted(cameras: parsed.cameras.map(\.name))
        // Under systemd (Type=notify): READY=1 once the cameras are up, WATCHDOG=1 while frames flow.
        let notifier = SystemdNotifier()
        let supervision = Task { await service.superviseForSystemd(notifier) }
        await service.run()
        notifier.notify("STOPPING=1")
        supervision.cancel()
        web?.webhooks.stop()
        await web?.mqtt?.stop()
        await shutdown.trigger()
        // The retention loop sleeps between sweeps: it is cancelled; the server and the webhooks end by themselves.
        retention?.cancel()
        for helper in helpers { await helper.value }
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
