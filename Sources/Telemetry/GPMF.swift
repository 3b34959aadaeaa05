import Foundation

/// One GoPro GPMF key-length-value item: a four-character key, a type, and either values or nested items.
public struct GPMFItem: Sendable, Equatable {
    /// Four-character key, e.g. `DEVC`, `STRM`, `GPS5`, `SCAL`.
    public let key: String
    /// The type character's byte: 0 for nested items, else `l`, `s`, `S`, `f`, `c`, `U`, `?`, ...
    public let type: UInt8
    /// Bytes in one structure (one sample of the stream).
    public let structSize: Int
    /// Number of structures.
    public let repeatCount: Int
    /// `structSize * repeatCount` bytes of values (padding removed); empty for nested items.
    public let payload: Data
    /// The items inside a nested (type 0) item.
    public let children: [GPMFItem]

    /// The type as a character ("0" style nesting shows as NUL).
    public var typeCharacter: Character { Character(UnicodeScalar(type)) }
}

/// Reads GoPro's GPMF telemetry (KLV: key, type, structure size, repeat; big-endian; padded to 32 bits) and the
/// GPS streams in it: `GPS5` with `SCAL`, `GPSU`, `GPSF`, `GPSP`, and the newer `GPS9`.
public enum GPMF {
    /// The items of a GPMF payload (one `gpmd` sample), nested items parsed.
    public static func parse(_ data: Data, name: String = "GPMF payload") throws -> [GPMFItem] {
        try TelemetryError.naming(name) {
            var reader = ByteReader(data)
            return try items(&reader, end: data.count, depth: 0)
        }
    }

    /// The GPS fixes in one `gpmd` sample, placed on the video clock: a sample presented at `sampleTime` for
    /// `sampleDuration` seconds holding n fixes puts fix k at `sampleTime + k * sampleDuration / n`.
    ///
    /// Fixes without a lock (`GPSF` 0) are returned with quality `.noFix`; the caller decides to drop them.
    /// GPS5 fixes take `GPSU` as the UTC of the payload's first fix and the same spacing after it; GPS9 fixes
    /// carry their own UTC.
    public static func fixes(in data: Data, sampleTime: Double, sampleDuration: Double,
                             name: String = "GPMF payload") throws -> [GPSFix] {
        let top = try parse(data, name: name)
        return try TelemetryError.naming(name) {
            var result: [GPSFix] = []
            try collectStreams(top, depth: 0) { stream in
                result += try gpsFixes(in: stream, sampleTime: sampleTime, sampleDuration: sampleDuration)
            }
            return result
        }
    }

    // MARK: KLV structure

    private static let maxDepth = 8

    private static func items(_ reader: inout ByteReader, end: Int, depth: Int) throws -> [GPMFItem] {
        guard depth <= maxDepth else { throw Malformed("GPMF nested more than \(maxDepth) levels deep") }
        var result: [GPMFItem] = []
        while end - reader.position >= 8 {
            let at = reader.position
            let keyBytes = try reader.bytes(4, what: "GPMF key")
            let type = try reader.u8()
            let structSize = Int(try reader.u8())
            let repeatCount = Int(try reader.u16())
            // GoPro pads the end of a payload with zeros; an all-zero header is filler, not an item.
            if keyBytes.allSatisfy({ $0 == 0 }) {
                if type == 0, structSize == 0, repeatCount == 0 { continue }
                throw Malformed("GPMF item at offset \(at) has an empty key")
            }
            let key = ByteReader.fourCCString(keyBytes)
            guard keyBytes.allSatisfy({ (0x20...0x7e).contains($0) }) else {
                throw Malformed("not GPMF: item at offset \(at) has key '\(key)'")
            }
            let length = structSize * repeatCount
            let padded = (length + 3) & ~3
            guard length <= end - reader.position else {
                throw Malformed("GPMF '\(key)' at offset \(at) claims \(length) bytes, only \(end - reader.position) left")
            }
            var children: [GPMFItem] = []
            var payload = Data()
            if type == 0 {
                var inner = ByteReader(try reader.slice(at: reader.position, count: length))
                children = try items(&inner, end: length, depth: depth + 1)
            } else {
                payload = try reader.slice(at: reader.position, count: length)
            }
            // The last item's padding may be cut off by the payload's end; the values themselves are whole.
            try reader.skip(min(padded, end - reader.position))
            result.append(GPMFItem(key: key, type: type, structSize: structSize, repeatCount: repeatCount,
                                   payload: payload, children: children))
        }
        return result
    }

    /// Calls `body` with the items of every `STRM`, found at any depth (normally `DEVC` → `STRM`).
    private static func collectStreams(_ items: [GPMFItem], depth: Int,
                                       _ body: ([GPMFItem]) throws -> Void) throws {
        for item in items where item.type == 0 {
            if item.key == "STRM" {
                try body(item.children)
            } else if depth < maxDepth {
                try collectStreams(item.children, depth: depth + 1, body)
            }
        }
    }

    // MARK: Values

    /// Bytes per value of a GPMF type character; nil for types that are not numbers.
    private static func width(of type: UInt8) -> Int? {
        switch Character(UnicodeScalar(type)) {
        case "b", "B", "c": 1
        case "s", "S": 2
        case "l", "L", "f", "q", "F": 4
        case "d", "j", "J", "Q": 8
        default: nil
        }
    }

    private static func number(_ r: inout ByteReader, type: UInt8) throws -> Double {
        switch Character(UnicodeScalar(type)) {
        case "b": Double(try r.i8())
        case "B", "c": Double(try r.u8())
        case "s": Double(try r.i16())
        case "S": Double(try r.u16())
        case "l": Double(try r.i32())
        case "L", "F": Double(try r.u32())
        case "f": Double(try r.f32())
        case "d": try r.f64()
        case "j": Double(try r.i64())
        case "J": Double(try r.u64())
        case "q": Double(try r.i32()) / 65_536
        case "Q": Double(try r.i64()) / 4_294_967_296
        default: throw Malformed("GPMF type '\(Character(UnicodeScalar(type)))' is not a number")
        }
    }

    /// Expands a `TYPE` string ("lllllllSS", "f[3]L") into one type byte per value.
    private static func expand(typeString: String) throws -> [UInt8] {
        var result: [UInt8] = []
        var bytes = Array(typeString.utf8)[...]
        while let c = bytes.popFirst() {
            if c == 0 { break }
            if bytes.first == UInt8(ascii: "[") {
                bytes.removeFirst()
                var n = 0
                while let d = bytes.first, (48...57).contains(d) {
                    n = n * 10 + Int(d - 48)
                    bytes.removeFirst()
                    guard n <= 4096 else { throw Malformed("GPMF TYPE '\(typeString)' has an array too long") }
                }
                guard bytes.popFirst() == UInt8(ascii: "]") else { throw Malformed("GPMF TYPE '\(typeString)' is malformed") }
                result += Array(repeating: c, count: n)
            } else {
                result.append(c)
            }
            // A structure is at most 255 bytes, so a longer type list is corrupt (and must not grow unbounded).
            guard result.count <= 255 else { throw Malformed("GPMF TYPE '\(typeString.prefix(40))' describes more than 255 values") }
        }
        return result
    }

    /// The item's values as numbers, `perStruct` values per structure; `complexType` is the stream's `TYPE`.
    private static func numbers(_ item: GPMFItem, complexType: String?) throws -> (values: [Double], perStruct: Int) {
        let types: [UInt8]
        if item.typeCharacter == "?" {
            guard let complexType else { throw Malformed("GPMF '\(item.key)' has a complex type but the stream has no TYPE") }
            types = try expand(typeString: complexType)
        } else {
            guard let w = width(of: item.type) else {
                throw Malformed("GPMF '\(item.key)' has type '\(item.typeCharacter)', not a number")
            }
            guard item.structSize % w == 0 else {
                throw Malformed("GPMF '\(item.key)' structure of \(item.structSize) bytes is not a whole number of '\(item.typeCharacter)' values")
            }
            types = Array(repeating: item.type, count: item.structSize / w)
        }
        var structBytes = 0
        for t in types {
            guard let w = width(of: t) else { throw Malformed("GPMF TYPE of '\(item.key)' holds '\(Character(UnicodeScalar(t)))', not a number") }
            structBytes += w
        }
        guard structBytes == item.structSize, !types.isEmpty else {
            throw Malformed("GPMF '\(item.key)' structure is \(item.structSize) bytes but its type describes \(structBytes)")
        }
        var reader = ByteReader(item.payload)
        var values: [Double] = []
        values.reserveCapacity(types.count * item.repeatCount)
        for _ in 0..<item.repeatCount {
            for t in types { values.append(try number(&reader, type: t)) }
        }
        return (values, types.count)
    }

    /// The text of a `c` or `U` item, up to the first NUL.
    private static func text(_ item: GPMFItem) -> String {
        String(decoding: item.payload.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// GPSU: "yymmddhhmmss.sss", UTC.
    static func parseGPSU(_ s: String) -> Date? {
        let c = Array(s.utf8)
        guard c.count >= 12 else { return nil }
        func int(_ r: Range<Int>) -> Int? { Int(String(decoding: c[r], as: UTF8.self)) }
        guard let yy = int(0..<2), let mo = int(2..<4), let dd = int(4..<6), let hh = int(6..<8), let mi = int(8..<10),
              let ss = Double(String(decoding: c[10...], as: UTF8.self).trimmingCharacters(in: .whitespaces)) else { return nil }
        return UTCTime.date(year: 2000 + yy, month: mo, day: dd, hour: hh, minute: mi, second: ss)
    }

    private static func quality(_ gpsf: Double?) -> GPSFixQuality {
        switch gpsf {
        case nil: .valid
        case 0?: .noFix
        case 2?: .twoD
        case 3?: .threeD
        default: .valid
        }
    }

    /// The fixes of one stream's GPS5 / GPS9 items; other streams give none.
    private static func gpsFixes(in stream: [GPMFItem], sampleTime: Double, sampleDuration: Double) throws -> [GPSFix] {
        var scale: [Double] = []
        var complexType: String?
        var gpsu: Date?, gpsf: Double?, gpsp: Double?
        var result: [GPSFix] = []
        // Sticky values: the latest one before a data item applies to it.
        for item in stream {
            switch item.key {
            case "SCAL":
                scale = try numbers(item, complexType: complexType).values
                guard !scale.contains(0) else { throw Malformed("GPMF SCAL contains a zero") }
            case "TYPE":
                complexType = text(item)
            case "GPSU":
                gpsu = parseGPSU(text(item))
            case "GPSF":
                gpsf = try numbers(item, complexType: nil).values.first
            case "GPSP":
                gpsp = try numbers(item, complexType: nil).values.first
            case "GPS5", "GPS9":
                let (values, perStruct) = try numbers(item, complexType: complexType)
                let needed = item.key == "GPS5" ? 5 : 9
                guard perStruct >= needed else {
                    throw Malformed("GPMF \(item.key) has \(perStruct) values per fix, expected \(needed)")
                }
                func scaled(_ v: Double, _ i: Int) -> Double {
                    guard !scale.isEmpty else { return v }
                    return v / (scale.count == 1 ? scale[0] : (i < scale.count ? scale[i] : 1))
                }
                let n = item.repeatCount
                let step = n > 0 ? sampleDuration / Double(n) : 0
                for k in 0..<n {
                    let v = values[(k * perStruct)..<(k * perStruct + perStruct)].map { $0 }
                    var fix = GPSFix(time: sampleTime + Double(k) * step,
                                     latitude: scaled(v[0], 0), longitude: scaled(v[1], 1),
                                     altitude: scaled(v[2], 2), speed2D: scaled(v[3], 3), speed3D: scaled(v[4], 4))
                    if item.key == "GPS5" {
                        fix.fix = quality(gpsf)
                        fix.dop = gpsp.map { $0 / 100 }
                        fix.utc = gpsu?.addingTimeInterval(Double(k) * step)
                    } else {
                        // GPS9 carries its own time (days since 2000, seconds since midnight), DOP and fix.
                        let days = scaled(v[5], 5), seconds = scaled(v[6], 6)
                        if days.isFinite, seconds.isFinite, days >= 0, days < 100_000, seconds >= 0, seconds < 86_401 {
                            fix.utc = Date(timeIntervalSince1970: 946_684_800 + days * 86_400 + seconds)
                        }
                        fix.dop = scaled(v[7], 7)
                        fix.fix = quality(scaled(v[8], 8))
                    }
                    result.append(fix)
                }
            default:
                break
            }
        }
        return result
    }
}
