import Foundation
import Logging
import Monitoring
import Notify
import Service
import Synchronization

/// The event stream on an MQTT broker: availability, event changes, per-camera obstacle state, snapshots,
/// camera state and stats, a detection switch, and Home Assistant discovery (see docs/mqtt.md).
///
/// `send` never waits: the client queues (bounded) and delivers while connected. Everything retained is published
/// again on every (re)connection, because a broker restarted without persistence has forgotten it.
public final class MQTTSink: Sendable {
    public let config: MQTTConfig
    public let client: MQTTClient
    private let cameras: [String]
    private let output: String
    /// `http://host:port` when the web server runs: event messages then carry snapshot and clip URLs.
    private let webBase: String?
    private let metrics: ServiceMetrics?
    private let logger: Logger

    private struct State {
        /// The open events of each camera, for `obstacle`.
        var open: [String: Set<String>] = [:]
        /// The last state of each open event, for `before`.
        var last: [String: EventRecord] = [:]
        /// The snapshot file last published per camera, so an update without a better picture sends no bytes.
        var snapshot: [String: String] = [:]
        var lastProblem: String?
        var service: WatchService?
    }
    private let state = Mutex(State())
    private let stopping = Atomic<Bool>(false)

    public init(config: MQTTConfig, cameras: [String], output: String, http: HTTPSettings, metrics: ServiceMetrics?,
                logger: Logger) throws {
        self.config = config
        self.cameras = cameras
        self.output = output
        self.metrics = metrics
        self.logger = logger
        if http.enabled {
            // A wildcard listen address is no address a subscriber can use: the machine's name is.
            let wildcard = ["0.0.0.0", "::", ""].contains(http.host)
            let host = wildcard ? ProcessInfo.processInfo.hostName : http.host
            webBase = "http://\(host.contains(":") ? "[\(host)]" : host):\(http.port)"
        } else {
            webBase = nil
        }
        client = try MQTTClient(settings: Self.settings(config))
        let prefix = config.prefix
        client.onStateChange = { [weak self] change in self?.linkChanged(change) }
        client.onMessage = { [weak self] message in self?.received(message) }
        try client.subscribe(topic: "\(prefix)/+/detect/set")
        if config.discovery { try client.subscribe(topic: "homeassistant/status") }
    }

    /// The client settings for `config`: availability as birth and will.
    public static func settings(_ config: MQTTConfig, withAvailability: Bool = true) -> MQTTSettings {
        var tls: MQTTSettings.TLS?
        if config.tls { tls = .init(caFile: config.caFile, certificateFile: config.certFile, keyFile: config.keyFile) }
        return MQTTSettings(host: config.host, port: config.port, keepalive: .seconds(config.keepalive), clientID: config.clientID,
                            username: config.user, password: config.password, tls: tls,
                            will: withAvailability ? .availability(prefix: config.prefix, online: false) : nil,
                            birth: withAvailability ? .availability(prefix: config.prefix, online: true) : nil,
                            queueCapacity: 500, backoff: Backoff(initial: .seconds(1), multiplier: 2, maximum: .seconds(30)))
    }

    /// Connects to the broker once, for `watch --check`: one line saying whether it worked.
    public static func probe(_ config: MQTTConfig, timeout: Duration = .seconds(3)) async -> (ok: Bool, line: String) {
        var probeSettings = Self.settings(config, withAvailability: false)
        // Its own id: the running service's connection must not be taken over by a check.
        probeSettings.clientID = config.clientID + "-check"
        let endpoint = probeSettings.endpoint
        let client: MQTTClient
        do {
            client = try MQTTClient(settings: probeSettings)
        } catch {
            return (false, "mqtt: \(error)")
        }
        client.start()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, client.connectionState != .connected, client.lastError == nil {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let connected = client.connectionState == .connected
        let problem = client.lastError
        await client.stop(timeout: .milliseconds(200))
        if connected { return (true, "mqtt: connected to \(endpoint)") }
        return (false, "mqtt: " + (problem ?? "no answer from \(endpoint) within \(timeout)"))
    }

    // MARK: Topics

    var available: String { "\(config.prefix)/available" }
    func topic(_ camera: String, _ leaf: String) -> String { "\(config.prefix)/\(camera)/\(leaf)" }

    // MARK: Running

    /// Connects, publishes the retained state, then camera state and stats every `statsInterval` seconds until
    /// `stop()`. `service` answers the detection switch and the stats.
    public func run(service: WatchService) async {
        state.withLock { $0.service = service }
        client.start()
        var nextStats = ContinuousClock.now + .seconds(min(config.statsInterval, 2))
        while !stopping.load(ordering: .relaxed) {
            metrics?.countMQTTDropped(total: client.droppedCount)
            if ContinuousClock.now >= nextStats {
                publishStats(service)
                nextStats = ContinuousClock.now + .seconds(config.statsInterval)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Says `offline` (a clean disconnect suppresses the will) and disconnects.
    public func stop() async {
        stopping.store(true, ordering: .relaxed)
        // The cameras have ended their events by now: their OFF states are already queued before this.
        await client.stop(finalMessage: .availability(prefix: config.prefix, online: false), timeout: .seconds(3))
        metrics?.countMQTTDropped(total: client.droppedCount)
    }

    /// One event change from a camera (already past its detection switch).
    public func send(_ record: EventRecord) {
        let (before, obstacleChanged, isOpen) = state.withLock { s -> (EventRecord?, Bool, Bool) in
            let before = s.last[record.id]
            var open = s.open[record.camera] ?? []
            let wasOpen = !open.isEmpty
            if record.type == "end" {
                open.remove(record.id)
                s.last[record.id] = nil
            } else {
                open.insert(record.id)
                s.last[record.id] = record
            }
            s.open[record.camera] = open
            return (before, wasOpen != !open.isEmpty, !open.isEmpty)
        }
        // The picture first: a subscriber woken by the event or by obstacle ON finds the snapshot already there.
        publishSnapshot(record)
        let message = EventMessage(type: record.type, before: before.map { eventState($0) }, after: eventState(record))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let body = try? encoder.encode(message) {
            publish(MQTTMessage(topic: "\(config.prefix)/events", payload: Array(body), qos: .atLeastOnce))
        }
        if obstacleChanged || record.type == "new" {
            publish(MQTTMessage(topic: topic(record.camera, "obstacle"), string: isOpen ? "ON" : "OFF", retain: true))
        }
    }

    private func publishSnapshot(_ record: EventRecord) {
        guard let name = record.snapshot else { return }
        let path = "\(output)/\(record.camera)/\(name)"
        // The snapshot is rewritten when an event's score improves: its size and time tell a new picture apart.
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let stamp = "\(path) \((attributes?[.size] as? Int) ?? 0) \((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        let fresh = state.withLock { s in
            guard s.snapshot[record.camera] != stamp else { return false }
            s.snapshot[record.camera] = stamp
            return true
        }
        guard fresh, let bytes = FileManager.default.contents(atPath: path), !bytes.isEmpty else { return }
        publish(MQTTMessage(topic: topic(record.camera, "snapshot"), payload: Array(bytes), qos: .atLeastOnce, retain: true))
    }

    private func publishStats(_ service: WatchService) {
        let reports = service.status
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var totals = Stats(cameras: reports.count)
        for report in reports {
            let camera = CameraJSON(report)
            if let body = try? encoder.encode(camera) {
                publish(MQTTMessage(topic: topic(report.status.name, "state"), payload: Array(body), qos: .atMostOnce, retain: true))
            }
            totals.add(camera)
        }
        totals.mqtt_dropped = client.droppedCount
        if let body = try? encoder.encode(totals) {
            publish(MQTTMessage(topic: "\(config.prefix)/stats", payload: Array(body), qos: .atMostOnce, retain: true))
        }
    }

    private func publish(_ message: MQTTMessage) {
        do {
            try client.publish(message)
        } catch {
            logger.warning("mqtt: \(message.topic): \(error)")
        }
    }

    // MARK: The connection

    private func linkChanged(_ change: MQTTConnectionState) {
        switch change {
        case .connected:
            let hadProblem = state.withLock { s in
                defer { s.lastProblem = nil }
                return s.lastProblem != nil
            }
            logger.info("mqtt: connected to \(client.settings.endpoint)\(hadProblem ? " again" : "")")
            publishRetained()
        case .disconnected(let reason):
            guard !stopping.load(ordering: .relaxed), reason != "not started", reason != "stopped" else { return }
            // The client retries with backoff and reports each failure: one line per distinct problem, not per retry.
            let repeated = state.withLock { s in
                defer { s.lastProblem = reason }
                return s.lastProblem == reason
            }
            if !repeated { logger.warning("mqtt: \(reason); the cameras go on, MQTT retries in the background") }
        case .connecting:
            break
        }
    }

    /// What subscribers expect to find retained: obstacle and detection state per camera, discovery configs; and
    /// the clearing of what an earlier run left for cameras (or names) no longer configured.
    private func publishRetained() {
        let (open, service) = state.withLock { ($0.open, $0.service) }
        var retained = Set<String>()
        for camera in cameras {
            publish(MQTTMessage(topic: topic(camera, "obstacle"), string: open[camera]?.isEmpty == false ? "ON" : "OFF", retain: true))
            let detecting = service?.cameras.first { $0.config.name == camera }?.isDetecting ?? true
            publish(MQTTMessage(topic: topic(camera, "detect/state"), string: detecting ? "ON" : "OFF", retain: true))
            retained.formUnion(["obstacle", "detect/state", "snapshot", "state"].map { topic(camera, $0) })
        }
        retained.insert("\(config.prefix)/stats")
        if config.discovery {
            for (configTopic, body) in discoveryConfigs() {
                publish(MQTTMessage(topic: configTopic, payload: Array(body), qos: .atLeastOnce, retain: true))
                retained.insert(configTopic)
            }
        }
        let ledger = RetainedLedger(path: output + "/.mqtt-retained.json")
        for stale in ledger.read().subtracting(retained).sorted() {
            // An empty retained payload deletes the retained message (and, under homeassistant/, the entity).
            publish(MQTTMessage(topic: stale, payload: [], qos: .atLeastOnce, retain: true))
            logger.info("mqtt: cleared \(stale) (no longer configured)")
        }
        ledger.write(retained, logger: logger)
    }

    private func received(_ message: MQTTMessage) {
        if message.topic == "homeassistant/status" {
            // Home Assistant restarted: it asks for the discovery configs again by announcing itself.
            if message.string == "online" { publishRetained() }
            return
        }
        let levels = message.topic.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let prefixLevels = config.prefix.split(separator: "/", omittingEmptySubsequences: false).count
        guard levels.count == prefixLevels + 3 else { return }
        let camera = levels[prefixLevels]
        let text = (message.string ?? "").trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
        guard cameras.contains(camera), let runner = state.withLock({ $0.service })?.cameras.first(where: { $0.config.name == camera }) else {
            logger.warning("mqtt: \(message.topic): no camera '\(camera)' here; ignored")
            return
        }
        guard text == "ON" || text == "OFF" else {
            logger.warning("mqtt: \(message.topic): expected ON or OFF, got '\(String((message.string ?? "(binary)").prefix(40)))'; ignored")
            return
        }
        runner.setDetecting(text == "ON")
        publish(MQTTMessage(topic: topic(camera, "detect/state"), string: text, retain: true))
    }

    // MARK: Home Assistant discovery

    /// Each entity's config topic and JSON: per camera a problem binary sensor, fps and latency sensors, a camera
    /// fed by the snapshot topic and a detection switch, all on one device named after the client id.
    func discoveryConfigs() -> [(topic: String, body: Data)] {
        let node = config.clientID
        // The device is named by the client id alone: Home Assistant prefixes entity ids with the device name, so
        // "roadwatch-garage" gives binary_sensor.roadwatch_garage_front_obstacle, not roadwatch_roadwatch_garage_….
        let device: [String: Any] = ["identifiers": [node], "name": node, "manufacturer": "roadwatch",
                                     "model": "roadwatch watch"]
        var configs: [(String, Data)] = []
        func add(_ component: String, _ camera: String, _ object: String, _ fields: [String: Any]) {
            var body = fields
            body["unique_id"] = "\(node)_\(camera)_\(object)"
            body["device"] = device
            body["availability_topic"] = available
            body["payload_available"] = "online"
            body["payload_not_available"] = "offline"
            body["origin"] = ["name": "roadwatch"]
            guard let data = try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
            configs.append(("homeassistant/\(component)/\(node)/\(camera)_\(object)/config", data))
        }
        for camera in cameras {
            add("binary_sensor", camera, "obstacle", ["name": "\(camera) obstacle", "state_topic": topic(camera, "obstacle"),
                                                      "payload_on": "ON", "payload_off": "OFF", "device_class": "problem"])
            add("sensor", camera, "fps", ["name": "\(camera) fps", "state_topic": topic(camera, "state"),
                                          "value_template": "{{ value_json.fps }}", "unit_of_measurement": "fps",
                                          "state_class": "measurement"])
            add("sensor", camera, "latency", ["name": "\(camera) latency", "state_topic": topic(camera, "state"),
                                              "value_template": "{{ value_json.latency_ms }}", "unit_of_measurement": "ms",
                                              "device_class": "duration", "state_class": "measurement"])
            add("camera", camera, "snapshot", ["name": "\(camera) snapshot", "topic": topic(camera, "snapshot")])
            add("switch", camera, "detect", ["name": "\(camera) detection", "command_topic": topic(camera, "detect/set"),
                                             "state_topic": topic(camera, "detect/state"), "payload_on": "ON", "payload_off": "OFF"])
        }
        return configs
    }

    // MARK: Payloads

    private func eventState(_ record: EventRecord) -> EventState {
        let api = webBase.map { "\($0)/api/events/\(record.id)" }
        return EventState(camera: record.camera, id: record.id, start: record.start, end: record.end, box: record.box,
                          score: (record.top_score * 1000).rounded() / 1000, area: record.area, frames: record.frames,
                          snapshot_url: record.snapshot == nil ? nil : api.map { $0 + "/snapshot.jpg" },
                          clip_url: record.clip == nil ? nil : api.map { $0 + "/clip.mp4" })
    }
}

/// An event as MQTT subscribers see it, before or after a change.
struct EventState: Encodable {
    var camera: String, id: String, start: Double, end: Double?, box: [Int], score: Double, area: Int, frames: Int
    var snapshot_url: String?, clip_url: String?
}

/// `<prefix>/events`: one change with the event's state before it (null for `new`) and after it.
struct EventMessage: Encodable {
    var type: String
    var before: EventState?
    var after: EventState

    private enum CodingKeys: String, CodingKey { case type, before, after }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        // null, not absent: subscribers read `before` the same way for every type.
        if let before { try c.encode(before, forKey: .before) } else { try c.encodeNil(forKey: .before) }
        try c.encode(after, forKey: .after)
    }
}

/// `<prefix>/stats`: the cameras' figures added up.
struct Stats: Encodable {
    var cameras: Int
    var cameras_up = 0
    var fps = 0.0
    var frames = 0
    var dropped = 0
    var reconnects = 0
    var events = 0
    var latency_p99_ms = 0.0
    var mqtt_dropped = 0

    init(cameras: Int) { self.cameras = cameras }

    mutating func add(_ camera: CameraJSON) {
        if camera.state == "up" { cameras_up += 1 }
        fps = ((fps + camera.fps) * 100).rounded() / 100
        frames += camera.frames
        dropped += camera.dropped
        reconnects += camera.reconnects
        events += camera.events
        latency_p99_ms = max(latency_p99_ms, camera.latency_p99_ms)
    }
}

/// The retained topics a run published, in a small file in the output folder, so the next run can clear those it
/// no longer publishes (a camera removed from the YAML, a changed prefix or client id, discovery turned off).
///
/// A file rather than reading the broker's retained messages back on start: a subscription gives no sign that
/// all retained messages have arrived, so "clear what is there" would depend on a timeout; the file is exact.
struct RetainedLedger {
    let path: String

    func read() -> Set<String> {
        guard let data = FileManager.default.contents(atPath: path),
              let list = try? JSONSerialization.jsonObject(with: data) as? [String] else { return [] }
        return Set(list)
    }

    func write(_ topics: Set<String>, logger: Logger) {
        guard let data = try? JSONSerialization.data(withJSONObject: topics.sorted(), options: [.prettyPrinted]) else { return }
        let partial = path + ".partial"
        if FileManager.default.createFile(atPath: partial, contents: data), rename(partial, path) == 0 { return }
        logger.warning("mqtt: cannot write \(path): the next run cannot clear topics of cameras removed meanwhile")
    }
}
