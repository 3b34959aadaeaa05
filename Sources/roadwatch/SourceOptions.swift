import ArgumentParser
import Foundation
import Pipeline
import VideoIO

/// How `run` opens and reads its input: device options, timeouts, the live policy, reconnects, limits.
struct SourceOptions: ParsableArguments {
    @Option(help: "Seconds a network source or device may take to open or to deliver data.")
    var timeout: Double = 10

    @Option(help: "Camera capture size WxH (a device option, e.g. 1280x720).")
    var videoSize: String?

    @Option(help: "Camera frame rate (a device option, e.g. 30).")
    var framerate: String?

    @Option(help: "Camera pixel format (a device option: mjpeg, yuyv422, h264, ...).")
    var inputFormat: String?

    @Option(help: "RTSP transport: tcp or udp.")
    var rtspTransport: String?

    @Flag(inversion: .prefixedNo, help: "Live policy: keep only the newest frame and drop what the pipeline cannot keep up with (default: on for cameras and network streams, off for files).")
    var live: Bool?

    @Option(help: "Reconnect attempts in a row before giving up when the source ends or fails (default: without end for live sources, 0 for files). Given explicitly, a source that cannot be opened at all is retried too.")
    var reconnectMax: Int?

    @Option(help: "Write the output as consecutive files of this many seconds (name-000.mp4, name-001.mp4, ...).")
    var segmentTime: Double?

    @Option(help: "Stop cleanly after this many seconds of video.")
    var duration: Double?

    @Option(help: "Stop cleanly after this many frames.")
    var maxFrames: Int?

    @Option(help: "Write totals at exit: frames in/processed/dropped, reconnects, latency p50/p99 (JSON).")
    var summaryJson: String?

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if let videoSize, FrameSize(parsing: videoSize) == nil { throw ValidationError("--video-size must be WxH, got '\(videoSize)'") }
        if let rtspTransport, !["tcp", "udp"].contains(rtspTransport) {
            throw ValidationError("--rtsp-transport must be tcp or udp, got '\(rtspTransport)'")
        }
        if let reconnectMax, reconnectMax < 0 { throw ValidationError("--reconnect-max must not be negative") }
        if let segmentTime, segmentTime <= 0 { throw ValidationError("--segment-time must be positive") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if let maxFrames, maxFrames < 1 { throw ValidationError("--max-frames must be at least 1") }
    }

    /// Cameras and network streams are live; files, pipes and images are not.
    static func isLiveSource(_ input: String) -> Bool {
        if input.hasPrefix("/dev/video") { return true }
        guard let scheme = input.range(of: "://").map({ input[..<$0.lowerBound].lowercased() }) else { return false }
        return ["v4l2", "rtsp", "rtsps", "rtmp", "rtmps", "tcp", "udp", "rtp", "srt", "http", "https"].contains(scheme)
    }

    func isLive(_ input: String) -> Bool { live ?? Self.isLiveSource(input) }

    func inputOptions(for input: String) -> InputOptions {
        var device: [String: String] = [:]
        if let videoSize { device["video_size"] = videoSize }
        if let framerate { device["framerate"] = framerate }
        if let inputFormat { device["input_format"] = inputFormat }
        if let rtspTransport { device["rtsp_transport"] = rtspTransport }
        // Frame threading holds several frames back inside the decoder: throughput for files, latency live.
        return InputOptions(formatOptions: device, openTimeout: timeout, readTimeout: timeout, decoderThreads: 1,
                            frameThreading: !isLive(input), onWarning: { Console.warning($0) })
    }

    func policy(for input: String) -> FrameFeed.Policy {
        let live = isLive(input)
        var policy = FrameFeed.Policy(reconnectMax: reconnectMax ?? (Self.isLiveSource(input) ? nil : 0))
        policy.retryFirstOpen = reconnectMax != nil && reconnectMax! > 0
        policy.wallClockTimestamps = live
        policy.maxFrames = maxFrames
        policy.duration = duration
        return policy
    }

    /// Says each reconnect attempt on stderr.
    static func report(_ event: FrameFeed.Event) {
        switch event {
        case let .lost(reason, attempt, delay):
            Console.warning("source lost (\(reason)); reconnect attempt \(attempt) in \(String(format: "%.1f", delay)) s")
        case let .reconnected(gap):
            Console.info("source back after \(String(format: "%.1f", gap)) s")
        case let .gaveUp(reason):
            Console.warning("giving up reconnecting: \(reason)")
        }
    }
}
