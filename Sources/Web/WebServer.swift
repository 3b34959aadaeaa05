import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Pipeline
import Service
import ServiceLifecycle
import Synchronization

/// The HTTP side of `watch` (Hummingbird 2): the page, the JSON API, previews, `/metrics`, health.
/// Off loopback every request but `/healthz` must carry the token (`Authorization: Bearer T`,
/// `X-Roadwatch-Token: T` or `?token=T`).
public struct WebServer: Sendable {
    public let service: WatchService
    public let store: EventStore?
    public let metrics: ServiceMetrics
    public let previews: Previews
    public let settings: HTTPSettings
    let logger: Logger

    public init(service: WatchService, store: EventStore?, metrics: ServiceMetrics, previews: Previews,
                settings: HTTPSettings, logger: Logger) {
        self.service = service
        self.store = store
        self.metrics = metrics
        self.previews = previews
        self.settings = settings
        self.logger = logger
    }

    /// Serves until `shutdown` is triggered (a graceful shutdown through swift-service-lifecycle: open
    /// connections finish) or the task is cancelled. `onRunning` is called once the socket listens.
    public func run(shutdown: Shutdown, onRunning: @escaping @Sendable () -> Void = {}) async throws {
        let app = Application(router: makeRouter(),
                              configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "roadwatch"),
                              onServerRunning: { _ in onRunning() }, logger: logger)
        try await shutdown.run(app, logger: logger)
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        if let token = settings.authToken { router.add(middleware: TokenCheck(token: token)) }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            let problems = readinessProblems()
            if problems.isEmpty { return Self.text("ready\n") }
            return Self.text("not ready: " + problems.joined(separator: "; ") + "\n", status: .serviceUnavailable)
        }
        router.get("/metrics") { _, _ -> Response in
            metrics.update(service.cameras.map(\.current))
            return Self.text(metrics.text(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/api/cameras") { _, _ -> Response in
            try Self.json(service.status.map(CameraJSON.init))
        }
        router.get("/api/events") { request, _ -> Response in
            guard let store else { return Self.text("the event database is not available\n", status: .serviceUnavailable) }
            let q = EventQuery(request.uri)
            return try Self.json(try store.events(camera: q.camera, after: q.after, limit: q.limit))
        }
        router.get("/api/events/:id") { _, context -> Response in
            guard let row = try event(context) else { return Self.notFound("no such event") }
            return try Self.json(row)
        }
        // GET and HEAD of an event's files (`FileResponse` answers HEAD without a body).
        for method in [HTTPRequest.Method.get, .head] {
            router.on("/api/events/:id/snapshot.jpg", method: method) { request, context -> Response in
                guard let row = try event(context), let snapshot = row.snapshot else { return Self.notFound("no snapshot for this event") }
                return try FileResponse.serve(folder(row.camera) + "/" + snapshot, type: "image/jpeg", request: request)
            }
            router.on("/api/events/:id/clip.mp4", method: method) { request, context -> Response in
                guard let row = try event(context), let clip = row.clip else { return Self.notFound("no clip for this event") }
                return try FileResponse.serve(folder(row.camera) + "/" + clip, type: "video/mp4", request: request)
            }
        }
        router.get("/cameras/:name/latest.jpg") { _, context -> Response in
            let name = try context.parameters.require("name")
            guard service.cameras.contains(where: { $0.config.name == name }) else { return Self.notFound("no such camera") }
            guard let jpeg = previews.jpeg(camera: name) else { return Self.notFound("no frame yet") }
            return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: jpeg.data)))
        }
        router.get("/cameras/:name/stream.mjpeg") { _, context -> Response in
            let name = try context.parameters.require("name")
            guard service.cameras.contains(where: { $0.config.name == name }) else { return Self.notFound("no such camera") }
            return mjpeg(name)
        }
        router.get("/") { request, _ -> Response in
            let token = request.uri.queryParameters.get("token").map { String($0) }
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(string: Page.html(cameras: service.cameras.map(\.config.name), token: token))))
        }
        return router
    }

    func folder(_ camera: String) -> String { service.config.output + "/" + camera }

    func event(_ context: BasicRequestContext) throws -> EventStore.Row? {
        let id = try context.parameters.require("id")
        return try store?.event(id: id)
    }

    /// Why the service is not ready: a camera enabled and not ended that has not delivered a frame in 10 s.
    func readinessProblems(now: Double = Date().timeIntervalSince1970) -> [String] {
        service.cameras.compactMap { camera in
            let s = camera.current
            guard camera.config.enabled, s.state != .ended else { return nil }
            guard let last = s.lastFrame else { return "camera \(s.name) has not delivered a frame (\(s.state.rawValue))" }
            let age = now - last
            return age > 10 ? "camera \(s.name) has not delivered a frame for \(Int(age)) s (\(s.state.rawValue))" : nil
        }
    }

    /// multipart/x-mixed-replace of the camera's annotated frames, at most `previewFPS` per second; a frame is
    /// encoded only when it is new, and the loop ends when the viewer goes away.
    func mjpeg(_ camera: String) -> Response {
        let boundary = "roadwatchframe"
        let interval = 1 / max(0.1, settings.previewFPS)
        let previews = self.previews
        let body = ResponseBody { writer in
            var last = 0
            while !Task.isCancelled {
                let started = ContinuousClock.now
                if let jpeg = previews.jpeg(camera: camera), jpeg.sequence != last {
                    last = jpeg.sequence
                    var part = ByteBuffer(string: "--\(boundary)\r\nContent-Type: image/jpeg\r\nContent-Length: \(jpeg.data.count)\r\n\r\n")
                    part.writeBytes(jpeg.data)
                    part.writeString("\r\n")
                    try await writer.write(part)
                }
                let wait = interval - started.secondsSince
                try await Task.sleep(for: .seconds(max(0.02, wait)))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "multipart/x-mixed-replace; boundary=\(boundary)", .cacheControl: "no-store"],
                        body: body)
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok, type: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func notFound(_ why: String) -> Response { text(why + "\n", status: .notFound) }

    static func json<T: Encodable>(_ value: T) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}

/// Ends a server gracefully: the service group it runs in is told to shut down (a stop asked for before
/// the group exists is kept and applied when it starts).
public final class Shutdown: Sendable {
    private let state = Mutex<(group: ServiceGroup?, asked: Bool)>((nil, false))

    public init() {}

    func run(_ service: some ServiceLifecycle.Service, logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [], logger: logger))
        let asked = state.withLock { s -> Bool in
            s.group = group
            return s.asked
        }
        if asked { await group.triggerGracefulShutdown() }
        try await group.run()
    }

    public func trigger() async {
        let group = state.withLock { s -> ServiceGroup? in
            s.asked = true
            return s.group
        }
        await group?.triggerGracefulShutdown()
    }
}

/// A camera as `/api/cameras` gives it.
struct CameraJSON: Encodable {
    var name: String, state: String, fps: Double, latency_ms: Double, latency_p99_ms: Double, frames: Int, dropped: Int
    var reconnects: Int, events: Int, last_frame: Double?, last_error: String?, preview: String, stream: String

    init(_ report: CameraReport) {
        let s = report.status
        name = s.name
        state = s.state.rawValue
        fps = (s.fps * 100).rounded() / 100
        latency_ms = (s.latency * 10000).rounded() / 10
        latency_p99_ms = (report.latencyP99 * 10000).rounded() / 10
        frames = s.frames
        dropped = s.dropped
        reconnects = s.reconnects
        events = s.events
        last_frame = s.lastFrame.map { ($0 * 1000).rounded() / 1000 }
        last_error = s.lastError
        preview = "/cameras/\(s.name)/latest.jpg"
        stream = "/cameras/\(s.name)/stream.mjpeg"
    }
}

/// The filters of `GET /api/events` as its query string gives them; a value that does not parse is no filter.
struct EventQuery: Equatable {
    var camera: String?
    var after: Double?
    var limit: Int

    init(_ uri: URI) {
        let q = uri.queryParameters
        camera = q.get("camera").map { String($0) }
        after = q.get("after").flatMap { Double($0) }
        limit = q.get("limit").flatMap { Int($0) } ?? 50
    }
}

/// The token check for a server off loopback; `/healthz` stays open for probes.
struct TokenCheck<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/healthz" { return try await next(request, context) }
        let bearer = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        let given = bearer ?? request.headers[HTTPField.Name("X-Roadwatch-Token")!] ?? request.uri.queryParameters.get("token").map { String($0) }
        guard let given, Tokens.same(given, token) else {
            return Response(status: .unauthorized, headers: [.contentType: "text/plain; charset=utf-8", .wwwAuthenticate: "Bearer"],
                            body: .init(byteBuffer: ByteBuffer(string: "a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n")))
        }
        return try await next(request, context)
    }
}

enum Tokens {
    /// Compares without stopping at the first difference.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = x.count ^ y.count
        for i in 0..<max(x.count, y.count) { difference |= Int((i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)) }
        return difference == 0
    }
}
