import Foundation
import Metrics
import Pipeline
import Prometheus
import Service
import Synchronization

/// The service's metrics through swift-metrics, kept in a Prometheus registry of its own (so each service,
/// and each test, has its own) and emitted as Prometheus text for `/metrics`.
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private struct CameraMetrics: @unchecked Sendable {
        // swift-metrics' handles are classes safe to use from any thread.
        let frames, dropped, reconnects, events: Metrics.Counter
        let up: Metrics.Gauge
        let latency: Metrics.Recorder
    }
    private let cameras: [String: CameraMetrics]
    private let stages: [Metrics.Recorder]
    private let webhookFailures: Metrics.Counter
    private let webhookDropped: Metrics.Counter
    private let mqttDropped: Metrics.Counter
    /// The MQTT client's cumulative drop count as last seen, to add the difference.
    private let mqttDroppedSeen = Atomic<Int>(0)
    /// What the counters last saw of each camera's cumulative figures, to add the differences.
    private let seen = Mutex<[String: (dropped: Int, reconnects: Int, events: Int)]>([:])

    public init(cameras names: [String]) {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let latencyBuckets = [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5, 10]
        let stageBuckets = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28]
        factory.valueHistogramBuckets = ["roadwatch_latency_seconds": latencyBuckets, "roadwatch_stage_seconds": stageBuckets]
        self.factory = factory
        var cameras: [String: CameraMetrics] = [:]
        for name in names {
            let d = [("camera", name)]
            cameras[name] = CameraMetrics(
                frames: Metrics.Counter(label: "roadwatch_frames_total", dimensions: d, factory: factory),
                dropped: Metrics.Counter(label: "roadwatch_frames_dropped_total", dimensions: d, factory: factory),
                reconnects: Metrics.Counter(label: "roadwatch_reconnects_total", dimensions: d, factory: factory),
                events: Metrics.Counter(label: "roadwatch_events_total", dimensions: d, factory: factory),
                up: Metrics.Gauge(label: "roadwatch_camera_up", dimensions: d, factory: factory),
                latency: Metrics.Recorder(label: "roadwatch_latency_seconds", dimensions: d, aggregate: true, factory: factory))
        }
        self.cameras = cameras
        stages = StageTimings.names.map {
            Metrics.Recorder(label: "roadwatch_stage_seconds", dimensions: [("stage", $0)], aggregate: true, factory: factory)
        }
        webhookFailures = Metrics.Counter(label: "roadwatch_webhook_failures_total", factory: factory)
        webhookDropped = Metrics.Counter(label: "roadwatch_webhook_dropped_total", factory: factory)
        mqttDropped = Metrics.Counter(label: "roadwatch_mqtt_dropped_total", factory: factory)
    }

    /// One processed frame of `camera`.
    public func frame(camera: String, latency: Double, timings: StageTimings) {
        guard let m = cameras[camera] else { return }
        m.frames.increment()
        m.latency.record(latency)
        for (recorder, seconds) in zip(stages, timings.values) { recorder.record(seconds) }
    }

    /// The cameras' cumulative figures (from their status), turned into counter increments and the up gauge.
    public func update(_ status: [CameraStatus]) {
        for s in status {
            guard let m = cameras[s.name] else { continue }
            m.up.record(s.state == .up ? 1 : 0)
            let (dDropped, dReconnects, dEvents) = seen.withLock { seen -> (Int, Int, Int) in
                let before = seen[s.name] ?? (0, 0, 0)
                // `dropped` restarts from 0 when the camera reopens its source: count from there.
                let dropped = s.dropped >= before.dropped ? s.dropped - before.dropped : s.dropped
                seen[s.name] = (s.dropped, s.reconnects, s.events)
                return (dropped, max(0, s.reconnects - before.reconnects), max(0, s.events - before.events))
            }
            if dDropped > 0 { m.dropped.increment(by: Int64(dDropped)) }
            if dReconnects > 0 { m.reconnects.increment(by: Int64(dReconnects)) }
            if dEvents > 0 { m.events.increment(by: Int64(dEvents)) }
        }
    }

    public func webhookFailed() { webhookFailures.increment() }
    public func webhookDroppedOne() { webhookDropped.increment() }

    /// The MQTT client's cumulative count of messages that never reached the broker; the counter grows by the
    /// difference since the last call.
    public func countMQTTDropped(total: Int) {
        let before = mqttDroppedSeen.exchange(total, ordering: .relaxed)
        if total > before { mqttDropped.increment(by: Int64(total - before)) }
    }

    /// The Prometheus text exposition.
    public func text() -> String { registry.emitToString() }
}
