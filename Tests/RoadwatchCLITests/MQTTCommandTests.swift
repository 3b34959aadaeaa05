import Foundation
import Notify
import Synchronization
import Testing
import TestKit

/// A subscriber on the test broker that keeps every message it receives, in order.
final class MQTTRecorder: Sendable {
    let client: MQTTClient
    private let received = Mutex<[MQTTMessage]>([])

    init(port: Int, topics: [String]) throws {
        let settings = MQTTSettings(host: "127.0.0.1", port: port, keepalive: .seconds(5), clientID: "recorder-\(UUID().uuidString.prefix(8))",
                                    backoff: Backoff(initial: .milliseconds(100), multiplier: 2, maximum: .milliseconds(500)))
        client = try MQTTClient(settings: settings)
        client.onMessage = { [weak self] message in self?.received.withLock { $0.append(message) } }
        for topic in topics { try client.subscribe(topic: topic) }
        client.start()
    }

    var messages: [MQTTMessage] { received.withLock { $0 } }
    func on(_ topic: String) -> [MQTTMessage] { messages.filter { $0.topic == topic } }
    func texts(_ topic: String) -> [String] { on(topic).map { $0.string ?? "" } }

    /// Waits up to `seconds` for `condition` over the messages so far.
    func wait(_ seconds: Double, _ condition: ([MQTTMessage]) -> Bool) async -> Bool {
        await eventually(seconds) { condition(messages) }
    }

    /// Connects a fresh subscriber to `topic` for `seconds`: what the broker keeps retained there.
    static func retained(port: Int, topic: String, seconds: Double = 2) async throws -> [MQTTMessage] {
        let recorder = try MQTTRecorder(port: port, topics: [topic])
        _ = await eventually(5) { recorder.client.connectionState == .connected }
        try await Task.sleep(for: .seconds(seconds))
        await recorder.client.stop()
        return recorder.messages.filter(\.retain)
    }
}

func json(_ message: MQTTMessage) -> [String: Any]? {
    try? JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any]
}

@Suite("roadwatch watch: MQTT events, availability, snapshots and Home Assistant discovery against a real broker", .serialized,
       .enabled(if: MosquittoBroker.isInstalled, "needs /usr/sbin/mosquitto (Debian package mosquitto)"))
struct MQTTCommandTests {
    static let synthetic = SyntheticClip("synthetic_hedgehog_solidWhiteRightFlipped")

    @Test("an event on a file: new … end on <prefix>/events with before/after and URLs, obstacle ON then OFF, the snapshot retained as JPEG, online then offline, state and stats, discovery configs")
    func eventSequence() async throws {
        let broker = try MosquittoBroker()
        let recorder = try MQTTRecorder(port: broker.port, topics: ["rwt/#", "homeassistant/#"])
        #expect(await eventually(5) { recorder.client.connectionState == .connected })
        let scratch = try ScratchDirectory("mqttevents")
        let httpPort = try closedLoopbackPort()
        let config = scratch.path("watch.yaml")
        try """
            output: \(scratch.path("out"))
            http: {listen: 127.0.0.1:\(httpPort)}
            mqtt: {host: 127.0.0.1, port: \(broker.port), prefix: rwt, client_id: rw-events, stats_interval: 1}
            cameras:
              road:                       # read whole: its event does not depend on the load
                input: \(Self.synthetic.video)
                realtime: false
                size: 512x256
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let check = try RoadwatchBinary.run(["watch", "--check", config])
        #expect(check.status == 0 && check.stdout.contains("mqtt: connected to 127.0.0.1:\(broker.port)"), "\(check.stdout)\(check.stderr)")

        let watch = try RunningBinary(["watch", config])
        defer { watch.signal(SIGKILL) }
        let outcome = try await blocking { watch.wait(timeout: 400) }
        #expect(outcome.status == 0 && !outcome.timedOut, "\(outcome.stderr)")
        _ = await recorder.wait(5) { list in list.last { $0.topic == "rwt/available" }?.string == "offline" }

        // Availability: born online, said offline on the clean stop.
        let available = recorder.texts("rwt/available")
        #expect(available.first == "online" && available.last == "offline", "\(available)")

        // Events: new first, its end last, before/after states with the API's URLs.
        let events = recorder.on("rwt/events").compactMap(json)
        let types = events.compactMap { $0["type"] as? String }
        #expect(types.first == "new" && types.last == "end", "\(types)")
        let new = try #require(events.first)
        #expect(new["before"] is NSNull, "a new event has no state before")
        let after = try #require(new["after"] as? [String: Any])
        let id = try #require(after["id"] as? String)
        #expect(after["camera"] as? String == "road" && (after["box"] as? [Int])?.count == 4 && after["score"] is Double)
        #expect(after["snapshot_url"] as? String == "http://127.0.0.1:\(httpPort)/api/events/\(id)/snapshot.jpg", "\(after)")
        let end = try #require(events.last { ($0["after"] as? [String: Any])?["id"] as? String == id && $0["type"] as? String == "end" })
        #expect((end["before"] as? [String: Any])?["id"] as? String == id, "an end carries the state before it")
        #expect((end["after"] as? [String: Any])?["end"] is Double)

        // Obstacle: ON while the event was open, OFF after.
        let obstacle = recorder.texts("rwt/road/obstacle")
        #expect(obstacle.contains("ON") && obstacle.last == "OFF", "\(obstacle)")
        #expect(recorder.texts("rwt/road/detect/state").last == "ON")

        // State and stats, as /api/cameras has them.
        let state = try #require(recorder.on("rwt/road/state").last.flatMap(json), "no camera state")
        for key in ["fps", "latency_ms", "dropped", "reconnects", "frames"] { #expect(state[key] != nil, "state lacks \(key)") }
        let stats = try #require(recorder.on("rwt/stats").last.flatMap(json), "no stats")
        #expect(stats["cameras"] as? Int == 1 && (stats["events"] as? Int ?? 0) >= 1, "\(stats)")

        // Retained after the run: the snapshot (a JPEG) and the discovery configs.
        let snapshot = try await MQTTRecorder.retained(port: broker.port, topic: "rwt/road/snapshot")
        #expect(snapshot.count == 1 && snapshot.first?.payload.starts(with: [0xFF, 0xD8, 0xFF]) == true, "no retained JPEG snapshot")
        let configs = try await MQTTRecorder.retained(port: broker.port, topic: "homeassistant/+/rw-events/+/config")
        #expect(Set(configs.map(\.topic)) == Set(["binary_sensor/rw-events/road_obstacle", "sensor/rw-events/road_fps",
                                                  "sensor/rw-events/road_latency", "camera/rw-events/road_snapshot",
                                                  "switch/rw-events/road_detect"].map { "homeassistant/\($0)/config" }),
                "\(configs.map(\.topic))")
        for message in configs {
            let body = try #require(json(message), "\(message.topic) is not JSON")
            #expect(body["unique_id"] is String && body["name"] is String, "\(message.topic)")
            #expect((body["device"] as? [String: Any])?["identifiers"] as? [String] == ["rw-events"])
            #expect(body["availability_topic"] as? String == "rwt/available")
            let component = message.topic.split(separator: "/")[1]
            switch component {
            case "binary_sensor": #expect(body["state_topic"] as? String == "rwt/road/obstacle" && body["device_class"] as? String == "problem")
            case "camera": #expect(body["topic"] as? String == "rwt/road/snapshot")
            case "switch": #expect(body["command_topic"] as? String == "rwt/road/detect/set" && body["state_topic"] as? String == "rwt/road/detect/state")
            default: #expect(body["state_topic"] as? String == "rwt/road/state" && body["value_template"] is String)
            }
        }
        Self.capture(recorder.messages, retained: snapshot + configs)
        await recorder.client.stop()
    }

    @Test("two cameras live: /metrics counts MQTT drops; detect/set OFF is echoed, a bad payload is one warning; kill -9 publishes offline through the will; a camera left out of the YAML has its discovery configs removed")
    func liveControls() async throws {
        let broker = try MosquittoBroker()
        let recorder = try MQTTRecorder(port: broker.port, topics: ["rwl/#"])
        #expect(await eventually(5) { recorder.client.connectionState == .connected })
        let scratch = try ScratchDirectory("mqttlive")
        let httpPort = try closedLoopbackPort()
        func config(_ cameras: [String]) throws -> String {
            let path = scratch.path("watch-\(cameras.count).yaml")
            try """
                output: \(scratch.path("out"))
                http: {listen: 127.0.0.1:\(httpPort)}
                mqtt: {host: 127.0.0.1, port: \(broker.port), prefix: rwl, client_id: rw-live}
                cameras:
                \(cameras.map { "  \($0): {input: \(Shared.path("data/videos/solidWhiteRight.mp4")), loop: true, size: 256x128}" }.joined(separator: "\n"))
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let watch = try RunningBinary(["watch", try config(["a", "b"])])
        defer { watch.signal(SIGKILL) }
        #expect(await recorder.wait(120) { $0.contains { $0.topic == "rwl/available" && $0.string == "online" } }, "never online")
        #expect(await recorder.wait(10) { $0.contains { $0.topic == "rwl/b/detect/state" } })
        let metrics = try await blocking { () -> String in
            var text = ""
            _ = waitUntil(timeout: 60) {
                text = (try? HTTP.get("http://127.0.0.1:\(httpPort)/metrics").text) ?? ""
                return text.contains("roadwatch_mqtt_dropped_total")
            }
            return text
        }
        #expect(metrics.contains("roadwatch_mqtt_dropped_total 0"), "\(metrics.split(separator: "\n").filter { $0.contains("mqtt") })")

        // The detection switch: OFF echoed on detect/state; a bad payload changes nothing.
        try recorder.client.publish(MQTTMessage(topic: "rwl/a/detect/set", string: "OFF"))
        #expect(await recorder.wait(10) { $0.last { $0.topic == "rwl/a/detect/state" }?.string == "OFF" }, "OFF not echoed")
        try recorder.client.publish(MQTTMessage(topic: "rwl/a/detect/set", string: "maybe"))
        try recorder.client.publish(MQTTMessage(topic: "rwl/nope/detect/set", string: "ON"))
        try await Task.sleep(for: .seconds(1))
        #expect(recorder.texts("rwl/a/detect/state").last == "OFF")

        // kill -9: no goodbye, so the broker publishes the will.
        watch.signal(SIGKILL)
        let outcome = try await blocking { watch.wait(timeout: 30) }
        #expect(await recorder.wait(10) { $0.last { $0.topic == "rwl/available" }?.string == "offline" }, "no will after kill -9")
        let warnings = outcome.stderrLines.filter { $0.contains("detect/set") }
        #expect(warnings.count == 2 && warnings.contains { $0.contains("expected ON or OFF, got 'maybe'") }
                && warnings.contains { $0.contains("no camera 'nope'") }, "\(warnings)")

        // Camera b leaves the YAML: its retained discovery configs (and states) are cleared on the next start.
        let before = try await MQTTRecorder.retained(port: broker.port, topic: "homeassistant/+/rw-live/+/config")
        #expect(before.filter { $0.topic.contains("/b_") }.count == 5, "\(before.map(\.topic))")
        let again = try RunningBinary(["watch", try config(["a"])])
        defer { again.signal(SIGKILL) }
        let onlineCount = recorder.texts("rwl/available").filter { $0 == "online" }.count
        #expect(await recorder.wait(120) { $0.filter { $0.topic == "rwl/available" && $0.string == "online" }.count > onlineCount })
        try await Task.sleep(for: .seconds(1))
        let after = try await MQTTRecorder.retained(port: broker.port, topic: "homeassistant/+/rw-live/+/config")
        #expect(after.filter { $0.topic.contains("/b_") }.isEmpty, "\(after.map(\.topic))")
        #expect(after.filter { $0.topic.contains("/a_") }.count == 5)
        #expect(try await MQTTRecorder.retained(port: broker.port, topic: "rwl/b/#", seconds: 1).isEmpty)
        again.signal(SIGINT)
        let ended = try await blocking { again.wait(timeout: 60) }
        #expect([0, 130].contains(ended.status), "\(ended.stderr)")
        #expect(await recorder.wait(5) { $0.last { $0.topic == "rwl/available" }?.string == "offline" }, "no offline on a clean stop")
        await recorder.client.stop()
    }

    @Test("detection switched OFF (a retained detect/set) before the obstacle: no event leaves the camera, events.jsonl still lists it")
    func detectionOff() async throws {
        let broker = try MosquittoBroker()
        let recorder = try MQTTRecorder(port: broker.port, topics: ["rwd/#"])
        #expect(await eventually(5) { recorder.client.connectionState == .connected })
        // Retained, so the service gets it the moment it subscribes, long before the clip reaches its obstacle.
        try recorder.client.publish(MQTTMessage(topic: "rwd/road/detect/set", string: "OFF", retain: true))
        let scratch = try ScratchDirectory("mqttdetect")
        let config = scratch.path("watch.yaml")
        try """
            output: \(scratch.path("out"))
            http: {enabled: false}
            mqtt: {host: 127.0.0.1, port: \(broker.port), prefix: rwd, client_id: rw-detect}
            cameras:
              road: {input: \(Self.synthetic.video), realtime: false, size: 512x256}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let watch = try RunningBinary(["watch", config])
        defer { watch.signal(SIGKILL) }
        let outcome = try await blocking { watch.wait(timeout: 400) }
        #expect(outcome.status == 0 && !outcome.timedOut, "\(outcome.stderr)")
        let listed = try MediaCheck.jsonLines(scratch.path("out/road/events.jsonl")).count
        #expect(listed >= 1, "the monitor found no event at all: the test proves nothing")
        #expect(recorder.on("rwd/events").isEmpty, "\(recorder.texts("rwd/events"))")
        #expect(!recorder.texts("rwd/road/obstacle").contains("ON"))
        #expect(recorder.texts("rwd/road/detect/state").last == "OFF")
        #expect(outcome.stdout.contains(", 0 events,"), "\(outcome.stdout)")
        await recorder.client.stop()
    }

    @Test("a wrong password: one clear warning line, the cameras go on and events reach the API")
    func wrongPassword() async throws {
        let broker = try MosquittoBroker(users: ["roadwatch": "right-password"])
        let scratch = try ScratchDirectory("mqttpw")
        try "wrong-password\n".write(toFile: scratch.path("pw"), atomically: true, encoding: .utf8)
        let httpPort = try closedLoopbackPort()
        let config = scratch.path("watch.yaml")
        try """
            output: \(scratch.path("out"))
            http: {listen: 127.0.0.1:\(httpPort)}
            mqtt: {host: 127.0.0.1, port: \(broker.port), user: roadwatch, password_file: \(scratch.path("pw")), client_id: rw-pw}
            cameras:
              road: {input: \(Self.synthetic.video), realtime: false, loop: true, size: 512x256}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let check = try RoadwatchBinary.run(["watch", "--check", config])
        #expect(check.status == 0 && check.stderrLines.count == 1 && check.stderr.contains("not authorised"), "\(check.stderr)")
        let watch = try RunningBinary(["watch", config])
        defer { watch.signal(SIGKILL) }
        let event = try await blocking {
            waitUntil(timeout: 300) {
                guard let reply = try? HTTP.get("http://127.0.0.1:\(httpPort)/api/events"),
                      let list = try? JSONSerialization.jsonObject(with: reply.body) as? [[String: Any]] else { return false }
                return !list.isEmpty
            }
        }
        #expect(event, "no event in the API")
        watch.signal(SIGINT)
        let outcome = try await blocking { watch.wait(timeout: 60) }
        let lines = outcome.stderrLines.filter { $0.contains("mqtt:") }
        #expect(lines.count == 1 && lines[0].contains("warning") && lines[0].contains("not authorised"), "\(lines)")
        #expect(!outcome.stderr.contains("wrong-password"))
        #expect(broker.log.components(separatedBy: "not authorised").count - 1 >= 2, "the client did not keep retrying")
    }

    @Test("the broker killed and restarted mid-run: roadwatch is back online and later events arrive")
    func brokerRestart() async throws {
        let broker = try MosquittoBroker()
        let recorder = try MQTTRecorder(port: broker.port, topics: ["rwr/#"])
        #expect(await eventually(5) { recorder.client.connectionState == .connected })
        let scratch = try ScratchDirectory("mqttrestart")
        let config = scratch.path("watch.yaml")
        try """
            output: \(scratch.path("out"))
            http: {enabled: false}
            mqtt: {host: 127.0.0.1, port: \(broker.port), prefix: rwr, client_id: rw-restart, keepalive: 5}
            cameras:
              road: {input: \(Self.synthetic.video), realtime: false, loop: true, size: 512x256, events: {end_after: 0.5}}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let watch = try RunningBinary(["watch", config])
        defer { watch.signal(SIGKILL) }
        #expect(await recorder.wait(300) { $0.contains { $0.topic == "rwr/events" } }, "no event before the restart")
        broker.kill()
        try await Task.sleep(for: .seconds(2))
        try broker.start()
        let seen = recorder.messages.count
        #expect(await recorder.wait(30) { $0.dropFirst(seen).contains { $0.topic == "rwr/available" && $0.string == "online" } },
                "not back online after the restart")
        #expect(await recorder.wait(300) { $0.dropFirst(seen).contains { $0.topic == "rwr/events" && json($0)?["type"] as? String == "new" } },
                "no event after the restart")
        #expect(try await MQTTRecorder.retained(port: broker.port, topic: "rwr/road/detect/state", seconds: 1).first?.string == "ON",
                "the retained state was not published again for the restarted broker")
        watch.signal(SIGINT)
        _ = try await blocking { watch.wait(timeout: 60) }
        await recorder.client.stop()
    }

    /// The payloads of a run, one per topic, for docs/mqtt.md: `.build/test-artefacts/mqtt-payloads.md`.
    static func capture(_ messages: [MQTTMessage], retained: [MQTTMessage]) {
        var seen = Set<String>()
        var text = "# MQTT payloads captured by MQTTCommandTests.eventSequence\n\n"
        for message in messages + retained {
            let key = message.topic + (message.topic.hasSuffix("/events") ? (json(message)?["type"] as? String ?? "") : "")
            guard seen.insert(key).inserted else { continue }
            let body = message.topic.hasSuffix("/snapshot") ? "<JPEG, \(message.payload.count) bytes>" : (message.string ?? "<binary>")
            text += "## \(message.topic) (\(message.qos)\(message.retain ? ", retained" : ""))\n\n```\n\(body)\n```\n\n"
        }
        let folder = Shared.repositoryRoot.appendingPathComponent(".build/test-artefacts")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try? text.write(to: folder.appendingPathComponent("mqtt-payloads.md"), atomically: true, encoding: .utf8)
    }
}
