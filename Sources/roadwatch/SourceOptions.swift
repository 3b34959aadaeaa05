import ArgumentParser
import Foundation
import Monitoring
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

    func isLive(_ input: String) -> Bool { live ?? MonitorSource.isLiveURL(input) }

    /// The flags mapped onto the source's options and policy.
    func source(for input: String) -> MonitorSource {
        var source = MonitorSource.defaults(for: input)
        source.live = isLive(input)
        var device: [String: String] = [:]
        if let videoSize { device["video_size"] = videoSize }
        if let framerate { device["framerate"] = framerate }
        if let inputFormat { device["input_format"] = inputFormat }
        if let rtspTransport { device["rtsp_transport"] = rtspTransport }
        source.options.formatOptions = device
        source.options.openTimeout = timeout
        source.options.readTimeout = timeout
        source.options.frameThreading = !source.live
        source.options.onWarning = { Console.warning($0) }
        if let reconnectMax { source.policy.reconnectMax = reconnectMax }
        source.policy.retryFirstOpen = reconnectMax != nil && reconnectMax! > 0
        source.policy.wallClockTimestamps = source.live
        source.policy.maxFrames = maxFrames
        source.policy.duration = duration
        return source
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
