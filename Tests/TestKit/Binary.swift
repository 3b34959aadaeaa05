import Foundation

/// Runs the built `roadwatch` executable as a user would, and captures what it did.
public enum RoadwatchBinary {
    /// The full path of `name` on PATH, if it is there.
    public static func which(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// `$ROADWATCH_BIN`, else `roadwatch` beside the test bundle in the build folder.
    public static let url: URL = {
        if let path = ProcessInfo.processInfo.environment["ROADWATCH_BIN"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let buildFolder = Bundle.main.bundleURL.pathExtension == "xctest"
            ? Bundle.main.bundleURL.deletingLastPathComponent() : Bundle.main.bundleURL
        return buildFolder.appendingPathComponent("roadwatch")
    }()

    public struct Outcome: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var seconds: Double
        public var timedOut: Bool
        /// Non-empty lines written to standard error.
        public var stderrLines: [String] { stderr.split(separator: "\n").map(String.init).filter { !$0.isEmpty } }
    }

    /// Runs the binary with `arguments`, killing it after `timeout` seconds.
    public static func run(_ arguments: [String], timeout: Double = 60, in directory: URL? = nil,
                           environment: [String: String] = [:]) throws -> Outcome {
        try runProgram(url, arguments, timeout: timeout, in: directory, environment: environment)
    }

    /// Runs any program the same way (the tests' helpers: ffmpeg, sbatch, scripts).
    public static func runProgram(_ program: URL, _ arguments: [String], timeout: Double = 60, in directory: URL? = nil,
                                  environment: [String: String] = [:]) throws -> Outcome {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let started = Date()
        try process.run()
        let collector = OutputCollector(out: out, err: err)
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline {
                timedOut = true
                process.terminate()
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        process.waitUntilExit()
        let (stdout, stderr) = collector.finish()
        return Outcome(status: process.terminationStatus, stdout: stdout, stderr: stderr,
                       seconds: Date().timeIntervalSince(started), timedOut: timedOut)
    }
}

/// Drains both pipes on background threads so a chatty child never blocks on a full pipe.
final class OutputCollector: @unchecked Sendable {
    private var outData = Data(), errData = Data()
    private let group = DispatchGroup()

    init(out: Pipe, err: Pipe) {
        group.enter()
        DispatchQueue.global().async { self.outData = out.fileHandleForReading.readDataToEndOfFile(); self.group.leave() }
        group.enter()
        DispatchQueue.global().async { self.errData = err.fileHandleForReading.readDataToEndOfFile(); self.group.leave() }
    }

    func finish() -> (String, String) {
        group.wait()
        return (String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

/// Waits until `condition` holds or `timeout` seconds pass, checking every few milliseconds; true if it held.
/// It blocks its thread on purpose: tests that run programs block the cooperative threads, and a
/// `Task.sleep` could resume long after the moment a test wanted to catch.
@discardableResult
public func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return condition()
}
