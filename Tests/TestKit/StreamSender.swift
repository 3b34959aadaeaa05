import Foundation

/// Streams a clip as MPEG-TS to loopback with the `ffmpeg` program, at real-time pace or faster, the way a
/// camera or an encoder box would: TCP (the sender listens, the reader connects) or UDP (the sender sends
/// to a port the reader binds). Only 127.0.0.1 is ever used.
public final class StreamSender: @unchecked Sendable {
    public enum Transport: Sendable { case tcp, udp }

    public let transport: Transport
    public let port: UInt16
    /// Pace: 1 = real time, 4 = four times faster.
    public let rate: Double
    private let clip: String
    private var process: Process?

    /// The URL a reader opens.
    public var url: String {
        switch transport {
        case .tcp: "tcp://127.0.0.1:\(port)"
        case .udp: "udp://127.0.0.1:\(port)"
        }
    }

    public init(clip: String, transport: Transport, rate: Double) throws {
        self.clip = clip
        self.transport = transport
        self.rate = rate
        port = try closedLoopbackPort()
    }

    /// A 320x180 H.264 MPEG-TS copy of a shared clip with a key frame every second, made once per test
    /// process, so the sender only copies packets and leaves the CPU to the reader.
    public static func smallClip(from shared: String, in scratch: ScratchDirectory) throws -> String {
        let path = scratch.path("stream-source.ts")
        let ffmpeg = try Self.ffmpeg()
        let made = try RoadwatchBinary.runProgram(ffmpeg, [
            "-v", "error", "-y", "-i", Shared.path(shared), "-vf", "scale=320:180", "-c:v", "libx264", "-preset", "ultrafast",
            "-g", "25", "-bf", "0", "-an", "-f", "mpegts", path,
        ], timeout: 120)
        guard made.status == 0 else { throw StreamSenderError("ffmpeg could not make the stream clip: \(made.stderr)") }
        return path
    }

    static func ffmpeg() throws -> URL {
        guard let url = RoadwatchBinary.which("ffmpeg") else { throw StreamSenderError("the ffmpeg program is not installed") }
        return url
    }

    /// Starts (or restarts) sending, looping the clip without end.
    public func start() throws {
        stop()
        let target = transport == .tcp ? "tcp://127.0.0.1:\(port)?listen=1" : "udp://127.0.0.1:\(port)?pkt_size=1316"
        let process = Process()
        process.executableURL = try Self.ffmpeg()
        process.arguments = ["-v", "quiet", "-readrate", String(rate), "-stream_loop", "-1", "-i", clip,
                             "-c", "copy", "-f", "mpegts", target]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        if transport == .tcp {
            // Wait until it listens, so a reader started next finds it.
            _ = waitUntil(timeout: 5) { Self.listening(on: self.port) }
        }
    }

    /// Kills the sender at once (SIGKILL), as a camera losing power would.
    public func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    deinit { stop() }

    /// Whether something accepts TCP connections on 127.0.0.1:port (checked through /proc, without connecting,
    /// since a connection would be taken as the reader).
    static func listening(on port: UInt16) -> Bool {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return true }
        let local = String(format: "0100007F:%04X", port)
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1] == local && fields[3] == "0A"  // 0A: LISTEN
        }
    }
}

public struct StreamSenderError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
