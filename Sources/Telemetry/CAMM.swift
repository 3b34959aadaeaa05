import Foundation

/// Reads Google's Camera Motion Metadata (`camm` tracks): little-endian packets of a 2-byte reserved field, a
/// 2-byte type and a fixed-size payload; type 5 is a position (lat, lon, alt as doubles), type 6 a full GPS
/// reading (time, fix type, position, accuracies, velocity).
public enum CAMM {
    /// Payload bytes after the 4-byte header, for each packet type the specification defines.
    private static let payloadSizes: [UInt16: Int] = [0: 12, 1: 8, 2: 12, 3: 12, 4: 12, 5: 24, 6: 56, 7: 12]

    /// The position fixes in one `camm` sample (normally one packet), placed on the video clock; n position
    /// packets in one sample are spread evenly over its duration. Packets of other types are skipped.
    ///
    /// `creationTime` (the movie's) decides the epoch of type 6 times: the specification says GPS time (from
    /// 1980-01-06, no leap seconds) but some cameras write Unix time; a value that is more than five years before
    /// the recording when read as Unix time is read as GPS time.
    public static func fixes(in data: Data, sampleTime: Double, sampleDuration: Double,
                             creationTime: Date? = nil, name: String = "camm sample") throws -> [GPSFix] {
        try TelemetryError.naming(name) {
            var reader = ByteReader(data)
            var fixes: [GPSFix] = []
            while reader.remaining >= 4 {
                _ = try reader.u16le()
                let type = try reader.u16le()
                guard let size = payloadSizes[type] else { throw Malformed("camm packet type \(type) is not defined") }
                try reader.require(size, what: "camm type \(type) packet")
                switch type {
                case 5:
                    let lat = try reader.f64le(), lon = try reader.f64le(), alt = try reader.f64le()
                    fixes.append(GPSFix(time: 0, latitude: lat, longitude: lon, altitude: alt))
                case 6:
                    let time = try reader.f64le()
                    let fixType = try reader.u32le()
                    let lat = try reader.f64le(), lon = try reader.f64le()
                    let alt = Double(try reader.f32le())
                    _ = try reader.f32le() // horizontal accuracy (metres, not a DOP)
                    _ = try reader.f32le() // vertical accuracy
                    let east = Double(try reader.f32le()), north = Double(try reader.f32le())
                    let up = Double(try reader.f32le())
                    _ = try reader.f32le() // speed accuracy
                    let quality: GPSFixQuality = switch fixType {
                    case 0: .noFix
                    case 2: .twoD
                    case 3: .threeD
                    default: .valid
                    }
                    let ground = (east * east + north * north).squareRoot()
                    fixes.append(GPSFix(time: 0, latitude: lat, longitude: lon, altitude: alt, speed2D: ground,
                                        speed3D: (ground * ground + up * up).squareRoot(),
                                        utc: utc(gpsTime: time, creationTime: creationTime), fix: quality))
                default:
                    try reader.skip(size)
                }
            }
            let step = fixes.isEmpty ? 0 : sampleDuration / Double(fixes.count)
            for k in fixes.indices { fixes[k].time = sampleTime + Double(k) * step }
            return fixes
        }
    }

    /// Seconds from the Unix epoch to the GPS epoch (1980-01-06).
    private static let gpsEpoch = 315_964_800.0

    /// GPS time runs ahead of UTC by the leap seconds since 1980; (UTC start, GPS − UTC) from then on.
    private static let leapSeconds: [(Double, Double)] = [
        (1_483_228_800, 18), (1_435_708_800, 17), (1_341_100_800, 16), (1_230_768_000, 15), (1_136_073_600, 14),
        (915_148_800, 13),
    ]

    static func utc(gpsTime: Double, creationTime: Date?) -> Date? {
        guard gpsTime.isFinite, gpsTime > 0, gpsTime < 8_000_000_000 else { return nil }
        if let created = creationTime?.timeIntervalSince1970, created - gpsTime < 5 * 365 * 86_400 {
            return Date(timeIntervalSince1970: gpsTime)
        }
        let unix = gpsTime + gpsEpoch
        let leap = leapSeconds.first { unix >= $0.0 }?.1 ?? 0
        return Date(timeIntervalSince1970: unix - leap)
    }
}
