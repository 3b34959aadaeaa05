import Foundation
import HTTPTypes
import Hummingbird
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

    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        if let token = settings.authToken { router.add(middleware: TokenCheck(token: token)) }
        router.add(middleware: MethodCheck())
        Self.addRoutes(to: router, handler: handler)
        return router
    }

    /// Registers every route of `Route` with every method it serves, and nothing else.
    static func addRoutes(to router: Router<BasicRequestContext>, handler: (Route) -> Handler) {
        for route in Route.allCases {
            let respond = handler(route)
            for method in route.methods { router.on(RouterPath(route.path), method: method, use: respond) }
        }
    }

    func handler(_ route: Route) -> Handler {
        switch route {
        case .page:
            return { request, _ in
                let token = request.uri.queryParameters.get("token").map { String($0) }
                return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                                body: .init(byteBuffer: ByteBuffer(string: Page.html(cameras: service.cameras.map(\.config.name), token: token))))
            }
        case .healthz:
            return { _, _ in Self.text("ok\n") }
        case .readyz:
            return { _, _ in
                let problems = readinessProblems()
                if problems.isEmpty { return Self.text("ready\n") }
                return Self.text("not ready: " + problems.joined(separator: "; ") + "\n", status: .serviceUnavailable)
            }
        case .metrics:
            return { _, _ in
                metrics.update(service.cameras.map(\.current))
                return Self.text(metrics.text(), type: "text/plain; version=0.0.4; charset=utf-8")
            }
        case .openAPI:
            return { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.json)))
            }
        case .cameras:
            return { _, _ in try Self.json(service.status.map(CameraJSON.init)) }
        case .events:
            return { request, _ in
                let query: EventQuery
                let parameters = request.uri.queryParameters
                switch EventQuery.parse({ parameters.get($0).map { String($0) } }) {
                case .success(let q): query = q
                case .failure(let problem): return Self.text(problem.description + "\n", status: .badRequest)
                }
                guard let store else { return Self.text("the event database is not available\n", status: .serviceUnavailable) }
                return try Self.json(try store.events(camera: query.camera, after: query.after, limit: query.limit))
            }
        case .event:
            return { _, context in
                guard let row = try event(context) else { return Self.notFound("no such event") }
                return try Self.json(row)
            }
        case .snapshot:
            return { request, context in
                guard let row = try event(context), let snapshot = row.snapshot else { return Self.notFound("no snapshot for this event") }
                return try FileResponse.serve(folder(row.camera) + "/" + snapshot, type: "image/jpeg", request: request)
            }
        case .clip:
            return { request, context in
                guard let row = try event(context), let clip = row.clip else { return Self.notFound("no clip for this event") }
                return try FileResponse.serve(folder(row.camera) + "/" + clip, type: "video/mp4", request: request)
            }
        case .latestFrame:
            return { _, context in
                let name = try context.parameters.require("name")
                guard service.cameras.contains(where: { $0.config.name == name }) else { return Self.notFound("no such camera") }
                guard let jpeg = previews.jpeg(camera: name) else { return Self.notFound("no frame yet") }
                return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "no-store"],
                                body: .init(byteBuffer: ByteBuffer(bytes: jpeg.data)))
            }
        case .stream:
            return { _, context in
                let name = try context.parameters.require("name")
                guard service.cameras.contains(where: { $0.config.name == name }) else { return Self.notFound("no such camera") }
                return mjpeg(name)
            }
        }
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
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try body(value))))
    }

    /// A JSON answer's bytes: keys sorted, a nil field left out.
    static func body<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
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

/// The query of `/api/events`, checked: a value that does not parse, or a limit out of range, is refused (400)
/// rather than quietly replaced by its default.
struct EventQuery: Equatable {
    var camera: String?
    var after: Double?
    var limit = 50

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// `value` gives a query parameter by its name.
    static func parse(_ value: (String) -> String?) -> Result<EventQuery, Problem> {
        var query = EventQuery()
        query.camera = value("camera")
        if let text = value("after") {
            guard let after = Double(text), after.isFinite else {
                return .failure(Problem(description: "after: expected a time in epoch seconds, got '\(text)'"))
            }
            query.after = after
        }
        if let text = value("limit") {
            guard let limit = Int(text), (1...1000).contains(limit) else {
                return .failure(Problem(description: "limit: expected a whole number from 1 to 1000, got '\(text)'"))
            }
            query.limit = limit
        }
        return .success(query)
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
