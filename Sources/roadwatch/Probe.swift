import ArgumentParser
import Foundation
import Telemetry
import VideoIO

/// `roadwatch probe`: what a source is.
struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what a video source is: container, codec, size, frame rate, frames, duration.",
        discussion: """
            INPUT is a video file, an image (read as a one-frame video), or a URL FFmpeg can read. \
            When the container does not say how many frames it holds, they are counted by decoding.
            """
    )

    @Argument(help: "Video file, image or URL.")
    var input: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Seconds to wait for a network source to open or send data.")
    var timeout: Double = 10

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        let source = try await VideoSource.open(input, options: InputOptions(
            openTimeout: timeout, readTimeout: timeout,
            onWarning: { Console.warning($0) }))
        var info = source.info
        var counted = false
        let isLocalFile = !input.contains("://") && input != "-" && !input.hasPrefix("/dev/")
        if info.frameCount == nil && isLocalFile {
            info.frameCount = try await source.countRemainingFrames()
            counted = true
        }
        await source.close()
        var report = ProbeReport(info: info, framesCounted: counted)
        if isLocalFile { report.gps = GPSProbe(GPSSource.discover(videoPath: input)) }
        if json {
            print(report.jsonString())
        } else {
            print(report.text())
        }
    }
}

/// The facts `probe` prints, as text or JSON.
struct ProbeReport: Encodable {
    var input: String
    var container: String
    var codec: String
    var width: Int
    var height: Int
    var fps: Double?
    var frames: Int?
    var frames_counted: Bool
    var duration: Double?
    var pixel_format: String
    var bit_rate: Int?
    var audio: Bool
    /// The GPS found in the file or beside it (local files only).
    var gps: GPSProbe?

    init(info: MediaInfo, framesCounted: Bool) {
        input = info.url
        container = info.container
        codec = info.codec
        width = info.width
        height = info.height
        fps = info.fps.map { ($0 * 1000).rounded() / 1000 }
        frames = info.frameCount
        frames_counted = framesCounted
        duration = info.duration
        pixel_format = info.pixelFormat
        bit_rate = info.bitRate
        audio = info.hasAudio
    }

    func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    func text() -> String {
        func or(_ value: (some CustomStringConvertible)?) -> String { value.map(\.description) ?? "unknown" }
        return """
            input      \(input)
            container  \(container)
            codec      \(codec) (\(pixel_format))
            size       \(width)x\(height)
            fps        \(or(fps))
            frames     \(or(frames))\(frames_counted ? " (counted by decoding)" : "")
            duration   \(duration.map { String(format: "%.3f s", $0) } ?? "unknown")
            audio      \(audio ? "yes" : "no")
            """ + (gps.map { "\n" + $0.text() } ?? "")
    }
}

/// What `probe` says of a file's GPS: the source, where it was read, how many fixes, their rate and span.
struct GPSProbe: Encodable {
    var found: Bool
    var source: String?
    var origin: String?
    var fixes: Int
    /// Fixes per second.
    var rate: Double?
    /// Video seconds of the first and last fix.
    var start: Double?
    var end: Double?
    var warnings: [String]

    init(_ discovery: GPSDiscovery) {
        let track = discovery.track
        found = track != nil
        source = track?.source.rawValue
        origin = discovery.origin
        fixes = track?.fixes.count ?? 0
        rate = track.map { ($0.rate * 1000).rounded() / 1000 }
        start = track?.timeSpan.map { ($0.lowerBound * 1000).rounded() / 1000 }
        end = track?.timeSpan.map { ($0.upperBound * 1000).rounded() / 1000 }
        warnings = discovery.warnings
    }

    func text() -> String {
        var lines: [String]
        if let source, let rate, let start, let end {
            lines = ["gps        \(source), \(fixes) fixes at " + String(format: "%.2f Hz, %.3f-%.3f s", rate, start, end)]
            if let origin { lines.append("gps file   \(origin)") }
        } else {
            lines = ["gps        none"]
        }
        lines += warnings.map { "gps warning \($0)" }
        return lines.joined(separator: "\n")
    }
}
