import Foundation

/// Reads NMEA 0183 position sentences (`RMC`, `GGA`, and `GSA` for the fix dimension, from any talker: `GP`,
/// `GN`, `GL`, ...), as found in `.nmea` sidecars, BlackVue `gps ` boxes and dashcam subtitle tracks.
///
/// Every sentence must carry a correct `*hh` checksum; a sentence without one or with a wrong one is skipped,
/// because a truncated or bit-flipped sentence otherwise still parses as a plausible, wrong position.
public enum NMEA {
    /// Whether `sentence` (`$...*hh`, leading text before `$` and trailing whitespace ignored) has a correct
    /// checksum: the XOR of the characters between `$` and `*`.
    public static func checksumIsValid(_ sentence: String) -> Bool {
        guard let dollar = sentence.utf8.firstIndex(of: UInt8(ascii: "$")) else { return false }
        return body(of: sentence.utf8[sentence.utf8.index(after: dollar)...]) != nil
    }

    /// The fixes in `text`, one per receiver time (an `RMC` and a `GGA` with the same time make one fix), timed
    /// in seconds from the first fix by the receiver's clock. Fixes without a lock are left out.
    public static func fixes(in text: String) -> [GPSFix] {
        let found = records(in: text)
        guard let first = found.first(where: { $0.clock != nil })?.clock else { return [] }
        return found.compactMap { record in
            guard let clock = record.clock else { return nil }
            return record.fix(at: clock - first)
        }.filter { $0.fix != .noFix && $0.isPlausible }
    }

    // MARK: Internals shared with the other readers

    /// One receiver time's worth of sentences, merged.
    struct Record {
        /// `[1234567890123]` before the sentence (BlackVue: Unix milliseconds).
        var stamp: Double?
        /// The sentence's time field, as written; sentences with the same one are merged.
        var timeField: String
        /// Seconds since midnight, UTC.
        var secondOfDay: Double
        /// The date from `RMC`, if any sentence of this time had one.
        var date: (year: Int, month: Int, day: Int)?
        var latitude: Double?
        var longitude: Double?
        var altitude: Double?
        var speed: Double?
        var quality: GPSFixQuality = .valid
        var hdop: Double?
        /// UTC, from the date (own or carried from an earlier record) and the time of day.
        var utc: Date?
        /// A clock that keeps running over midnight: UTC seconds when a date is known, else seconds of the day
        /// plus whole days counted from wrap-arounds.
        var clock: Double?

        func fix(at time: Double) -> GPSFix? {
            guard let latitude, let longitude else { return nil }
            return GPSFix(time: time, latitude: latitude, longitude: longitude, altitude: altitude, speed2D: speed,
                          utc: utc, fix: quality, dop: hdop)
        }
    }

    /// All records in `text`, in order, with `utc` and `clock` filled in.
    static func records(in text: String) -> [Record] {
        var records: [Record] = []
        var current: Record?
        for (stamp, fields) in sentences(in: text) {
            guard let kind = fields.first, kind.count == 5 else { continue }
            let type = kind.suffix(3)
            if type == "GSA" {
                // GSA has no time: it describes the fix of the time being assembled.
                if current != nil, fields.count > 2 {
                    switch fields[2] {
                    case "1": current?.quality = .noFix
                    case "2": if current?.quality != .noFix { current?.quality = .twoD }
                    case "3": if current?.quality != .noFix { current?.quality = .threeD }
                    default: break
                    }
                }
                continue
            }
            guard type == "RMC" || type == "GGA", fields.count > 6, let second = secondOfDay(fields[1]) else { continue }
            if current?.timeField != fields[1] {
                if let done = current { records.append(done) }
                current = Record(stamp: stamp, timeField: fields[1], secondOfDay: second)
            }
            guard var record = current else { continue }
            if record.stamp == nil { record.stamp = stamp }
            if type == "RMC" {
                // $xxRMC,time,status,lat,N,lon,E,knots,course,ddmmyy,...
                if fields[2] != "A" { record.quality = .noFix }
                if let lat = coordinate(fields[3], fields[4], isLatitude: true),
                   let lon = coordinate(fields[5], fields[6], isLatitude: false) {
                    record.latitude = lat
                    record.longitude = lon
                }
                if fields.count > 7, let knots = Double(fields[7]) { record.speed = knots * 1852 / 3600 }
                if fields.count > 9 { record.date = date(fields[9]) ?? record.date }
            } else {
                // $xxGGA,time,lat,N,lon,E,quality,satellites,hdop,altitude,M,...
                if let lat = coordinate(fields[2], fields[3], isLatitude: true),
                   let lon = coordinate(fields[4], fields[5], isLatitude: false) {
                    record.latitude = lat
                    record.longitude = lon
                }
                if fields[6] == "0" || fields[6].isEmpty { record.quality = .noFix }
                if fields.count > 8, let hdop = Double(fields[8]) { record.hdop = hdop }
                if fields.count > 9, let altitude = Double(fields[9]) { record.altitude = altitude }
            }
            current = record
        }
        if let done = current { records.append(done) }

        // Dates carry forward (a GGA-only record after an RMC), rolling over at midnight.
        var lastDate: (year: Int, month: Int, day: Int)?
        var lastSecond = -1.0
        var days = 0
        for i in records.indices {
            let second = records[i].secondOfDay
            if let date = records[i].date {
                lastDate = date
            } else if let d = lastDate, second + 43_200 < lastSecond,
                      let next = UTCTime.date(year: d.year, month: d.month, day: d.day)?.addingTimeInterval(86_400) {
                // A time far earlier than the last one is the next day.
                let parts = civil(next)
                lastDate = parts
            }
            if lastSecond >= 0, second + 43_200 < lastSecond { days += 1 }
            lastSecond = second
            if let d = lastDate {
                records[i].utc = UTCTime.date(year: d.year, month: d.month, day: d.day)?.addingTimeInterval(second)
            }
            records[i].clock = records[i].utc?.timeIntervalSince1970 ?? (Double(days) * 86_400 + second)
        }
        // A track that gains a date part-way must not mix the two clocks.
        if records.contains(where: { $0.utc == nil }) && records.contains(where: { $0.utc != nil }) {
            var days = 0
            var last = -1.0
            for i in records.indices {
                let second = records[i].secondOfDay
                if last >= 0, second + 43_200 < last { days += 1 }
                last = second
                records[i].clock = Double(days) * 86_400 + second
            }
        }
        return records
    }

    /// The sentences of `text` with a valid checksum, as (bracket stamp, comma-separated fields without `$`).
    static func sentences(in text: String) -> [(stamp: Double?, fields: [String])] {
        var result: [(Double?, [String])] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "$") else { i += 1; continue }
            // A "[digits]" right before the '$' is a timestamp (BlackVue).
            var stamp: Double?
            if i >= 3, bytes[i - 1] == UInt8(ascii: "]") {
                var j = i - 2
                var digits: [UInt8] = []
                while j >= 0, (48...57).contains(bytes[j]), digits.count < 20 { digits.insert(bytes[j], at: 0); j -= 1 }
                if j >= 0, bytes[j] == UInt8(ascii: "["), !digits.isEmpty {
                    stamp = Double(String(decoding: digits, as: UTF8.self))
                }
            }
            var end = i + 1
            while end < bytes.count, bytes[end] != UInt8(ascii: "$"), bytes[end] != 10, bytes[end] != 13 { end += 1 }
            if let body = body(of: bytes[(i + 1)..<end]) {
                let fields = String(decoding: body, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false)
                    .map(String.init)
                result.append((stamp, fields))
            }
            i = end
        }
        return result
    }

    /// The part between `$` and `*` when the two hex digits after `*` match its XOR; nil otherwise.
    private static func body<C: Collection>(of sentence: C) -> C.SubSequence? where C.Element == UInt8 {
        guard let star = sentence.firstIndex(of: UInt8(ascii: "*")) else { return nil }
        let hex = sentence[sentence.index(after: star)...].prefix(2)
        guard hex.count == 2, let expected = UInt8(String(decoding: hex, as: UTF8.self), radix: 16) else { return nil }
        let content = sentence[sentence.startIndex..<star]
        guard content.allSatisfy({ (0x20...0x7e).contains($0) }) else { return nil }
        return content.reduce(0, ^) == expected ? content : nil
    }

    /// "hhmmss(.sss)" as seconds of the day.
    static func secondOfDay(_ field: String) -> Double? {
        let c = Array(field.utf8)
        guard c.count >= 6, c[0..<6].allSatisfy({ (48...57).contains($0) }) else { return nil }
        let hh = Int(c[0] - 48) * 10 + Int(c[1] - 48)
        let mm = Int(c[2] - 48) * 10 + Int(c[3] - 48)
        guard let ss = Double(String(decoding: c[4...], as: UTF8.self)), hh < 24, mm < 60, ss < 61 else { return nil }
        return Double(hh * 3600 + mm * 60) + ss
    }

    /// "ddmmyy" (years before 70 are 20xx).
    private static func date(_ field: String) -> (year: Int, month: Int, day: Int)? {
        let c = Array(field.utf8)
        guard c.count == 6, c.allSatisfy({ (48...57).contains($0) }) else { return nil }
        let dd = Int(c[0] - 48) * 10 + Int(c[1] - 48)
        let mo = Int(c[2] - 48) * 10 + Int(c[3] - 48)
        let yy = Int(c[4] - 48) * 10 + Int(c[5] - 48)
        guard (1...31).contains(dd), (1...12).contains(mo) else { return nil }
        return (yy < 70 ? 2000 + yy : 1900 + yy, mo, dd)
    }

    /// "dddmm.mmmm" with its hemisphere letter, as signed degrees.
    static func coordinate(_ value: String, _ hemisphere: String, isLatitude: Bool) -> Double? {
        guard let v = Double(value) else { return nil }
        return coordinate(v, hemisphere, isLatitude: isLatitude)
    }

    /// A DDDMM.MMMM number with its hemisphere letter, as signed degrees.
    static func coordinate(_ v: Double, _ hemisphere: String, isLatitude: Bool) -> Double? {
        guard v.isFinite, v >= 0 else { return nil }
        let degrees = (v / 100).rounded(.down)
        let minutes = v - degrees * 100
        guard minutes < 60 else { return nil }
        let result = degrees + minutes / 60
        switch (hemisphere, isLatitude) {
        case ("N", true), ("E", false): return result <= (isLatitude ? 90 : 180) ? result : nil
        case ("S", true), ("W", false): return result <= (isLatitude ? 90 : 180) ? -result : nil
        default: return nil
        }
    }

    private static func civil(_ date: Date) -> (year: Int, month: Int, day: Int) {
        // Inverse of UTCTime.daysFromCivil (Hinnant's civil_from_days).
        let z = Int((date.timeIntervalSince1970 / 86_400).rounded(.down)) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
