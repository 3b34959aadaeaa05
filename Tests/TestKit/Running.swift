import Foundation

/// The binary started in the background, for tests that act on a run while it goes (signals, kill -9,
/// removing its folder, filling its disk).
public final class RunningBinary: @unchecked Sendable {
    public let process: Process
    private let collector: OutputCollector
    private let started = Date()

    /// `environment` is added to this process's own.
    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        process = Process()
        process.executableURL = RoadwatchBinary.url
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        collector = OutputCollector(out: out, err: err)
    }

    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the exit; after `timeout` seconds the process is killed (SIGKILL) and `timedOut` set.
    public func wait(timeout: Double) -> RoadwatchBinary.Outcome {
        let ended = waitUntil(timeout: timeout) { !process.isRunning }
        if !ended { signal(SIGKILL) }
        process.waitUntilExit()
        let (stdout, stderr) = collector.finish()
        return RoadwatchBinary.Outcome(status: process.terminationStatus, stdout: stdout, stderr: stderr,
                                       seconds: Date().timeIntervalSince(started), timedOut: !ended)
    }

    deinit { if process.isRunning { signal(SIGKILL) } }
}

/// Checks of written files as a player would make them.
public enum MediaCheck {
    /// Whether the ffmpeg program decodes every frame of `path` without a single error, and how many frames.
    public static func decode(_ path: String) throws -> (clean: Bool, frames: Int, errors: String) {
        guard let ffmpeg = RoadwatchBinary.which("ffmpeg") else { throw CheckError("the ffmpeg program is not on PATH") }
        let run = try RoadwatchBinary.runProgram(ffmpeg, ["-v", "error", "-i", path, "-map", "0:v", "-f", "framemd5", "-"],
                                                 timeout: 300)
        let frames = run.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.count
        return (run.status == 0 && run.stderr.isEmpty, frames, run.stderr)
    }

    /// The container's duration in seconds, as ffprobe reads it.
    public static func duration(_ path: String) throws -> Double {
        guard let ffprobe = RoadwatchBinary.which("ffprobe") else { throw CheckError("the ffprobe program is not on PATH") }
        let run = try RoadwatchBinary.runProgram(ffprobe, ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
                                                 timeout: 60)
        guard run.status == 0, let seconds = Double(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw CheckError("ffprobe could not read the duration of '\(path)': \(run.stderr)")
        }
        return seconds
    }

    /// The lines of a JSON-lines file, each one parsed; nil for a line that does not parse.
    public static func jsonLines(_ path: String) throws -> [Any?] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            .map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }
    }

    struct CheckError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

/// A small tmpfs mounted for one test (root only): a disk that fills up. Unmounted when dropped.
public final class SmallDisk: @unchecked Sendable {
    public let path: String

    public static var available: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount") }

    public init(megabytes: Int) throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("roadwatch-disk-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        path = scratch.path
        let mount = try RoadwatchBinary.runProgram(URL(fileURLWithPath: "/bin/mount"),
                                                   ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path])
        guard mount.status == 0 else { throw MediaCheck.CheckError("cannot mount a tmpfs on \(path): \(mount.stderr)") }
    }

    public func file(_ name: String) -> String { path + "/" + name }

    deinit {
        _ = try? RoadwatchBinary.runProgram(URL(fileURLWithPath: "/bin/umount"), ["-l", path])
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Runs a blocking wait (a sleep, a child process, `waitUntil`) on a thread of its own, so a test that
/// waits for minutes does not hold one of the few threads Swift's concurrency pool has — async tests running
/// meanwhile (some with time limits) would otherwise starve.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 4 << 20
        thread.start()
    }
}
