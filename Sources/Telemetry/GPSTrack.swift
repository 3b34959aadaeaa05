import Foundation

/// How good a GPS fix is, as the receiver reported it.
public enum GPSFixQuality: String, Sendable, Codable, Comparable {
    /// The receiver had no position; such fixes are dropped by the readers.
    case noFix
    /// A position whose dimension the source does not say (NMEA RMC/GGA, GPX without `<fix>`, DJI subtitles).
    case valid
    /// A two-dimensional fix: latitude and longitude, altitude unreliable.
    case twoD
    /// A three-dimensional fix.
    case threeD

    private var rank: Int {
        switch self {
        case .noFix: 0
        case .valid: 1
        case .twoD: 2
        case .threeD: 3
        }
    }

    public static func < (a: GPSFixQuality, b: GPSFixQuality) -> Bool { a.rank < b.rank }
}

/// Where a track's fixes came from.
public enum GPSTrackSource: String, Sendable, Codable, CaseIterable {
    /// GoPro GPMF (`gpmd` track: GPS5 or GPS9).
    case gpmf
    /// Google's Camera Motion Metadata (`camm` track, packet types 5 and 6).
    case camm
    /// NMEA 0183 sentences: a `.nmea` sidecar, a BlackVue `gps ` box, or a subtitle track.
    case nmea
    /// Novatek `freeGPS ` blocks listed by a `gps ` box.
    case freeGPS
    /// A GPX sidecar.
    case gpx
    /// DJI subtitles: an `.srt` sidecar or the same text in a subtitle track.
    case srt
}

/// One GPS measurement, placed on the track's clock.
public struct GPSFix: Sendable, Equatable, Codable {
    /// Seconds on the track's clock: the video's presentation time for embedded tracks and DJI subtitles,
    /// seconds since the first fix for GPX and NMEA sidecars (`GPSTrack.offset` moves those onto the video).
    public var time: Double
    /// Degrees, WGS84, north positive.
    public var latitude: Double
    /// Degrees, WGS84, east positive.
    public var longitude: Double
    /// Metres (above mean sea level or the ellipsoid, as the device wrote it).
    public var altitude: Double?
    /// Ground speed in metres per second.
    public var speed2D: Double?
    /// Speed including the vertical part, in metres per second (GoPro, CAMM).
    public var speed3D: Double?
    /// The receiver's UTC time of the fix, when the source has one.
    public var utc: Date?
    /// Fix quality.
    public var fix: GPSFixQuality
    /// Dilution of precision (GoPro: GPSP / 100; NMEA and GPX: HDOP), when the source has one.
    public var dop: Double?

    public init(time: Double, latitude: Double, longitude: Double, altitude: Double? = nil, speed2D: Double? = nil,
                speed3D: Double? = nil, utc: Date? = nil, fix: GPSFixQuality = .valid, dop: Double? = nil) {
        self.time = time
        self.latitude = latitude
        self.longitude = longitude
        self.altitude = altitude
        self.speed2D = speed2D
        self.speed3D = speed3D
        self.utc = utc
        self.fix = fix
        self.dop = dop
    }

    /// Whether the coordinates can be a place on Earth (corrupt payloads produce NaN or 1e30 degrees).
    var isPlausible: Bool {
        latitude.isFinite && longitude.isFinite && abs(latitude) <= 90 && abs(longitude) <= 180
            && time.isFinite && !(latitude == 0 && longitude == 0)
    }
}

/// Where the camera was at one moment of the video, looked up in a `GPSTrack`.
public struct GPSPosition: Sendable, Equatable {
    /// The video time asked for, in seconds.
    public var time: Double
    public var latitude: Double
    public var longitude: Double
    public var altitude: Double?
    /// Ground speed in metres per second.
    public var speed2D: Double?
    public var utc: Date?
    /// The worse of the two neighbouring fixes' qualities when interpolated.
    public var fix: GPSFixQuality
    /// The larger (worse) of the two neighbouring fixes' DOPs when interpolated.
    public var dop: Double?
    /// False only when `time` falls exactly on a fix.
    public var interpolated: Bool
}

/// GPS fixes sorted by time, looked up by video time without ever extrapolating.
public struct GPSTrack: Sendable, Equatable {
    /// The fixes, sorted by `time` (stable for equal times).
    public let fixes: [GPSFix]
    /// Where the fixes came from.
    public let source: GPSTrackSource
    /// Seconds added to every fix's time to put it on the video's clock, for sidecars whose clock differs.
    public var offset: Double

    /// Sorts `fixes` by time (stably); fixes whose time or coordinates are not finite numbers are dropped.
    public init(fixes: [GPSFix], source: GPSTrackSource, offset: Double = 0) {
        // Sorting here lets every reader append in file order and keeps lookups a binary search; a NaN time
        // would break the ordering the search relies on.
        self.fixes = fixes.filter { $0.time.isFinite && $0.latitude.isFinite && $0.longitude.isFinite }.enumerated()
            .sorted { $0.element.time != $1.element.time ? $0.element.time < $1.element.time : $0.offset < $1.offset }
            .map(\.element)
        self.source = source
        self.offset = offset
    }

    /// The video times of the first and last fix, or nil for an empty track.
    public var timeSpan: ClosedRange<Double>? {
        guard let first = fixes.first, let last = fixes.last else { return nil }
        return (first.time + offset)...(last.time + offset)
    }

    /// Seconds between the first and last fix.
    public var duration: Double {
        guard let span = timeSpan else { return 0 }
        return span.upperBound - span.lowerBound
    }

    /// Fixes per second over the track's span (0 for fewer than two fixes at distinct times).
    public var rate: Double {
        guard fixes.count >= 2, duration > 0 else { return 0 }
        return Double(fixes.count - 1) / duration
    }

    /// The position at `seconds` of video time: the fix itself when one falls exactly there, else a linear
    /// interpolation between the fixes on either side; nil before the first fix or after the last.
    public func position(at seconds: Double) -> GPSPosition? {
        guard seconds.isFinite, let first = fixes.first, let last = fixes.last else { return nil }
        let t = seconds - offset
        guard t >= first.time, t <= last.time else { return nil }
        // The first fix later than t; the one before it is at or before t.
        var low = 0, high = fixes.count
        while low < high {
            let mid = (low + high) / 2
            if fixes[mid].time <= t { low = mid + 1 } else { high = mid }
        }
        let before = fixes[low - 1]
        if before.time == t || low == fixes.count {
            return GPSPosition(time: seconds, latitude: before.latitude, longitude: before.longitude,
                               altitude: before.altitude, speed2D: before.speed2D, utc: before.utc, fix: before.fix,
                               dop: before.dop, interpolated: false)
        }
        let after = fixes[low]
        let w = (t - before.time) / (after.time - before.time)
        func mix(_ a: Double?, _ b: Double?) -> Double? {
            guard let a, let b else { return nil }
            return a + (b - a) * w
        }
        // Across the antimeridian the short way round is through ±180, not through 0.
        var lonAfter = after.longitude
        if lonAfter - before.longitude > 180 { lonAfter -= 360 }
        if lonAfter - before.longitude < -180 { lonAfter += 360 }
        var longitude = before.longitude + (lonAfter - before.longitude) * w
        if longitude > 180 { longitude -= 360 }
        if longitude < -180 { longitude += 360 }
        var utc: Date?
        if let a = before.utc, let b = after.utc {
            utc = a.addingTimeInterval(b.timeIntervalSince(a) * w)
        }
        let dop: Double? = switch (before.dop, after.dop) {
        case let (a?, b?): max(a, b)
        case let (a?, nil): a
        case let (nil, b?): b
        case (nil, nil): nil
        }
        return GPSPosition(time: seconds, latitude: before.latitude + (after.latitude - before.latitude) * w,
                           longitude: longitude, altitude: mix(before.altitude, after.altitude),
                           speed2D: mix(before.speed2D, after.speed2D), utc: utc, fix: min(before.fix, after.fix),
                           dop: dop, interpolated: true)
    }
}
