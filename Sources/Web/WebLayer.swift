import Foundation
import Logging
import Monitoring
import Pipeline
import Service
import Synchronization

/// What `watch` adds around the cameras when it serves: the event store, metrics, previews and webhooks,
/// fed by the cameras' callbacks, and the server that reads them.
public final class WebLayer: Sendable {
    public let store: EventStore?
    public let metrics: ServiceMetrics
    public let previews: Previews
    public let webhooks: Webhooks
    /// Nil without an `mqtt:` block (or when its client could not be made: logged).
    public let mqtt: MQTTSink?
    private let logger: Logger
    private let storeFailing = Atomic<Bool>(false)

    public init(config: WatchConfig, logger: Logger) {
        self.logger = logger
        metrics = ServiceMetrics(cameras: config.cameras.map(\.name))
        previews = Previews(width: config.http.previewWidth)
        webhooks = Webhooks(config.webhooks, metrics: metrics, logger: logger)
        var mqtt: MQTTSink?
        if let settings = config.mqtt {
            do {
                mqtt = try MQTTSink(config: settings, cameras: config.cameras.map(\.name), output: config.output, http: config.http,
                                    metrics: metrics, logger: logger)
            } catch {
                logger.error("mqtt: \(error); the cameras go on without MQTT")
            }
        }
        self.mqtt = mqtt
        do {
            try OutputChecks.makeFolder(config.output, what: "output folder")
            store = try EventStore(path: config.output + "/events.sqlite")
        } catch {
            logger.error("\(error); events are still written to each camera's events.jsonl, the API has none")
            store = nil
        }
    }

    /// An event line from a camera: into the store, to the webhooks and to MQTT.
    public func record(_ record: EventRecord) {
        webhooks.send(record)
        mqtt?.send(record)
        guard let store else { return }
        do {
            try store.record(record)
            if storeFailing.exchange(false, ordering: .relaxed) { logger.info("the event database is written again") }
        } catch {
            if !storeFailing.exchange(true, ordering: .relaxed) {
                logger.error("\(error); the monitor goes on (events.jsonl has every event)")
            }
        }
    }

    /// A processed frame: metrics and the preview.
    public func frame(camera: String, _ done: MonitoredFrame) {
        metrics.frame(camera: camera, latency: done.arrival.secondsSince, timings: done.timings)
        previews.update(camera: camera, image: done.annotated)
    }

    /// Forgets stored events past the cameras' age limits, every `interval` seconds until cancelled.
    public func retainEvents(_ cameras: [CameraConfig], interval: Double) async {
        while !Task.isCancelled {
            for camera in cameras {
                guard let hours = camera.maxAgeHours else { continue }
                _ = try? store?.forget(camera: camera.name, before: Date().timeIntervalSince1970 - hours * 3600)
            }
            try? await Task.sleep(for: .seconds(interval))
        }
    }
}
