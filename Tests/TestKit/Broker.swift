import Foundation
import Synchronization

/// A real mosquitto broker on a free loopback port, with a config file of its own in a temporary folder;
/// killed and its folder removed when the test drops it.
public final class MosquittoBroker: @unchecked Sendable {
    public static let binary = "/usr/sbin/mosquitto"

    /// Whether the broker is installed (Debian package mosquitto); test suites skip or fail on it as they choose.
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    public let port: Int
    public let folder: URL
    public var host: String { "127.0.0.1" }
    private var process: Process?

    /// `users`: user name → password, written with mosquitto_passwd; none means anonymous access.
    /// `listenerLines`: more lines for the listener (TLS files).
    public init(users: [String: String] = [:], listenerLines: [String] = [], port: Int? = nil) throws {
        guard Self.isInstalled else { throw BrokerError("\(Self.binary) is not installed (Debian package mosquitto)") }
        self.port = try port ?? freeLoopbackPort()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("roadwatch-mqtt-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var lines = ["listener \(self.port) 127.0.0.1"] + listenerLines
        if users.isEmpty {
            lines.append("allow_anonymous true")
        } else {
            let passwords = folder.appendingPathComponent("passwords").path
            for (index, (user, password)) in users.sorted(by: { $0.key < $1.key }).enumerated() {
                let run = try runProgram("/usr/bin/mosquitto_passwd", ["-b"] + (index == 0 ? ["-c"] : []) + [passwords, user, password],
                                         timeout: 10)
                guard run.status == 0 else { throw BrokerError("mosquitto_passwd failed: \(run.stderr)") }
            }
            lines += ["allow_anonymous false", "password_file \(passwords)"]
        }
        // The log goes to stderr, into a file this process opens: a broker started as root drops to the
        // mosquitto user and could not open a log file in a root-owned folder itself.
        lines += ["persistence false", "log_dest stderr",
                  "log_type error", "log_type warning", "log_type notice", "log_type information"]
        let config = lines.joined(separator: "\n") + "\n"
        try config.write(to: folder.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        try start()
    }

    /// Starts the broker (again, on the same port) and waits until it accepts connections.
    public func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["-c", folder.appendingPathComponent("mosquitto.conf").path]
        let logPath = folder.appendingPathComponent("broker.log").path
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw BrokerError("cannot open \(logPath)") }
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try log.close()
        self.process = process
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if canConnect(port: port) { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        throw BrokerError("mosquitto did not start on port \(port): \(log)")
    }

    /// Sends `signal` to the broker (SIGKILL by default: no goodbye to the clients); after a signal that ends
    /// it, waits for the end.
    public func kill(signal: Int32 = SIGKILL) {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
        guard signal != SIGSTOP && signal != SIGCONT else { return }
        process.waitUntilExit()
        self.process = nil
    }

    public var log: String { (try? String(contentsOf: folder.appendingPathComponent("broker.log"), encoding: .utf8)) ?? "" }

    deinit {
        kill(signal: SIGCONT)  // a stopped process takes SIGKILL too, but this keeps its exit prompt to observe
        kill()
        try? FileManager.default.removeItem(at: folder)
    }
}

public struct BrokerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BrokerError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { throw BrokerError("bind() failed") }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw BrokerError("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

public func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A program running in the background whose output is collected as it comes.
public final class Spawned: @unchecked Sendable {
    public let process = Process()
    private final class Output: Sendable {
        let state = Mutex<(out: Data, err: Data, outEnded: Bool)>((Data(), Data(), false))
    }
    private let output = Output()

    public init(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            output.state.withLock { data.isEmpty ? ($0.outEnded = true) : $0.out.append(data) }
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        err.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            output.state.withLock { $0.err.append(data) }
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        try process.run()
    }

    public var stdout: String { String(decoding: output.state.withLock { $0.out }, as: UTF8.self) }
    public var stderr: String { String(decoding: output.state.withLock { $0.err }, as: UTF8.self) }
    public var lines: [String] { stdout.split(separator: "\n").map(String.init) }

    /// Waits up to `timeout` seconds for the exit, killing it (SIGKILL) after that, then briefly for the rest of
    /// its output; whether it ended by itself.
    @discardableResult
    public func waitForExit(timeout: Double) async -> Bool {
        let ended = await eventually(timeout) { !self.process.isRunning }
        if !ended { kill() }
        _ = await eventually(1) { self.output.state.withLock { $0.outEnded } }
        return ended
    }

    public func kill(signal: Int32 = SIGKILL) {
        if process.isRunning { Foundation.kill(process.processIdentifier, signal) }
    }

    deinit { kill() }
}

/// Runs a program to its end (killed after `timeout` seconds).
public func runProgram(_ path: String, _ arguments: [String], timeout: Double) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    // Small outputs only (the pipe holds 64 KiB): read after the exit.
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return (process.terminationStatus, stdout, stderr)
}

/// Polls `condition` every 10 ms for up to `timeout` seconds; whether it became true.
public func eventually(_ timeout: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl program.
public struct TestCertificates {
    public let caFile: String
    public let serverCertificate: String
    public let serverKey: String

    public init(in folder: URL) throws {
        let openssl = "/usr/bin/openssl"
        guard FileManager.default.isExecutableFile(atPath: openssl) else { throw BrokerError("openssl is not installed") }
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        // EC keys: generated in milliseconds, unlike RSA.
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=roadwatch test CA", "-keyout", path("ca.key"), "-out", path("ca.crt")],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", "/CN=127.0.0.1", "-keyout", path("server.key"), "-out", path("server.csr")],
            ["x509", "-req", "-in", path("server.csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"), "-CAcreateserial",
             "-days", "2", "-extfile", path("san.cnf"), "-out", path("server.crt")],
        ]
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: path("san.cnf"), atomically: true, encoding: .utf8)
        for step in steps {
            let run = try runProgram(openssl, step, timeout: 30)
            guard run.status == 0 else { throw BrokerError("openssl \(step[0]) failed: \(run.stderr)") }
        }
        // The broker may drop root privileges before it reads the key.
        chmod(path("server.key"), 0o644)
        caFile = path("ca.crt")
        serverCertificate = path("server.crt")
        serverKey = path("server.key")
    }
}
