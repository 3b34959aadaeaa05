import ArgumentParser
import Foundation
import Monitoring
import Telemetry

/// Where events were: the input's GPS track (`run` and `batch`), read beside the video, never by the monitor.
struct GPSOptions: ParsableArguments {
    @Option(name: .customLong("gps-offset"), help: "Seconds added to the GPS track's clock, for a sidecar whose clock differs from the video's.")
    var gpsOffset: Double = 0

    @Flag(name: .customLong("no-gps"), help: "Do not look for GPS: events carry no location.")
    var noGPS = false

    func validate() throws {
        guard gpsOffset.isFinite else { throw ValidationError("--gps-offset must be a number of seconds") }
        if noGPS && gpsOffset != 0 { throw ValidationError("--gps-offset and --no-gps contradict each other") }
    }

    /// What a batch's done-marker records of these flags (nil with the defaults, so older markers still match).
    var setting: String? {
        if noGPS { return "off" }
        return gpsOffset == 0 ? nil : "offset \(gpsOffset)"
    }

    /// The locator for a recorded file, each GPS warning one line on standard error; nil for live sources,
    /// URLs, `--no-gps`, or a file without a usable track (a damaged track is a warning, not a failure).
    func locator(for input: String, live: Bool) -> EventLocator? {
        guard !noGPS, !live, !input.contains("://"), input != "-",
              FileManager.default.fileExists(atPath: input) else { return nil }
        let (locator, discovery) = EventLocator.discover(videoPath: input, offset: gpsOffset)
        for warning in discovery.warnings { Console.warning("gps: \(warning)") }
        if let track = locator?.track {
            Console.info("gps: \(track.fixes.count) fixes (\(track.source.rawValue)) from \(discovery.origin ?? input)")
        }
        return locator
    }
}
