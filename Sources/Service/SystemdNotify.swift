import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// systemd's notify protocol without libsystemd: one datagram (`READY=1`, `WATCHDOG=1`, `STOPPING=1`) to the
/// unix socket named by `$NOTIFY_SOCKET`. Outside systemd (no such variable) every call does nothing.
public struct SystemdNotifier: Sendable {
    /// The socket path; a leading `@` is Linux's abstract namespace (a NUL byte on the wire).
    public let socketPath: String?
    /// Half of `$WATCHDOG_USEC` (systemd's advice: ping at least twice per period), nil without a watchdog.
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        // WATCHDOG_PID, when set, names the process the watchdog is meant for.
        let forUs = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        if forUs, path != nil, let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0 {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    public var isEnabled: Bool { socketPath != nil }

    /// Sends `state` (e.g. `READY=1`); false when it could not be sent (or there is no socket). Never throws:
    /// the service runs the same with or without its supervisor.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let socketPath else { return false }
        #if os(Linux)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_DGRAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(socketPath.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, socketAddress, length) }
            }
        }
        return sent == message.count
    }
}

extension WatchService {
    /// Tells systemd the service is up once every enabled camera has delivered a frame or settled (ended, down),
    /// then pings the watchdog while frames flow: no ping while a camera that says it is up has delivered no
    /// frame for a watchdog period (a stuck pipeline), so systemd restarts the process. A camera that is
    /// reconnecting does not stop the pings: its own loop is working, and a restart would not bring it back.
    /// Runs until cancelled.
    public func superviseForSystemd(_ notifier: SystemdNotifier = SystemdNotifier(),
                                    now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) async {
        guard notifier.isEnabled else { return }
        var ready = false
        let period = notifier.watchdogInterval.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        var lastPing = ContinuousClock.now
        while !Task.isCancelled {
            let statuses = cameras.map(\.current).filter { $0.state != .disabled }
            if !ready, statuses.allSatisfy({ $0.lastFrame != nil || $0.state == .ended || $0.state == .down }) {
                ready = notifier.notify("READY=1\nSTATUS=watching \(statuses.count) cameras")
            }
            if let period, ContinuousClock.now - lastPing >= .seconds(period) {
                let t = now()
                // A camera stuck "up" for twice the ping period (the whole watchdog timeout) stops the pings.
                let stuck = statuses.contains { s in s.state == .up && (s.lastFrame.map { t - $0 > 2 * period } ?? false) }
                if !stuck && notifier.notify("WATCHDOG=1") { lastPing = ContinuousClock.now }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
