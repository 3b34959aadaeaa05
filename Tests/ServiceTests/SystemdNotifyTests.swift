import Foundation
import Service
import Testing
import TestKit
#if canImport(Glibc)
import Glibc
#endif

/// sd_notify without libsystemd: the datagrams systemd would read, on a socket the test binds.
@Suite("systemd's notify protocol")
struct SystemdNotifyTests {
    /// A bound unix datagram socket at `path`; returns its descriptor.
    static func listen(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0, "bind: \(String(cString: strerror(errno)))")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func receive(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    @Test("READY=1 and WATCHDOG=1 arrive as datagrams on $NOTIFY_SOCKET; half of WATCHDOG_USEC is the ping period")
    func datagrams() throws {
        let scratch = try ScratchDirectory("notify")
        let path = scratch.path("notify.sock")
        let fd = try Self.listen(at: path)
        defer { close(fd) }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"])
        #expect(notifier.isEnabled && notifier.watchdogInterval == .seconds(2))
        #expect(notifier.notify("READY=1"))
        #expect(Self.receive(fd) == "READY=1")
        #expect(notifier.notify("WATCHDOG=1"))
        #expect(Self.receive(fd) == "WATCHDOG=1")
    }

    @Test("outside systemd nothing is sent; a watchdog meant for another process is not ours; a dead socket is false, not a crash")
    func outside() throws {
        #expect(!SystemdNotifier(environment: [:]).isEnabled)
        #expect(!SystemdNotifier(environment: [:]).notify("READY=1"))
        let other = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent/sock", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"])
        #expect(other.watchdogInterval == nil || getpid() == 1)
        #expect(!other.notify("READY=1"))
    }
}
