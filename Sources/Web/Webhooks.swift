import AsyncHTTPClient
import Foundation
import Logging
import Monitoring
import NIOCore
import Service
import Synchronization

/// Event lines POSTed as JSON to every configured receiver. `send` never waits: lines go into a bounded
/// queue (the oldest is dropped, and counted, when a receiver is too slow), and one task per receiver sends
/// them with a timeout and retries with backoff. A `new` within `cooldown` seconds of the last one sent for
/// the same camera is not sent, and neither is that event's `end`.
public final class Webhooks: Sendable {
    private struct Hook: Sendable {
        let settings: WebhookSettings
        let stream: AsyncStream<EventRecord>
        let continuation: AsyncStream<EventRecord>.Continuation
    }

    private let hooks: [Hook]
    private let metrics: ServiceMetrics?
    private let logger: Logger
    private let client: HTTPClient
    /// Per hook: the last time a `new` was sent for each camera, and the events whose `new` was held back.
    private let cooldowns = Mutex<[Int: (lastSent: [String: Double], held: Set<String>)]>([:])
    public static let queueLength = 64

    public init(_ settings: [WebhookSettings], metrics: ServiceMetrics?, logger: Logger) {
        hooks = settings.map { s in
            let (stream, continuation) = AsyncStream<EventRecord>.makeStream(bufferingPolicy: .bufferingNewest(Self.queueLength))
            return Hook(settings: s, stream: stream, continuation: continuation)
        }
        self.metrics = metrics
        self.logger = logger
        client = HTTPClient.shared
    }

    public var isEmpty: Bool { hooks.isEmpty }

    /// Queues `record` for the receivers that want its type; returns at once.
    public func send(_ record: EventRecord, now: Double = Date().timeIntervalSince1970) {
        for (n, hook) in hooks.enumerated() where hook.settings.on.contains(record.type) {
            guard admit(record, hook: n, cooldown: hook.settings.cooldown, now: now) else { continue }
            if case .dropped = hook.continuation.yield(record) {
                metrics?.webhookDroppedOne()
                logger.warning("webhook \(hook.settings.url): queue full, the oldest event line was dropped")
            }
        }
    }

    /// The cooldown rule for hook `n`.
    func admit(_ record: EventRecord, hook n: Int, cooldown: Double, now: Double) -> Bool {
        cooldowns.withLock { all in
            var state = all[n] ?? ([:], [])
            defer { all[n] = state }
            if record.type == "new" {
                if let last = state.lastSent[record.camera], now - last < cooldown {
                    state.held.insert(record.id)
                    return false
                }
                state.lastSent[record.camera] = now
                return true
            }
            if state.held.contains(record.id) {
                if record.type == "end" { state.held.remove(record.id) }
                return false
            }
            return true
        }
    }

    /// Sends until `stop()`; run it in a task.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for hook in hooks {
                group.addTask { [self] in
                    for await record in hook.stream { await deliver(record, to: hook.settings) }
                }
            }
        }
    }

    public func stop() {
        for hook in hooks { hook.continuation.finish() }
    }

    private func deliver(_ record: EventRecord, to settings: WebhookSettings) async {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let body = try? encoder.encode(record) else { return }
        var delay = 0.5
        for attempt in 0...settings.retries {
            do {
                var request = HTTPClientRequest(url: settings.url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "User-Agent", value: "roadwatch")
                request.body = .bytes(ByteBuffer(bytes: body))
                let response = try await client.execute(request, timeout: .milliseconds(Int64(settings.timeout * 1000)))
                _ = try? await response.body.collect(upTo: 1 << 16)
                if (200..<300).contains(response.status.code) { return }
                throw WebhookError("HTTP \(response.status.code)")
            } catch {
                metrics?.webhookFailed()
                if attempt == settings.retries {
                    logger.warning("webhook \(settings.url): \(record.type) \(record.id) not delivered after \(attempt + 1) attempts: \(error)")
                    return
                }
                try? await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 30)
            }
        }
    }
}

struct WebhookError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
