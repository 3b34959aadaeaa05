import Foundation
import Synchronization
import TestKit
import XCTest

@testable import Notify

private let mosquittoSub = "/usr/bin/mosquitto_sub"
private let mosquittoPub = "/usr/bin/mosquitto_pub"
/// Short waits so that reconnection tests take a second, not a minute.
private let quickBackoff = Backoff(initial: .milliseconds(100), multiplier: 2, maximum: .milliseconds(400))

private func makeClient(port: Int, id: String, _ adjust: (inout MQTTSettings) -> Void = { _ in }) throws -> MQTTClient {
    var settings = MQTTSettings(host: "127.0.0.1", port: port, keepalive: .seconds(5), clientID: id, backoff: quickBackoff)
    adjust(&settings)
    return try MQTTClient(settings: settings)
}

/// `mosquitto_sub` until `count` messages came or `seconds` passed: one line per message, "topic payload".
///
/// Its own `-W` is passed but cannot be relied on: it is a SIGALRM, and a child started from a test's
/// (libdispatch) thread inherits that thread's blocked signals. So this process ends it (SIGKILL; mosquitto_sub
/// flushes every line, so nothing is lost).
private func subscribeOnce(port: Int, topic: String, count: Int, seconds: Int = 5, caFile: String? = nil) throws -> [String] {
    var arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-t", topic, "-C", "\(count)", "-W", "\(seconds)", "-v"]
    if let caFile { arguments += ["--cafile", caFile] }
    let run = try runProgram(mosquittoSub, arguments, timeout: Double(seconds))
    return run.stdout.split(separator: "\n").map(String.init)
}

final class MQTTValueTests: XCTestCase {
    func testBackoffGrowsByTheMultiplierUpToTheMaximum() {
        let backoff = Backoff(initial: .milliseconds(500), multiplier: 3, maximum: .seconds(10))
        XCTAssertEqual(backoff.delay(afterFailures: 0), .milliseconds(500))
        XCTAssertEqual(backoff.delay(afterFailures: 1), .milliseconds(1500))
        XCTAssertEqual(backoff.delay(afterFailures: 2), .milliseconds(4500))
        XCTAssertEqual(backoff.delay(afterFailures: 3), .seconds(10))
        XCTAssertEqual(backoff.delay(afterFailures: 10_000), .seconds(10), "a long outage must not overflow")
        XCTAssertEqual(Backoff(initial: .seconds(2), multiplier: 1, maximum: .seconds(5)).delay(afterFailures: 7), .seconds(2))
    }

    func testPasswordFileIsReadTrimmedAndItsErrorsAreOneLine() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("roadwatch-pw-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("mqtt-password").path
        try "  s3cret pass\n\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try MQTTSettings.password(fromFile: file), "s3cret pass")

        let missing = folder.appendingPathComponent("nope").path
        XCTAssertThrowsError(try MQTTSettings.password(fromFile: missing)) { error in
            XCTAssertEqual("\(error)", "cannot read the MQTT password file \(missing): no such file or directory")
        }
        try "\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try MQTTSettings.password(fromFile: file)) { error in
            XCTAssertEqual("\(error)", "the MQTT password file \(file) is empty")
        }
        XCTAssertThrowsError(try MQTTSettings.password(fromFile: folder.path)) { error in
            XCTAssertEqual("\(error)", "the MQTT password file \(folder.path) is not a regular file")
        }
    }

    func testDescriptionNeverShowsThePassword() throws {
        let settings = MQTTSettings(host: "broker.local", port: 8883, username: "roadwatch", password: "hunter2",
                                    tls: .init(caFile: "/etc/roadwatch/ca.crt"))
        XCTAssertFalse(settings.description.contains("hunter2"), settings.description)
        XCTAssertFalse(String(reflecting: settings.description).contains("hunter2"))
        XCTAssertEqual(settings.description, "mqtts://roadwatch@broker.local:8883, MQTT 3.1.1, password set, CA /etc/roadwatch/ca.crt")
    }

    func testBadSettingsAndTopicsAreRefusedAtOnce() throws {
        func error(_ settings: MQTTSettings) -> String? {
            do { _ = try MQTTClient(settings: settings); return nil } catch { return "\(error)" }
        }
        XCTAssertEqual(error(MQTTSettings(host: "")), "the MQTT broker host is empty")
        XCTAssertEqual(error(MQTTSettings(host: "h", port: 70000)), "MQTT port 70000 is not in 1...65535")
        XCTAssertEqual(error(MQTTSettings(host: "h", keepalive: .seconds(1))), "MQTT keepalive must be 5 to 65535 seconds, not 1")
        XCTAssertEqual(error(MQTTSettings(host: "h", password: "p")), "an MQTT password needs a user name (MQTT sends no password alone)")
        XCTAssertEqual(error(MQTTSettings(host: "h", tls: .init(caFile: "/nonexistent/ca.crt"))),
                       "the MQTT TLS CA file /nonexistent/ca.crt cannot be read: no such file or directory")
        XCTAssertEqual(error(MQTTSettings(host: "h", will: MQTTMessage(topic: "a/#", string: "x"))),
                       "MQTT last will topic 'a/#' is not valid (empty, or with + or #)")

        let client = try MQTTClient(settings: MQTTSettings(host: "127.0.0.1"))
        XCTAssertThrowsError(try client.publish(MQTTMessage(topic: "roadwatch/+/events", string: "x")))
        XCTAssertThrowsError(try client.subscribe(topic: "roadwatch/#/x"))
        XCTAssertEqual(client.connectionState, .disconnected(reason: "not started"))
    }
}

final class MQTTClientTests: XCTestCase {
    override func setUp() async throws {
        try MosquittoBroker.requireInstalled()
    }

    func testPublishedMessageReachesMosquittoSubAndASecondClient() async throws {
        let broker = try MosquittoBroker()
        let publisher = try makeClient(port: broker.port, id: "rw-pub")
        let topic = "roadwatch/cam1/events"
        let payload = #"{"event":"new","camera":"cam1"}"#
        // Published before the connection exists: it waits in the queue.
        try publisher.publish(MQTTMessage(topic: topic, string: payload, qos: .atLeastOnce, retain: true))
        publisher.start()
        let delivered = await eventually(5) { publisher.deliveredCount == 1 }
        XCTAssertTrue(delivered, "not acknowledged: \(publisher.connectionState), \(publisher.lastError ?? "-")")

        // Retained, so an observer that comes afterwards still gets it.
        XCTAssertEqual(try subscribeOnce(port: broker.port, topic: topic, count: 1), ["\(topic) \(payload)"])

        let subscriber = try makeClient(port: broker.port, id: "rw-sub")
        let received = Mutex<[MQTTMessage]>([])
        subscriber.onMessage = { message in received.withLock { $0.append(message) } }
        try subscriber.subscribe(topic: "roadwatch/+/events")
        try subscriber.subscribe(topic: "roadwatch/+/detect/set")
        subscriber.start()
        let gotEvent = await eventually(5) { received.withLock { $0.contains { $0.topic == topic } } }
        XCTAssertTrue(gotEvent, "subscriber: \(subscriber.connectionState)")
        let event = received.withLock { $0.first { $0.topic == topic } }
        XCTAssertEqual(event?.string, payload)
        XCTAssertEqual(event?.retain, true)
        XCTAssertEqual(event?.qos, .atLeastOnce)

        // A command from outside, as Home Assistant would send it.
        let command = try runProgram(mosquittoPub, ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "roadwatch/cam1/detect/set",
                                                    "-m", "OFF", "-q", "1", "-r"], timeout: 10)
        XCTAssertEqual(command.status, 0, command.stderr)
        let gotCommand = await eventually(5) {
            received.withLock { $0.contains { $0.topic == "roadwatch/cam1/detect/set" && $0.string == "OFF" } }
        }
        XCTAssertTrue(gotCommand)
        await publisher.stop()
        await subscriber.stop()
    }

    func testMessagesPublishedWhileTheBrokerIsAwayArriveAfterItReturns() async throws {
        let broker = try MosquittoBroker()
        let client = try makeClient(port: broker.port, id: "rw-restart") { $0.queueCapacity = 5 }
        client.start()
        let connected = await eventually(5) { client.connectionState == .connected }
        XCTAssertTrue(connected, client.lastError ?? "")

        broker.kill()
        let noticed = await eventually(5) { client.connectionState != .connected }
        XCTAssertTrue(noticed)
        let started = ContinuousClock.now
        for index in 0..<8 {
            try client.publish(MQTTMessage(topic: "roadwatch/queued/\(index)", string: "m\(index)", retain: true))
        }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(100), "publish must not wait for the broker")
        XCTAssertEqual(client.droppedCount, 3, "capacity 5: the 3 oldest of 8 are dropped")
        XCTAssertEqual(client.pendingCount, 5)
        // Let at least one retry fail against the dead port.
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertNotNil(client.lastError)

        try broker.start()
        let drained = await eventually(10) { client.connectionState == .connected && client.pendingCount == 0 }
        XCTAssertTrue(drained, "\(client.connectionState), pending \(client.pendingCount)")
        XCTAssertEqual(client.deliveredCount, 5)
        XCTAssertNil(client.lastError, "cleared once connected again")

        // The broker (no persistence) holds exactly what was sent after its restart.
        // One more than expected, so that the observer waits out its second and an extra message would show.
        let retained = try subscribeOnce(port: broker.port, topic: "roadwatch/queued/#", count: 6, seconds: 1)
        XCTAssertEqual(Set(retained), Set((3..<8).map { "roadwatch/queued/\($0) m\($0)" }))
        await client.stop()
    }

    /// The will really is our client's: a second process (this test binary again, running only
    /// `MQTTWillProbe.testChildProcess`) connects with it and is killed with SIGKILL, so no DISCONNECT is sent
    /// and the kernel closes the socket, as in a crash.
    func testWillIsPublishedWhenTheClientProcessIsKilled() async throws {
        let broker = try MosquittoBroker()
        let binary = ProcessInfo.processInfo.arguments[0]
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            XCTFail("cannot run the test binary again: \(binary)")
            return
        }
        var environment = ProcessInfo.processInfo.environment
        environment[MQTTWillProbe.portVariable] = "\(broker.port)"
        let child = try Spawned(binary, ["NotifyTests.MQTTWillProbe/testChildProcess"], environment: environment)
        let ready = await eventually(20) { child.stdout.contains(MQTTWillProbe.readyLine) }
        guard ready else {
            child.kill()
            XCTFail("the probe did not connect: \(child.stdout.suffix(2000)) \(child.stderr.suffix(2000))")
            return
        }
        let topic = "\(MQTTWillProbe.prefix)/available"
        let observer = try Spawned(mosquittoSub, ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", topic, "-C", "2", "-W", "10", "-v"])
        // The retained birth arrives first: from then on the observer is surely subscribed.
        let subscribed = await eventually(5) { observer.lines.count >= 1 }
        XCTAssertTrue(subscribed, observer.stderr)
        child.kill(signal: SIGKILL)
        await child.waitForExit(timeout: 5)
        await observer.waitForExit(timeout: 12)
        XCTAssertEqual(observer.lines, ["\(topic) online", "\(topic) offline"])
    }

    func testUncleanConnectionLossPublishesTheWillAndTheBirthAfterReconnecting() async throws {
        let broker = try MosquittoBroker()
        let prefix = "roadwatch/cam2"
        let client = try makeClient(port: broker.port, id: "rw-unclean") {
            $0.will = .availability(prefix: prefix, online: false)
            $0.birth = .availability(prefix: prefix, online: true)
        }
        let states = Mutex<[MQTTConnectionState]>([])
        client.onStateChange = { state in states.withLock { $0.append(state) } }
        client.start()
        let born = await eventually(5) { client.deliveredCount == 1 }
        XCTAssertTrue(born, client.lastError ?? "")
        let observer = try Spawned(mosquittoSub, ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", "\(prefix)/available",
                                                  "-C", "3", "-W", "10", "-v"])
        let subscribed = await eventually(5) { observer.lines.count >= 1 }
        XCTAssertTrue(subscribed)

        client.dropConnectionForTesting()
        await observer.waitForExit(timeout: 12)
        XCTAssertEqual(observer.lines, ["\(prefix)/available online", "\(prefix)/available offline", "\(prefix)/available online"])
        let back = await eventually(5) { client.connectionState == .connected }
        XCTAssertTrue(back)
        let seen = states.withLock { $0 }
        XCTAssertEqual(seen.first, .connecting)
        XCTAssertTrue(seen.contains { if case .disconnected = $0 { true } else { false } }, "\(seen)")
        XCTAssertEqual(seen.filter { $0 == .connected }.count, 2, "\(seen)")
        await client.stop()
    }

    func testStopDisconnectsCleanlySoOnlyTheFinalMessageSaysOffline() async throws {
        let broker = try MosquittoBroker()
        let prefix = "roadwatch/cam3"
        func availabilityClient(_ id: String) throws -> MQTTClient {
            try makeClient(port: broker.port, id: id) {
                $0.will = .availability(prefix: prefix, online: false)
                $0.birth = .availability(prefix: prefix, online: true)
            }
        }
        var first: MQTTClient? = try availabilityClient("rw-stop-1")
        weak let released = first
        first?.start()
        let born = await eventually(5) { first?.deliveredCount == 1 }
        XCTAssertTrue(born)
        await first?.stop()
        XCTAssertEqual(first?.connectionState, .disconnected(reason: "stopped"))
        first = nil
        // Nothing keeps a stopped client: its last timer ends within a watchdog period, and deinit frees the handle.
        let freed = await eventually(2) { released == nil }
        XCTAssertTrue(freed, "a stopped client must be released")
        try await Task.sleep(for: .milliseconds(200))  // a will, if any, would be out by now
        XCTAssertEqual(try subscribeOnce(port: broker.port, topic: "\(prefix)/available", count: 1, seconds: 3),
                       ["\(prefix)/available online"], "a clean disconnect must not send the will")
        XCTAssertTrue(broker.log.contains("Client rw-stop-1 disconnected."), broker.log)

        let second = try availabilityClient("rw-stop-2")
        second.start()
        let secondBorn = await eventually(5) { second.deliveredCount == 1 }
        XCTAssertTrue(secondBorn)
        await second.stop(finalMessage: .availability(prefix: prefix, online: false))
        XCTAssertEqual(second.deliveredCount, 2, "the final message is acknowledged before the disconnect")
        XCTAssertEqual(try subscribeOnce(port: broker.port, topic: "\(prefix)/available", count: 1, seconds: 3),
                       ["\(prefix)/available offline"])

        // After stop, publish still returns at once and counts the message as dropped.
        try second.publish(MQTTMessage(topic: "roadwatch/late", string: "x"))
        XCTAssertEqual(second.droppedCount, 1)
        second.start()
        XCTAssertEqual(second.connectionState, .disconnected(reason: "stopped"), "a stopped client does not start again")
    }

    func testWrongPasswordGivesOneClearLineAndTheClientKeepsRetrying() async throws {
        let broker = try MosquittoBroker(users: ["roadwatch": "right-password"])
        let client = try makeClient(port: broker.port, id: "rw-wrong") {
            $0.username = "roadwatch"
            $0.password = "wrong-password"
        }
        client.start()
        let expected = "MQTT broker 127.0.0.1:\(broker.port) refused the connection: not authorised"
        let failed = await eventually(5) { client.lastError != nil }
        XCTAssertTrue(failed)
        XCTAssertEqual(client.lastError, expected)
        if case .connected = client.connectionState { XCTFail("connected with a wrong password") }

        let started = ContinuousClock.now
        for index in 0..<1500 { try client.publish(MQTTMessage(topic: "roadwatch/cam1/events", string: "e\(index)")) }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(500), "publish must not block while refused")
        XCTAssertEqual(client.droppedCount, 500, "default capacity 1000")
        XCTAssertEqual(client.pendingCount, 1000)

        // It keeps trying (quick backoff: 0.1, 0.2, 0.4 s …) without crashing, and the line stays the same.
        let retried = await eventually(5) { broker.log.components(separatedBy: "disconnected, not authorised").count - 1 >= 4 }
        XCTAssertTrue(retried, broker.log)
        XCTAssertEqual(client.lastError, expected)
        XCTAssertFalse(client.settings.description.contains("wrong-password"))

        // MQTT 5 carries the broker's reason code instead.
        let v5 = try makeClient(port: broker.port, id: "rw-wrong-5") {
            $0.username = "roadwatch"
            $0.password = "wrong-password"
            $0.protocolVersion = .v5
        }
        v5.start()
        let v5Failed = await eventually(5) { v5.lastError != nil }
        XCTAssertTrue(v5Failed)
        XCTAssertEqual(v5.lastError, "MQTT broker 127.0.0.1:\(broker.port) refused the connection: not authorized")
        await client.stop()
        let refusals = { broker.log.components(separatedBy: "disconnected, not authorised").count }
        let before = refusals()
        let v5Retried = await eventually(5) { refusals() >= before + 2 }
        XCTAssertTrue(v5Retried, "an MQTT 5 refusal must be retried too (libmosquitto's own loop gives up on it)")

        let right = try makeClient(port: broker.port, id: "rw-right") {
            $0.username = "roadwatch"
            $0.password = "right-password"
        }
        right.start()
        let connected = await eventually(5) { right.connectionState == .connected }
        XCTAssertTrue(connected, right.lastError ?? "")
        await v5.stop()
        await right.stop()
    }

    /// A broker that stops answering without closing anything (SIGSTOP: a hung host, a cut link) is noticed
    /// through the keepalive, and joined again once it answers.
    func testSilentBrokerIsNoticedThroughTheKeepalive() async throws {
        let broker = try MosquittoBroker()
        let client = try makeClient(port: broker.port, id: "rw-silent")
        client.start()
        let connected = await eventually(5) { client.connectionState == .connected }
        XCTAssertTrue(connected, client.lastError ?? "")
        broker.kill(signal: SIGSTOP)
        // keepalive 5 s: a PINGREQ after 5 s idle, the verdict 5 s later.
        let noticed = await eventually(15) { client.lastError != nil }
        XCTAssertTrue(noticed, "\(client.connectionState)")
        XCTAssertEqual(client.lastError, "lost connection to MQTT broker 127.0.0.1:\(broker.port): no answer within the keepalive (5 s)")
        broker.kill(signal: SIGCONT)
        let back = await eventually(10) { client.connectionState == .connected }
        XCTAssertTrue(back, client.lastError ?? "")
        await client.stop()
    }

    func testUnreachableBrokerIsReportedAndJoinedOnceItStarts() async throws {
        let port = try freeLoopbackPort()
        let client = try makeClient(port: port, id: "rw-unreachable")
        client.start()
        let expected = "cannot reach MQTT broker 127.0.0.1:\(port): connection refused"
        let failed = await eventually(5) { client.lastError == expected }
        XCTAssertTrue(failed, client.lastError ?? "no error")

        let broker = try MosquittoBroker(port: port)
        let connected = await eventually(5) { client.connectionState == .connected }
        XCTAssertTrue(connected, client.lastError ?? "")
        XCTAssertNil(client.lastError)
        _ = broker
        await client.stop()
    }

    func testTLSConnectsWithTheCAFileAndFailsClearlyWithoutIt() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("roadwatch-tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificates = try TestCertificates(in: folder)
        let broker = try MosquittoBroker(listenerLines: ["cafile \(certificates.caFile)", "certfile \(certificates.serverCertificate)",
                                                         "keyfile \(certificates.serverKey)"])

        let trusted = try makeClient(port: broker.port, id: "rw-tls") { $0.tls = .init(caFile: certificates.caFile) }
        try trusted.publish(MQTTMessage(topic: "roadwatch/tls", string: "over TLS", retain: true))
        trusted.start()
        let delivered = await eventually(5) { trusted.deliveredCount == 1 }
        XCTAssertTrue(delivered, trusted.lastError ?? "\(trusted.connectionState)")
        XCTAssertEqual(try subscribeOnce(port: broker.port, topic: "roadwatch/tls", count: 1, caFile: certificates.caFile),
                       ["roadwatch/tls over TLS"])

        // TLS without our CA: the system store does not know the self-signed authority.
        let untrusted = try makeClient(port: broker.port, id: "rw-tls-noca") { $0.tls = .init() }
        untrusted.start()
        let verifyFailed = await eventually(5) { untrusted.lastError != nil }
        XCTAssertTrue(verifyFailed)
        XCTAssertEqual(untrusted.lastError, "TLS handshake with MQTT broker 127.0.0.1:\(broker.port) failed: certificate verify failed")
        // The library's thread exits after a TLS failure; the client must still come back for more attempts.
        let attemptsBefore = broker.log.components(separatedBy: "New connection from").count
        let retried = await eventually(5) { broker.log.components(separatedBy: "New connection from").count >= attemptsBefore + 2 }
        XCTAssertTrue(retried, "TLS failures must be retried")

        // Plain MQTT against the TLS port.
        let plain = try makeClient(port: broker.port, id: "rw-plain")
        plain.start()
        let plainFailed = await eventually(5) { plain.lastError != nil }
        XCTAssertTrue(plainFailed)
        XCTAssertEqual(plain.lastError, "MQTT broker 127.0.0.1:\(broker.port) closed the connection before accepting it "
                                        + "(does it expect TLS, or another protocol version?)")
        for client in [trusted, untrusted, plain] {
            XCTAssertFalse(client.lastError?.contains("\n") ?? false)
            await client.stop()
        }
    }
}

/// The child process of `testWillIsPublishedWhenTheClientProcessIsKilled`; passes at once in a normal run.
final class MQTTWillProbe: XCTestCase {
    static let portVariable = "ROADWATCH_MQTT_WILL_PROBE_PORT"
    static let readyLine = "MQTT-WILL-PROBE-READY"
    static let prefix = "roadwatch/probe"

    func testChildProcess() async throws {
        guard let port = ProcessInfo.processInfo.environment[Self.portVariable].flatMap(Int.init) else { return }
        let client = try makeClient(port: port, id: "rw-will-probe") {
            $0.will = .availability(prefix: Self.prefix, online: false)
            $0.birth = .availability(prefix: Self.prefix, online: true)
        }
        client.start()
        let born = await eventually(10) { client.deliveredCount >= 1 }
        guard born else {
            XCTFail("probe: \(client.lastError ?? "\(client.connectionState)")")
            return
        }
        FileHandle.standardOutput.write(Data("\n\(Self.readyLine)\n".utf8))
        // The parent kills this process long before the sleep ends; the bound keeps a lost child from lingering.
        try await Task.sleep(for: .seconds(30))
    }
}
