import Foundation
import Telemetry

/// Where an event was: a position from the video's GPS track (or a camera's fixed place), as an event record carries it.
public struct EventLocation: Codable, Sendable, Equatable {
    /// Degrees, WGS84.
    public var lat: Double
    public var lon: Double
    /// Metres, as the device wrote it.
    public var alt: Double?
    /// Ground speed in metres per second.
    public var speed: Double?
    /// Course over ground in degrees clockwise from north, from the track on either side of the moment.
    public var heading: Double?
    /// The receiver's UTC time (ISO 8601), when the source has one.
    public var utc: String?
    /// Fix quality: `noFix`, `valid`, `twoD`, `threeD` (a fixed camera position is `valid`).
    public var fix: String
    /// `gpmf`, `camm`, `nmea`, `freeGPS`, `gpx`, `srt`, or `fixed` for a camera's configured position.
    public var source: String
    /// True when the position lies between two fixes rather than on one.
    public var interpolated: Bool
    /// The moment placed, on the event clock (the event's best view: its snapshot).
    public var time: Double

    public init(lat: Double, lon: Double, alt: Double? = nil, speed: Double? = nil, heading: Double? = nil,
                utc: String? = nil, fix: String, source: String, interpolated: Bool, time: Double) {
        self.lat = lat
        self.lon = lon
        self.alt = alt
        self.speed = speed
        self.heading = heading
        self.utc = utc
        self.fix = fix
        self.source = source
        self.interpolated = interpolated
        self.time = time
    }
}

/// Places events: looks an event time up in a GPS track, or gives a camera's fixed position for every time.
/// The job holds one beside the event sink, so the monitor itself never sees telemetry.
public struct EventLocator: Sendable {
    private enum Kind: Sendable {
        case track(GPSTrack)
        case fixed(latitude: Double, longitude: Double)
    }

    private let kind: Kind

    /// Positions from `track` (its `offset` already set for sidecars whose clock differs).
    public init(track: GPSTrack) { kind = .track(track) }

    /// The same place for every event (a fixed camera).
    public init(latitude: Double, longitude: Double) { kind = .fixed(latitude: latitude, longitude: longitude) }

    /// The track, when positions come from one.
    public var track: GPSTrack? {
        if case let .track(track) = kind { return track }
        return nil
    }

    /// The location at `seconds` of video time; nil outside the track's span (a track is never extrapolated).
    public func location(at seconds: Double) -> EventLocation? {
        switch kind {
        case let .fixed(latitude, longitude):
            return EventLocation(lat: latitude, lon: longitude, fix: GPSFixQuality.valid.rawValue, source: "fixed",
                                 interpolated: false, time: seconds)
        case let .track(track):
            guard let p = track.position(at: seconds) else { return nil }
            return EventLocation(lat: p.latitude, lon: p.longitude, alt: p.altitude, speed: p.speed2D,
                                 heading: Self.heading(track, at: seconds), utc: p.utc.map(Self.iso8601),
                                 fix: p.fix.rawValue, source: track.source.rawValue, interpolated: p.interpolated,
                                 time: seconds)
        }
    }

    /// Finds `videoPath`'s GPS (embedded or a sidecar) with `offset` seconds added to its clock. Never throws:
    /// a missing or damaged track gives no locator, and the warnings say why.
    public static func discover(videoPath: String, offset: Double = 0) -> (locator: EventLocator?, discovery: GPSDiscovery) {
        var discovery = GPSSource.discover(videoPath: videoPath)
        // A video in another container (Matroska, MPEG-TS, a still image) simply has no embedded track to read:
        // not worth a warning on every run. A damaged MP4 still warns.
        let notMP4 = "\(videoPath): not an MP4/MOV file"
        discovery.warnings.removeAll { $0.hasPrefix(notMP4) }
        discovery.track?.offset += offset
        return (discovery.track.map(EventLocator.init(track:)), discovery)
    }

    /// The bearing from the position half a second before to half a second after (clamped to the track):
    /// most sources carry no heading, and a camera standing still has none, so under a metre of movement gives nil.
    static func heading(_ track: GPSTrack, at seconds: Double) -> Double? {
        guard let span = track.timeSpan else { return nil }
        let a = max(span.lowerBound, seconds - 0.5), b = min(span.upperBound, seconds + 0.5)
        guard b > a, let p = track.position(at: a), let q = track.position(at: b) else { return nil }
        let rad = Double.pi / 180
        let lat1 = p.latitude * rad, lat2 = q.latitude * rad, dLon = (q.longitude - p.longitude) * rad
        let north = cos(lat1) * sin(lat2) - sin(lat1) * cos(lat2) * cos(dLon)
        let east = sin(dLon) * cos(lat2)
        // Equirectangular distance: enough to tell standing still from moving.
        let metres = 6_371_000 * hypot(lat2 - lat1, dLon * cos((lat1 + lat2) / 2))
        guard metres >= 1 else { return nil }
        let degrees = atan2(east, north) / rad
        return ((degrees < 0 ? degrees + 360 : degrees) * 10).rounded() / 10
    }

    static func iso8601(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
