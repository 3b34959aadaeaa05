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
    /// The service's output folder: a camera's evidence is under `<output>/<camera>/`.
    private let output: String

    public init(config: WatchConfig, logger: Logger) {
        self.logger = logger
        output = config.output
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

    /// An event line from a camera: into the store, to the webhooks and to MQTT. The line names the clip the event will
    /// have; the store lists it only once a finished part is in place (`clipFinished`), never a file half-written.
    public func record(_ record: EventRecord) {
        webhooks.send(record)
        mqtt?.send(record)
        var stored = record
        if let clip = record.clip, !FileManager.default.fileExists(atPath: output + "/" + record.camera + "/" + clip) {
            stored.clip = nil
        }
        writeStore { try $0.record(stored) }
    }

    /// A clip part finished and renamed into place: the store lists it from now on.
    public func clipFinished(camera: String, id: String, clip: String, part: Int) {
        writeStore { try $0.clipFinished(id: id, clip: clip, part: part) }
    }

    /// Ends the events a killed process left open (the store says which): each gets an `end` line with the end
    /// reason `interrupted`, in the store, the camera's events.jsonl and to the webhooks; its end is its start,
    /// the last time known. Returns how many.
    @discardableResult
    public func closeInterrupted(cameras: [String]) async -> Int {
        guard let store else { return 0 }
        var closed = 0
        for camera in cameras {
            let open: [EventStore.Row]
            do {
                open = try store.openEvents(camera: camera)
            } catch {
                logger.error("\(error); events left open by a kill stay open")
                continue
            }
            guard !open.isEmpty else { continue }
            let log = try? EventLog(path: output + "/" + camera + "/events.jsonl", appending: true)
            for row in open {
                let end = EventRecord(type: "end", id: row.id, camera: row.camera, start: row.start, end: row.start,
                                      top_score: row.top_score, box: row.box, area: row.area, snapshot: row.snapshot,
                                      clip: row.clip, frames: row.frames, end_reason: "interrupted")
                record(end)
                try? await log?.append(end)
                closed += 1
            }
            try? await log?.close()
            logger.warning("closed \(open.count) events of \(camera) left open when the service last stopped (end reason: interrupted)")
        }
        return closed
    }

    private func writeStore(_ write: (EventStore) throws -> Void) {
        guard let store else { return }
        do {
            try write(store)
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
