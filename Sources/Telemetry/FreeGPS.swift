import Foundation

/// Reads Novatek dashcam GPS: a `gps ` box in `moov` lists (offset, size) pairs of `free` boxes elsewhere in the
/// file, each holding one `freeGPS ` block with one fix (normally one a second).
///
/// Plain layouts read: the Viofo A119 / A119S binary layout (most Novatek cameras), the A119 V3 layout, and
/// blocks that hold NMEA text. Obfuscated or encrypted variants (XOR-ed ASCII, shifted ASCII, encrypted
/// coordinates) are recognised and reported as not supported rather than read as wrong positions.
public enum FreeGPS {
    /// The (file offset, size) pairs a Novatek `gps ` box lists: big-endian version, count, then the pairs.
    public static func blockTable(_ payload: Data) throws -> [(offset: UInt64, size: Int)] {
        var reader = ByteReader(payload)
        _ = try reader.u32()
        let count = Int(try reader.u32())
        // Some cameras write a count larger than the table; the table itself is what counts.
        let listed = min(count, reader.remaining / 8)
        var result: [(UInt64, Int)] = []
        for _ in 0..<listed {
            let offset = UInt64(try reader.u32())
            let size = Int(try reader.u32())
            if offset == 0 && size == 0 { continue }
            result.append((offset, size))
        }
        return result
    }

    /// Whether a `gps ` box holds a Novatek block table (binary) rather than NMEA text (BlackVue).
    static func looksLikeTable(_ payload: Data) -> Bool {
        guard payload.count >= 8 else { return false }
        // The version and count words always hold a zero byte; NMEA text never does before its end.
        return payload.prefix(8).contains { !((0x20...0x7e).contains($0) || $0 == 10 || $0 == 13) }
    }

    /// The fix in one block (the whole `free` box, header included); nil when the block says it has no fix.
    ///
    /// Throws, naming the variant, for obfuscated or encrypted layouts and for layouts not recognised.
    public static func fix(inBlock block: Data) throws -> GPSFix? {
        var reader = ByteReader(block)
        guard block.count >= 12, try reader.slice(at: 4, count: 8) == Data("freeGPS ".utf8) else {
            throw Malformed("not a freeGPS block (no 'freeGPS ' signature)")
        }
        guard block.count >= 92 else { throw Malformed("freeGPS block of \(block.count) bytes is too short") }
        func bytes(_ at: Int, _ n: Int) -> [UInt8] { (try? [UInt8](reader.slice(at: at, count: n))) ?? [] }
        func ascii(_ s: String) -> [UInt8] { Array(s.utf8) }

        // Obfuscated and encrypted variants: recognised by their fixed bytes, refused in one line.
        if bytes(18, 8) == [0xaa, 0xaa, 0xf2, 0xe1, 0xf0, 0xee, 0x54, 0x54] {
            throw Malformed("freeGPS block is XOR-obfuscated (Azdome/EEEkit style): not supported")
        }
        if bytes(60, 7) == ascii("4W`b]S<") {
            throw Malformed("freeGPS block holds shifted-ASCII NMEA (obfuscated): not supported")
        }
        if bytes(12, 4) == [0xac, 0, 0, 0], block.count >= 132 {
            throw Malformed("freeGPS block is in the encrypted EACHPAI layout: not supported")
        }
        let b = bytes(64, 16)
        if b.count == 16, (1...12).contains(b[0]), b[1...3] == [0, 0, 0], (1...31).contains(b[4]), b[5...7] == [0, 0, 0],
           b[8] == UInt8(ascii: "A"), b[9] == UInt8(ascii: "N") || b[9] == UInt8(ascii: "S"),
           b[10] == UInt8(ascii: "E") || b[10] == UInt8(ascii: "W"), b[11...15].allSatisfy({ $0 == 0 }) {
            throw Malformed("freeGPS block has encrypted coordinates (Akaso/Redtiger style): not supported")
        }

        // NMEA text inside the block (NextBase and others).
        let text = String(decoding: block.map { (0x20...0x7e).contains($0) || $0 == 10 || $0 == 13 ? $0 : 10 }, as: UTF8.self)
        if text.contains("RMC,") || text.contains("GGA,") {
            guard let record = NMEA.records(in: text).first(where: { $0.latitude != nil }) else {
                throw Malformed("freeGPS block holds NMEA text without a valid sentence")
            }
            guard record.quality != .noFix, var fix = record.fix(at: 0) else { return nil }
            fix.fix = record.quality
            return fix
        }

        // Viofo A119 V3: time fields at 16, then "\0\0\0A" and the hemispheres at 37; floats from 0x2c.
        if bytes(37, 4) == [0, 0, 0, UInt8(ascii: "A")] {
            let ns = bytes(41, 1).first, ew = bytes(42, 1).first
            return try binaryFix(&reader, timeAt: 16, status: UInt8(ascii: "A"), ns: ns, ew: ew, floatsAt: 0x2c)
        }
        // Viofo A119 / A119S (the common Novatek layout): time fields at 48, status and hemispheres at 72,
        // little-endian floats (DDDMM.MMMM, knots, degrees) from 76.
        let flags = bytes(72, 3)
        if flags.count == 3, flags[0] == UInt8(ascii: "A") || flags[0] == UInt8(ascii: "V"),
           [UInt8(ascii: "N"), UInt8(ascii: "S"), 0].contains(flags[1]),
           [UInt8(ascii: "E"), UInt8(ascii: "W"), 0].contains(flags[2]) {
            return try binaryFix(&reader, timeAt: 48, status: flags[0], ns: flags[1], ew: flags[2], floatsAt: 76)
        }
        throw Malformed("freeGPS block layout not recognised (encrypted or unsupported variant): not supported")
    }

    private static func binaryFix(_ reader: inout ByteReader, timeAt: Int, status: UInt8, ns: UInt8?, ew: UInt8?,
                                  floatsAt: Int) throws -> GPSFix? {
        guard status == UInt8(ascii: "A"), let ns, let ew,
              ns == UInt8(ascii: "N") || ns == UInt8(ascii: "S"), ew == UInt8(ascii: "E") || ew == UInt8(ascii: "W") else {
            return nil
        }
        try reader.seek(to: timeAt)
        var time: [Int] = []
        for _ in 0..<6 { time.append(Int(try reader.u32le())) }
        try reader.seek(to: floatsAt)
        let rawLat = Double(try reader.f32le()), rawLon = Double(try reader.f32le())
        let knots = Double(try reader.f32le())
        guard let lat = NMEA.coordinate(rawLat, ns == UInt8(ascii: "N") ? "N" : "S", isLatitude: true),
              let lon = NMEA.coordinate(rawLon, ew == UInt8(ascii: "E") ? "E" : "W", isLatitude: false) else {
            throw Malformed("freeGPS block coordinates \(rawLat), \(rawLon) are not DDDMM.MMMM values")
        }
        let year = time[3] < 2000 ? time[3] + 2000 : time[3]
        let utc = UTCTime.date(year: year, month: time[4], day: time[5], hour: time[0], minute: time[1],
                               second: Double(time[2]))
        return GPSFix(time: 0, latitude: lat, longitude: lon, speed2D: knots.isFinite ? knots * 1852 / 3600 : nil,
                      utc: utc, fix: .valid)
    }
}
