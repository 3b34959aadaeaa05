import Foundation

/// Runs the built `roadwatch` executable as a user would, and captures what it did.
public enum RoadwatchBinary {
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
        let process = Process()
        process.executableURL = url
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
private final class OutputCollector: @unchecked Sendable {
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
