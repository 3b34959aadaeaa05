import CMosquitto
import Foundation
import Synchronization

// All of roadwatch's libmosquitto calls and pointer handling live in this file; the types above the
// `MQTTClient` class are plain Swift values.

// MARK: - Values

/// How hard the broker and the client try to deliver one message (MQTT's quality of service).
public enum MQTTQoS: Int32, Sendable, Hashable, CustomStringConvertible {
    /// Fire and forget: lost if the connection drops while it is on its way.
    case atMostOnce = 0
    /// Acknowledged by the broker and resent until it is, so it may arrive twice: the level for events.
    case atLeastOnce = 1
    /// Delivered exactly once, at the price of a four-packet handshake.
    case exactlyOnce = 2

    public var description: String { "QoS \(rawValue)" }
}

/// One MQTT application message: a topic, its payload bytes, a QoS and the retain flag.
public struct MQTTMessage: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var payload: [UInt8]
    public var qos: MQTTQoS
    /// Whether the broker keeps the message as the topic's last value for clients that subscribe later.
    public var retain: Bool

    public init(topic: String, payload: [UInt8], qos: MQTTQoS = .atLeastOnce, retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }

    /// A message whose payload is `string` in UTF-8.
    public init(topic: String, string: String, qos: MQTTQoS = .atLeastOnce, retain: Bool = false) {
        self.init(topic: topic, payload: Array(string.utf8), qos: qos, retain: retain)
    }

    /// The payload as UTF-8 text, or nil when it is not valid UTF-8.
    public var string: String? { String(validating: payload, as: UTF8.self) }

    /// The retained `<prefix>/available` message: `online` as the birth message, `offline` as the last will.
    public static func availability(prefix: String, online: Bool) -> MQTTMessage {
        MQTTMessage(topic: "\(prefix)/available", string: online ? "online" : "offline", qos: .atLeastOnce, retain: true)
    }

    public var description: String {
        let body = string.map { $0.count <= 80 ? "'\($0)'" : "\($0.utf8.count) bytes of text" } ?? "\(payload.count) bytes"
        return "\(topic) \(body) (\(qos)\(retain ? ", retained" : ""))"
    }
}

/// The MQTT protocol version the client speaks.
public enum MQTTProtocolVersion: Sendable, Hashable, CustomStringConvertible {
    case v3_1_1
    case v5

    public var description: String { self == .v5 ? "MQTT 5" : "MQTT 3.1.1" }
}

/// The client's link to its broker, as last observed.
public enum MQTTConnectionState: Sendable, Hashable, CustomStringConvertible {
    /// A connection attempt is under way (TCP, TLS, or waiting for the broker's answer).
    case connecting
    /// The broker accepted the connection; queued messages are being delivered.
    case connected
    /// No connection, and why in one line ("not started", "stopped", or the last failure); a retry follows
    /// unless the client was stopped.
    case disconnected(reason: String)

    public var description: String {
        switch self {
        case .connecting: "connecting"
        case .connected: "connected"
        case .disconnected(let reason): "disconnected: \(reason)"
        }
    }
}

/// A configuration or usage error of the MQTT client, as one line.
public struct MQTTError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}

/// Where the MQTT broker is and how to talk to it; the password never appears in `description`.
public struct MQTTSettings: Sendable, CustomStringConvertible {
    /// TLS for the broker connection.
    public struct TLS: Sendable, Hashable {
        /// PEM file of the certificate authority that signed the broker's certificate; nil trusts the
        /// operating system's store (a self-signed broker certificate then fails verification).
        public var caFile: String?
        /// PEM client certificate, for brokers that require one; needs `keyFile` too.
        public var certificateFile: String?
        /// PEM private key of `certificateFile` (unencrypted: nobody is there to type a pass phrase).
        public var keyFile: String?
        /// Skips the check that the broker's certificate names `host` (the chain is still verified).
        /// Only for a broker reached by an address its certificate does not list; off by default.
        public var insecure: Bool

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, insecure: Bool = false) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.insecure = insecure
        }
    }

    public var host: String
    public var port: Int
    /// How often the link is proven alive when idle; a dead broker is noticed after about 1.5 times this.
    public var keepalive: Duration
    /// The client identifier; nil lets the library make a random one. Two clients with the same identifier
    /// take the connection from each other in turn, so each camera process needs its own.
    public var clientID: String?
    public var username: String?
    /// Taken by the caller from `ROADWATCH_MQTT_PASSWORD` or a password file (`password(fromFile:)`).
    public var password: String?
    /// TLS; nil connects in plain TCP.
    public var tls: TLS?
    public var protocolVersion: MQTTProtocolVersion
    /// The message the broker publishes when the connection ends without a clean disconnect (a crash, kill -9,
    /// a cut cable), typically `MQTTMessage.availability(prefix:online: false)`.
    public var will: MQTTMessage?
    /// The message published first on every connection, typically `MQTTMessage.availability(prefix:online: true)`:
    /// after a will was sent for a dropped connection, the reconnected client puts its availability back.
    public var birth: MQTTMessage?
    /// How many messages wait while the broker is away; beyond it the oldest is dropped and counted.
    public var queueCapacity: Int
    /// How many messages are handed to the library at once before their acknowledgement.
    public var maxInflight: Int
    /// The wait between reconnection attempts.
    public var backoff: Backoff

    public init(host: String, port: Int = 1883, keepalive: Duration = .seconds(30), clientID: String? = nil,
                username: String? = nil, password: String? = nil, tls: TLS? = nil,
                protocolVersion: MQTTProtocolVersion = .v3_1_1, will: MQTTMessage? = nil, birth: MQTTMessage? = nil,
                queueCapacity: Int = 1000, maxInflight: Int = 20, backoff: Backoff = Backoff()) {
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.clientID = clientID
        self.username = username
        self.password = password
        self.tls = tls
        self.protocolVersion = protocolVersion
        self.will = will
        self.birth = birth
        self.queueCapacity = queueCapacity
        self.maxInflight = maxInflight
        self.backoff = backoff
    }

    /// "host:port", the way error lines name the broker.
    public var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var description: String {
        var parts = ["\(tls == nil ? "mqtt" : "mqtts")://\(username.map { "\($0)@" } ?? "")\(endpoint)", "\(protocolVersion)"]
        if let clientID { parts.append("client id '\(clientID)'") }
        if password != nil { parts.append("password set") }
        if let tls {
            parts.append("CA \(tls.caFile ?? "from the system store")")
            if let certificateFile = tls.certificateFile { parts.append("client certificate \(certificateFile)") }
            if tls.insecure { parts.append("host name not checked") }
        }
        return parts.joined(separator: ", ")
    }

    /// The password in `path` without surrounding whitespace and line ends, or an error in one line.
    public static func password(fromFile path: String) throws -> String {
        // POSIX calls rather than Foundation so that the error says what the system said ("Permission denied").
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MQTTError("cannot read the MQTT password file \(path): \(systemError(errno))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw MQTTError("cannot read the MQTT password file \(path): \(systemError(errno))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw MQTTError("the MQTT password file \(path) is not a regular file") }
        let limit = 64 * 1024
        guard Int(info.st_size) <= limit else {
            throw MQTTError("the MQTT password file \(path) is larger than 64 KiB: not a password file")
        }
        var bytes = [UInt8](repeating: 0, count: limit)
        var used = 0
        while used < limit {
            let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + used, limit - used) }
            if got < 0 {
                if errno == EINTR { continue }
                throw MQTTError("cannot read the MQTT password file \(path): \(systemError(errno))")
            }
            if got == 0 { break }
            used += got
        }
        guard let text = String(validating: bytes[..<used], as: UTF8.self) else {
            throw MQTTError("the MQTT password file \(path) is not UTF-8 text")
        }
        let password = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !password.isEmpty else { throw MQTTError("the MQTT password file \(path) is empty") }
        return password
    }
}

// MARK: - Client

/// An MQTT connection that keeps itself up: `publish` only queues (bounded, oldest dropped first), libmosquitto's
/// network thread delivers while connected, and lost connections are retried with a `Backoff`.
///
/// Call `stop()` (or `stop(finalMessage:)`) when done: a started client keeps itself alive until then (and for
/// at most one pending backoff delay after).
/// Handlers (`onMessage`, `onStateChange`) run on the library's network thread and must return quickly.
public final class MQTTClient: Sendable {
    public let settings: MQTTSettings
    private let handle: Handle
    /// Serial queue for every libmosquitto call except inside callbacks: connect, loop start and stop,
    /// publish and subscribe never overlap, and nothing here runs on a caller's thread.
    private let control = DispatchQueue(label: "roadwatch.mqtt")
    private let state: Mutex<State>

    /// Validates `settings` and prepares the connection; nothing touches the network before `start()`.
    public init(settings: MQTTSettings) throws {
        _ = libraryInitialized
        try Self.validate(settings)
        self.settings = settings
        state = Mutex(State(capacity: settings.queueCapacity))
        guard let raw = optionalCString(settings.clientID, { mosquitto_new($0, true, nil) }) else {
            throw MQTTError("cannot create an MQTT client: \(systemError(errno))")
        }
        handle = Handle(raw: raw)
        try configure()
        mosquitto_user_data_set(raw, Unmanaged.passUnretained(self).toOpaque())
        installCallbacks()
    }

    deinit {
        // Reached only with the network thread stopped: a running thread holds a reference (State.keepAlive).
        mosquitto_destroy(handle.raw)
    }

    // MARK: Public interface

    /// Starts connecting in the background; returns at once. Later calls, and calls after `stop`, do nothing.
    public func start() {
        let first = state.withLock { s in
            guard !s.started else { return false }
            s.started = true
            return true
        }
        if first { control.async { self.attempt() } }
    }

    /// Queues `message` for the broker and returns at once, connected or not.
    ///
    /// When `queueCapacity` messages are already waiting, the oldest is dropped and counted in `droppedCount`.
    /// Throws only for a message no broker would take (a topic with wildcards or an oversized payload).
    public func publish(_ message: MQTTMessage) throws {
        try Self.check(message, role: "message")
        let schedule = state.withLock { s -> Bool in
            guard !s.stopped else {
                s.dropped += 1
                return false
            }
            if s.queue.append(message) != nil { s.dropped += 1 }
            return s.claimPump(maxInflight: settings.maxInflight)
        }
        if schedule { control.async { self.pump() } }
    }

    /// Subscribes to `topic` (wildcards allowed) now if connected, and again on every reconnection.
    public func subscribe(topic: String, qos: MQTTQoS = .atLeastOnce) throws {
        guard !topic.isEmpty, mosquitto_sub_topic_check(topic) == mosqSuccess else {
            throw MQTTError("'\(topic)' is not a valid MQTT subscription")
        }
        let connected = state.withLock { s in
            s.subscriptions[topic] = qos
            return s.link == .connected
        }
        if connected {
            control.async { _ = mosquitto_subscribe(self.handle.raw, nil, topic, qos.rawValue) }
        }
    }

    /// Called with every message received on a subscribed topic (on the network thread; return quickly).
    public var onMessage: (@Sendable (MQTTMessage) -> Void)? {
        get { state.withLock { $0.onMessage } }
        set { state.withLock { $0.onMessage = newValue } }
    }

    /// Called on every change of `state` (on an internal thread; return quickly).
    public var onStateChange: (@Sendable (MQTTConnectionState) -> Void)? {
        get { state.withLock { $0.onStateChange } }
        set { state.withLock { $0.onStateChange = newValue } }
    }

    /// The link to the broker now.
    public var connectionState: MQTTConnectionState { state.withLock { $0.link } }

    /// The last problem in one line (e.g. "MQTT broker 127.0.0.1:1883 refused the connection: not authorised");
    /// cleared when a connection is accepted. Never contains the password.
    public var lastError: String? { state.withLock { $0.lastError } }

    /// Messages that will never reach the broker: dropped when the queue was full (oldest first), refused by
    /// the library, or published after `stop`.
    public var droppedCount: Int { state.withLock { $0.dropped } }

    /// Messages the broker acknowledged (QoS 1 and 2) or that were written to it (QoS 0), birth included.
    public var deliveredCount: Int { state.withLock { $0.delivered } }

    /// Messages queued or handed to the library and not yet acknowledged.
    public var pendingCount: Int { state.withLock { $0.queue.count + $0.handing + $0.inflight.count } }

    /// Disconnects cleanly, so the broker discards the will; publishes nothing extra.
    public func stop(timeout: Duration = .seconds(2)) async {
        await stop(finalMessage: nil, timeout: timeout)
    }

    /// Publishes `finalMessage` after what is queued (e.g. `availability(prefix:online: false)`, since a clean
    /// disconnect suppresses the will), waits up to `timeout` for the queue to drain while connected, then
    /// disconnects cleanly.
    public func stop(finalMessage: MQTTMessage?, timeout: Duration = .seconds(2)) async {
        if let finalMessage { try? publish(finalMessage) }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let drained = state.withLock { s in s.link != .connected || (s.queue.isEmpty && s.handing == 0 && s.inflight.isEmpty) }
            if drained { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            control.async {
                self.shutDown()
                done.resume()
            }
        }
    }

    // MARK: Test hooks

    /// Cuts the TCP connection under the library without an MQTT DISCONNECT: to the broker this is exactly
    /// what a killed process looks like, so it publishes the will; the client then reconnects by itself.
    func dropConnectionForTesting() {
        control.async {
            let fd = mosquitto_socket(self.handle.raw)
            if fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    // MARK: Connection lifecycle (control queue)

    private func attempt() {
        guard !state.withLock({ $0.stopped }) else { return }
        state.withLock { s in
            s.libraryError = nil
            s.sessionEndReason = nil
        }
        setLink(.connecting)
        let rc = mosquitto_connect_async(handle.raw, settings.host, Int32(settings.port), keepaliveSeconds)
        let failure = errno
        guard rc == mosqSuccess else {
            retryLater(after: connectFailure(rc, errno: failure))
            return
        }
        let loop = mosquitto_loop_start(handle.raw)
        guard loop == mosqSuccess else {
            _ = mosquitto_disconnect(handle.raw)
            retryLater(after: "cannot start the MQTT network thread: \(libraryText(loop))")
            return
        }
        let session = state.withLock { s in
            s.session += 1
            s.loopRunning = true
            s.keepAlive = self
            s.socketGoneChecks = 0
            return s.session
        }
        watch(session)
    }

    /// Ends session `id` once its connection is gone: joins the network thread and schedules the next attempt.
    private func endSession(_ id: Int) {
        guard state.withLock({ $0.loopRunning && $0.session == id }) else { return }
        // Marks the client as disconnecting so that the thread exits instead of reconnecting on the library's
        // own schedule (the socket is already closed, so nothing is sent).
        _ = mosquitto_disconnect(handle.raw)
        _ = mosquitto_loop_stop(handle.raw, false)
        let (stopped, reason) = state.withLock { s in
            s.loopRunning = false
            s.keepAlive = nil
            // The library discards QoS 0 packets still queued on a dead connection without a callback; QoS 1
            // and 2 messages stay with it and are sent again after the next CONNACK.
            s.inflight = s.inflight.filter { $0.value != .atMostOnce }
            s.earlyAcks.removeAll()
            // No callback came when libmosquitto's thread gave up on its own (a failed TLS handshake): the
            // library's log line is then the only reason there is.
            let fallback = s.libraryError.map {
                settings.tls != nil ? tlsFailure($0) : "connection to MQTT broker \(settings.endpoint) failed: \($0)"
            }
            return (s.stopped, s.sessionEndReason ?? fallback ?? "the connection to MQTT broker \(settings.endpoint) closed")
        }
        if !stopped { retryLater(after: reason) }
    }

    private func retryLater(after reason: String) {
        let delay = state.withLock { s in
            s.lastError = reason
            defer { s.failures += 1 }
            return settings.backoff.delay(afterFailures: s.failures)
        }
        setLink(.disconnected(reason: reason))
        control.asyncAfter(deadline: .now() + Backoff.seconds(delay)) { self.attempt() }
    }

    /// Polls the socket while a session runs: a failed TLS handshake makes libmosquitto's thread exit
    /// without any callback, and this is how the client notices.
    private func watch(_ id: Int) {
        control.asyncAfter(deadline: .now() + 0.25) {
            let gone = mosquitto_socket(self.handle.raw) < 0
            let verdict = self.state.withLock { s -> Bool? in
                guard s.loopRunning && s.session == id else { return nil }
                s.socketGoneChecks = gone ? s.socketGoneChecks + 1 : 0
                // Two looks 250 ms apart: a callback that is already on its way reports the precise reason.
                return s.socketGoneChecks >= 2
            }
            switch verdict {
            case nil: return
            case true?: self.endSession(id)
            case false?: self.watch(id)
            }
        }
    }

    private func afterConnect() {
        guard state.withLock({ $0.link == .connected }) else { return }
        if let birth = settings.birth {
            var mid: Int32 = 0
            if rawPublish(birth, mid: &mid) == mosqSuccess { record(mid: mid, qos: birth.qos) }
        }
        for (topic, qos) in state.withLock({ $0.subscriptions }) {
            _ = mosquitto_subscribe(handle.raw, nil, topic, qos.rawValue)
        }
        pump()
    }

    /// Hands queued messages to the library while connected, keeping at most `maxInflight` unacknowledged, so
    /// that the bound of the queue is the bound of what waits (the library's own queue has none).
    private func pump() {
        state.withLock { $0.pumpScheduled = false }
        while let message = state.withLock({ s -> MQTTMessage? in
            guard s.link == .connected, s.inflight.count + s.handing < settings.maxInflight,
                  let next = s.queue.popFirst() else { return nil }
            s.handing += 1
            return next
        }) {
            var mid: Int32 = 0
            let rc = rawPublish(message, mid: &mid)
            if rc == mosqSuccess {
                record(mid: mid, qos: message.qos, handed: true)
            } else if rc == Int32(MOSQ_ERR_NO_CONN.rawValue) {
                // The connection fell between the check and the call: keep the message for the next one.
                state.withLock { s in
                    s.handing -= 1
                    if !s.queue.prepend(message) { s.dropped += 1 }
                }
                return
            } else {
                let reason = "MQTT broker \(settings.endpoint) cannot take a message on \(message.topic): \(libraryText(rc))"
                state.withLock { s in
                    s.handing -= 1
                    s.dropped += 1
                    s.lastError = reason
                }
            }
        }
    }

    private func rawPublish(_ message: MQTTMessage, mid: inout Int32) -> Int32 {
        message.payload.withUnsafeBytes { bytes in
            mosquitto_publish(handle.raw, &mid, message.topic, Int32(bytes.count), bytes.baseAddress,
                              message.qos.rawValue, message.retain)
        }
    }

    /// Notes a message handed to the library; its acknowledgement may already have arrived on the network thread.
    private func record(mid: Int32, qos: MQTTQoS, handed: Bool = false) {
        state.withLock { s in
            if handed { s.handing -= 1 }
            if s.earlyAcks.remove(mid) != nil {
                s.delivered += 1
            } else {
                s.inflight[mid] = qos
            }
        }
    }

    private func shutDown() {
        let running = state.withLock { s in
            s.stopped = true
            s.started = true
            return s.loopRunning
        }
        if running {
            // With a live connection this sends DISCONNECT, which tells the broker to discard the will.
            let rc = mosquitto_disconnect(handle.raw)
            if rc == mosqSuccess {
                let deadline = ContinuousClock.now + .seconds(2)
                while !state.withLock({ $0.disconnectSeen }) && ContinuousClock.now < deadline { usleep(5_000) }
            }
            // force only if the thread never confirmed the disconnect (a peer that stopped reading).
            _ = mosquitto_loop_stop(handle.raw, rc == mosqSuccess && !state.withLock { $0.disconnectSeen })
            state.withLock { s in
                s.loopRunning = false
                s.keepAlive = nil
            }
        }
        setLink(.disconnected(reason: "stopped"))
    }

    // MARK: Callbacks (libmosquitto's network thread)

    private func installCallbacks() {
        let raw = handle.raw
        mosquitto_connect_callback_set(raw) { _, context, rc in MQTTClient.from(context).connected(rc) }
        mosquitto_disconnect_callback_set(raw) { _, context, rc in MQTTClient.from(context).disconnected(rc, errno: errno) }
        mosquitto_publish_callback_set(raw) { _, context, mid in MQTTClient.from(context).acknowledged(mid) }
        mosquitto_message_callback_set(raw) { _, context, message in
            guard let message else { return }
            MQTTClient.from(context).received(message.pointee)
        }
        mosquitto_log_callback_set(raw) { _, context, level, text in
            guard level & Int32(MOSQ_LOG_ERR) != 0, let text else { return }
            MQTTClient.from(context).logged(String(cString: text))
        }
    }

    private static func from(_ context: UnsafeMutableRawPointer?) -> MQTTClient {
        Unmanaged<MQTTClient>.fromOpaque(context!).takeUnretainedValue()
    }

    private func connected(_ rc: Int32) {
        guard rc == 0 else {
            // The broker closes the connection after a refusal; the disconnect callback then ends the session
            // with this reason.
            let reason = "MQTT broker \(settings.endpoint) refused the connection: \(refusalText(rc))"
            state.withLock { $0.sessionEndReason = reason }
            return
        }
        state.withLock { s in
            s.failures = 0
            s.lastError = nil
        }
        setLink(.connected)
        control.async { self.afterConnect() }
    }

    private func disconnected(_ rc: Int32, errno failure: Int32) {
        let (stopped, wasConnected) = state.withLock { s in
            if s.stopped { s.disconnectSeen = true }
            return (s.stopped, s.link == .connected)
        }
        guard !stopped else { return }
        // Keeps libmosquitto from reconnecting by itself: the next attempt is ours, after the Backoff.
        _ = mosquitto_disconnect(handle.raw)
        let (id, reason) = state.withLock { s in
            if s.sessionEndReason == nil {
                s.sessionEndReason = disconnectReason(rc, errno: failure, wasConnected: wasConnected, libraryError: s.libraryError)
            }
            s.lastError = s.sessionEndReason
            return (s.session, s.sessionEndReason!)
        }
        setLink(.disconnected(reason: reason))
        control.async { self.endSession(id) }
    }

    private func acknowledged(_ mid: Int32) {
        let schedule = state.withLock { s -> Bool in
            if s.inflight.removeValue(forKey: mid) != nil {
                s.delivered += 1
            } else if s.earlyAcks.count < 4096 {  // bounded: an acknowledgement for a mid never recorded is noise
                s.earlyAcks.insert(mid)
            }
            return s.claimPump(maxInflight: settings.maxInflight)
        }
        if schedule { control.async { self.pump() } }
    }

    private func received(_ message: mosquitto_message) {
        guard let handler = state.withLock({ $0.onMessage }), let topic = message.topic else { return }
        let payload: [UInt8] = message.payloadlen > 0 && message.payload != nil
            ? Array(UnsafeRawBufferPointer(start: message.payload, count: Int(message.payloadlen)))
            : []
        handler(MQTTMessage(topic: String(cString: topic), payload: payload,
                            qos: MQTTQoS(rawValue: message.qos) ?? .atMostOnce, retain: message.retain))
    }

    private func logged(_ line: String) {
        // OpenSSL's reasons reach the application only through the log: keep the first error of an attempt,
        // the most specific one ("OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed").
        var text = line
        if text.hasPrefix("OpenSSL Error"), let last = text.split(separator: ":").last {
            text = String(last).trimmingCharacters(in: .whitespaces)
        } else if text.hasPrefix("Error: ") {
            text = String(text.dropFirst("Error: ".count))
        }
        let cleaned = lowercasedFirst(text.trimmingCharacters(in: CharacterSet(charactersIn: ". \n")))
        state.withLock { s in if s.libraryError == nil { s.libraryError = cleaned } }
    }

    // MARK: Helpers

    private func setLink(_ link: MQTTConnectionState) {
        let handler = state.withLock { s -> (@Sendable (MQTTConnectionState) -> Void)? in
            guard s.link != link else { return nil }
            s.link = link
            return s.onStateChange
        }
        handler?(link)
    }

    private var keepaliveSeconds: Int32 { Int32(settings.keepalive.components.seconds) }

    private func configure() throws {
        let raw = handle.raw
        let version = settings.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
        try expect(mosquitto_int_option(raw, MOSQ_OPT_PROTOCOL_VERSION, version), "setting the protocol version")
        if let username = settings.username {
            let rc = optionalCString(settings.password) { mosquitto_username_pw_set(raw, username, $0) }
            try expect(rc, "setting the user name")
        }
        if let will = settings.will {
            let rc = will.payload.withUnsafeBytes { bytes in
                mosquitto_will_set(raw, will.topic, Int32(bytes.count), bytes.baseAddress, will.qos.rawValue, will.retain)
            }
            try expect(rc, "setting the last will")
        }
        if let tls = settings.tls {
            if let caFile = tls.caFile {
                let rc = optionalCString(tls.certificateFile) { certificate in
                    optionalCString(tls.keyFile) { key in mosquitto_tls_set(raw, caFile, nil, certificate, key, nil) }
                }
                try expect(rc, "setting up TLS")
            } else {
                try expect(mosquitto_int_option(raw, MOSQ_OPT_TLS_USE_OS_CERTS, 1), "setting up TLS with the system's CAs")
                // The system store's folder as well: libmosquitto 2.0.11 refuses to reuse its TLS context on a
                // reconnection when neither a CA file nor a CA folder is set, and takes a client certificate
                // only together with one of them.
                let rc = optionalCString(tls.certificateFile) { certificate in
                    optionalCString(tls.keyFile) { key in mosquitto_tls_set(raw, nil, systemCAFolder, certificate, key, nil) }
                }
                try expect(rc, "setting up TLS with the system's CAs")
            }
            try expect(mosquitto_tls_insecure_set(raw, tls.insecure), "setting TLS host name checking")
        }
        // The library's own reconnection is pushed out of the way (its sleep is cut short by loop_stop);
        // reconnecting is the Backoff's job, with errors reported.
        try expect(mosquitto_reconnect_delay_set(raw, 3600, 3600, false), "setting the reconnect delay")
        try expect(mosquitto_int_option(raw, MOSQ_OPT_TCP_NODELAY, 1), "setting TCP_NODELAY")
    }

    private func expect(_ rc: Int32, _ what: String) throws {
        guard rc == mosqSuccess else { throw MQTTError("MQTT client for \(settings.endpoint): \(what) failed: \(libraryText(rc))") }
    }

    private static func validate(_ settings: MQTTSettings) throws {
        guard !settings.host.isEmpty else { throw MQTTError("the MQTT broker host is empty") }
        guard (1...65535).contains(settings.port) else { throw MQTTError("MQTT port \(settings.port) is not in 1...65535") }
        let keepalive = settings.keepalive.components.seconds
        guard (5...65535).contains(keepalive) else { throw MQTTError("MQTT keepalive must be 5 to 65535 seconds, not \(keepalive)") }
        guard settings.queueCapacity >= 1 else { throw MQTTError("the MQTT queue capacity must be at least 1") }
        guard settings.maxInflight >= 1 else { throw MQTTError("the MQTT in-flight limit must be at least 1") }
        if settings.password != nil && settings.username == nil {
            throw MQTTError("an MQTT password needs a user name (MQTT sends no password alone)")
        }
        if let will = settings.will { try check(will, role: "last will") }
        if let birth = settings.birth { try check(birth, role: "birth message") }
        if let tls = settings.tls {
            guard (tls.certificateFile == nil) == (tls.keyFile == nil) else {
                throw MQTTError("an MQTT TLS client certificate needs its key file, and a key file its certificate")
            }
            if tls.caFile == nil && access(systemCAFolder, R_OK) != 0 {
                throw MQTTError("MQTT TLS without a CA file uses the system's CA folder \(systemCAFolder), "
                                + "which cannot be read: \(systemError(errno))")
            }
            for (file, role) in [(tls.caFile, "CA file"), (tls.certificateFile, "client certificate"), (tls.keyFile, "client key")] {
                if let file, access(file, R_OK) != 0 {
                    throw MQTTError("the MQTT TLS \(role) \(file) cannot be read: \(systemError(errno))")
                }
            }
        }
    }

    private static func check(_ message: MQTTMessage, role: String) throws {
        guard !message.topic.isEmpty, mosquitto_pub_topic_check(message.topic) == mosqSuccess else {
            throw MQTTError("MQTT \(role) topic '\(message.topic)' is not valid (empty, or with + or #)")
        }
        guard message.payload.count <= 268_435_455 else {
            throw MQTTError("MQTT \(role) on \(message.topic) is \(message.payload.count) bytes, over MQTT's 256 MiB limit")
        }
    }

    private func connectFailure(_ rc: Int32, errno failure: Int32) -> String {
        switch rc {
        case Int32(MOSQ_ERR_ERRNO.rawValue):
            return "cannot reach MQTT broker \(settings.endpoint): \(systemError(failure))"
        case Int32(MOSQ_ERR_EAI.rawValue):
            // For lookup failures the library stores getaddrinfo's code in errno.
            return "cannot resolve MQTT broker host \(settings.host): \(lowercasedFirst(String(cString: gai_strerror(failure))))"
        case Int32(MOSQ_ERR_TLS.rawValue):
            // The handshake itself may already run inside the connect call (on loopback it usually does).
            return tlsFailure(state.withLock { $0.libraryError } ?? libraryText(rc))
        default:
            return "cannot connect to MQTT broker \(settings.endpoint): \(libraryText(rc))"
        }
    }

    private func disconnectReason(_ rc: Int32, errno failure: Int32, wasConnected: Bool, libraryError: String?) -> String {
        let broker = "MQTT broker \(settings.endpoint)"
        if wasConnected {
            switch rc {
            case 0: return "\(broker) closed the connection"
            case Int32(MOSQ_ERR_ERRNO.rawValue): return "lost connection to \(broker): \(systemError(failure))"
            case Int32(MOSQ_ERR_KEEPALIVE.rawValue):
                return "lost connection to \(broker): no answer within the keepalive (\(keepaliveSeconds) s)"
            default: return "lost connection to \(broker): \(libraryText(rc))"
            }
        }
        switch rc {
        case Int32(MOSQ_ERR_ERRNO.rawValue):
            return "cannot reach \(broker): \(systemError(failure))"
        case Int32(MOSQ_ERR_TLS.rawValue):
            return tlsFailure(libraryError ?? libraryText(rc))
        case Int32(MOSQ_ERR_KEEPALIVE.rawValue):
            return "\(broker) accepted TCP but did not answer the MQTT connect within the keepalive (\(keepaliveSeconds) s)"
        case Int32(MOSQ_ERR_CONN_LOST.rawValue), 0:
            return "\(broker) closed the connection before accepting it (does it expect TLS, or another protocol version?)"
        default:
            return "connecting to \(broker) failed: \(libraryText(rc))"
        }
    }

    private func tlsFailure(_ detail: String) -> String {
        detail.hasPrefix("unable to load")
            ? "TLS setup for MQTT broker \(settings.endpoint) failed: \(detail)"
            : "TLS handshake with MQTT broker \(settings.endpoint) failed: \(detail)"
    }

    private func refusalText(_ rc: Int32) -> String {
        let text = settings.protocolVersion == .v5
            ? String(cString: mosquitto_reason_string(rc))
            : String(cString: mosquitto_connack_string(rc))
        // "Connection Refused: not authorised." reads as "not authorised" after "refused the connection:".
        let detail = text.hasPrefix("Connection Refused: ") ? String(text.dropFirst("Connection Refused: ".count)) : text
        return lowercasedFirst(detail.trimmingCharacters(in: CharacterSet(charactersIn: ".")))
    }
}

// MARK: - Internals

/// The library handle. libmosquitto documents its calls as thread safe; the ones that must not overlap
/// (connect, loop start and stop, destroy) run only on the client's control queue or in deinit.
private struct Handle: @unchecked Sendable {
    let raw: OpaquePointer
}

private struct State: Sendable {
    var started = false
    var stopped = false
    var link: MQTTConnectionState = .disconnected(reason: "not started")
    var lastError: String?
    var queue: Ring<MQTTMessage>
    /// Messages handed to the library by message id, until their acknowledgement.
    var inflight: [Int32: MQTTQoS] = [:]
    /// Messages taken from the queue by the pump and not yet recorded in `inflight` (so never counted as drained).
    var handing = 0
    /// Acknowledgements that overtook `record(mid:qos:handed:)`.
    var earlyAcks: Set<Int32> = []
    var pumpScheduled = false
    var dropped = 0
    var delivered = 0
    var subscriptions: [String: MQTTQoS] = [:]
    var onMessage: (@Sendable (MQTTMessage) -> Void)?
    var onStateChange: (@Sendable (MQTTConnectionState) -> Void)?
    /// Counts sessions: one per connection attempt whose network thread started.
    var session = 0
    var loopRunning = false
    /// The client itself while its network thread runs, so that callbacks never outlive it.
    var keepAlive: MQTTClient?
    var sessionEndReason: String?
    var libraryError: String?
    var failures = 0
    var socketGoneChecks = 0
    var disconnectSeen = false

    init(capacity: Int) { queue = Ring(capacity: capacity) }

    /// Whether the caller should schedule a pump: connected, work waiting, room in flight, none scheduled yet.
    mutating func claimPump(maxInflight: Int) -> Bool {
        guard link == .connected, !queue.isEmpty, inflight.count + handing < maxInflight, !pumpScheduled else { return false }
        pumpScheduled = true
        return true
    }
}

/// A fixed-capacity FIFO that makes room by dropping its oldest element.
private struct Ring<Element: Sendable>: Sendable {
    private var slots: [Element?]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) { slots = Array(repeating: nil, count: capacity) }

    var isEmpty: Bool { count == 0 }

    /// Appends `element`; returns the oldest element it dropped to make room, if any.
    mutating func append(_ element: Element) -> Element? {
        var dropped: Element?
        if count == slots.count { dropped = popFirst() }
        slots[(head + count) % slots.count] = element
        count += 1
        return dropped
    }

    /// Puts `element` back in front; false (and nothing changes) when full.
    mutating func prepend(_ element: Element) -> Bool {
        guard count < slots.count else { return false }
        head = (head + slots.count - 1) % slots.count
        slots[head] = element
        count += 1
        return true
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        defer {
            slots[head] = nil
            head = (head + 1) % slots.count
            count -= 1
        }
        return slots[head]
    }
}

/// libmosquitto is initialised once per process, on first use (a global is initialised exactly once, safely).
private let libraryInitialized: Int32 = mosquitto_lib_init()

private let mosqSuccess = Int32(MOSQ_ERR_SUCCESS.rawValue)

/// Debian's (and OpenSSL's default) folder of trusted CA certificates, from the ca-certificates package.
private let systemCAFolder = "/etc/ssl/certs"

private func libraryText(_ rc: Int32) -> String {
    lowercasedFirst(String(cString: mosquitto_strerror(rc)).trimmingCharacters(in: CharacterSet(charactersIn: ".")))
}

private func systemError(_ code: Int32) -> String {
    lowercasedFirst(String(cString: strerror(code)))
}

private func lowercasedFirst(_ text: String) -> String {
    guard let first = text.first else { return text }
    // Keeps acronyms ("TLS ...") as they are.
    if text.count > 1, text[text.index(after: text.startIndex)].isUppercase { return text }
    return first.lowercased() + text.dropFirst()
}

private func optionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}
