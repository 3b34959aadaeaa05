import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Every route of `watch`'s server: the router is built from this list alone (`WebServer.addRoutes`), so a test can
/// hold the OpenAPI document (`Resources/openapi.json`) to what is served, path by path and method by method.
enum Route: CaseIterable, Sendable {
    case page, healthz, readyz, metrics, openAPI, cameras, events, event, snapshot, clip, latestFrame, stream

    /// In the document's form: `{name}` is a captured segment (Hummingbird reads it the same way).
    var path: String {
        switch self {
        case .page: "/"
        case .healthz: "/healthz"
        case .readyz: "/readyz"
        case .metrics: "/metrics"
        case .openAPI: "/api/openapi.json"
        case .cameras: "/api/cameras"
        case .events: "/api/events"
        case .event: "/api/events/{id}"
        case .snapshot: "/api/events/{id}/snapshot.jpg"
        case .clip: "/api/events/{id}/clip.mp4"
        case .latestFrame: "/cameras/{name}/latest.jpg"
        case .stream: "/cameras/{name}/stream.mjpeg"
        }
    }

    /// Files answer HEAD too (`FileResponse` leaves the body out); the rest are GET only.
    var methods: [HTTPRequest.Method] {
        switch self {
        case .snapshot, .clip: [.get, .head]
        default: [.get]
        }
    }

    private static let patterns = allCases.map { ($0, RouterPath($0.path)) }

    /// The route whose path pattern `path` fits, whatever the method.
    static func matching(_ path: String) -> Route? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return patterns.first { _, pattern in
            pattern.count == segments.count && zip(pattern, segments).allSatisfy { $0 ~= $1 }
        }?.0
    }
}

/// A known path asked with a method it does not serve: `405` naming the ones it does (RFC 9110, 15.5.6), where the
/// router alone would say the path does not exist.
struct MethodCheck<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let route = Route.matching(request.uri.path), !route.methods.contains(request.method) else {
            return try await next(request, context)
        }
        let allowed = route.methods.map(\.rawValue).joined(separator: ", ")
        return Response(status: .methodNotAllowed, headers: [.contentType: "text/plain; charset=utf-8", .allow: allowed],
                        body: .init(byteBuffer: ByteBuffer(string: "\(request.method.rawValue) is not served here; \(allowed) is\n")))
    }
}

/// The OpenAPI 3.1 description of the server, embedded in the binary from `Resources/openapi.json` (an installed
/// binary has no resource folder beside it).
enum OpenAPIDocument {
    static let json = Data(PackageResources.openapi_json)
}
