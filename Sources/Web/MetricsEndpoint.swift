import Foundation
import Hummingbird
import Logging
import NIOCore
import Service

/// `/metrics` and `/healthz` alone, for `roadwatch run --metrics-listen ADDR`: the same names as the
/// service's, for the one stream `run` watches.
public struct MetricsEndpoint: Sendable {
    public let metrics: ServiceMetrics
    public let settings: HTTPSettings
    let logger: Logger

    public init(metrics: ServiceMetrics, settings: HTTPSettings, logger: Logger) {
        self.metrics = metrics
        self.settings = settings
        self.logger = logger
    }

    /// `HOST:PORT` into settings; off loopback `token` is required. The error says what is wrong.
    public static func settings(listen: String, token: String?) throws(ConfigError) -> HTTPSettings {
        var settings = HTTPSettings()
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port),
              colon > listen.startIndex else {
            throw ConfigError("--metrics-listen: expected HOST:PORT (e.g. 127.0.0.1:9464), got '\(listen)'")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        settings.host = host
        settings.port = port
        settings.authToken = token
        if !settings.isLoopback && token == nil {
            throw ConfigError("--metrics-listen \(listen) is not loopback: set ROADWATCH_TOKEN to the token scrapers must send")
        }
        return settings
    }

    /// Serves until `shutdown` is triggered.
    public func run(shutdown: Shutdown, onRunning: @escaping @Sendable () -> Void = {}) async throws {
        let router = Router()
        if let token = settings.authToken { router.add(middleware: TokenCheck(token: token)) }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/metrics") { [metrics] _, _ -> Response in
            WebServer.text(metrics.text(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        let app = Application(router: router,
                              configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "roadwatch"),
                              onServerRunning: { _ in onRunning() }, logger: logger)
        try await shutdown.run(app, logger: logger)
    }
}
