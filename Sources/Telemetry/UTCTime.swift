import Foundation

/// Calendar arithmetic for GPS timestamps, done by hand so it needs no time zone, locale or formatter state.
enum UTCTime {
    /// Seconds from 1970-01-01 00:00:00 UTC to the given proleptic Gregorian date and time, or nil for fields out
    /// of range (a corrupt payload must not become a date far in the past or future).
    static func date(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Double = 0) -> Date? {
        guard (1900...2200).contains(year), (1...12).contains(month), (1...31).contains(day),
              (0...23).contains(hour), (0...59).contains(minute), second >= 0, second < 61 else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Double(days) * 86_400 + Double(hour * 3600 + minute * 60) + second
        return Date(timeIntervalSince1970: seconds)
    }

    /// Days from 1970-01-01 to a civil date (Howard Hinnant's well-known algorithm, in its plain form).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let monthFromMarch = (month + 9) % 12
        let dayOfYear = (153 * monthFromMarch + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// An ISO 8601 time as GPX writes it: `2024-05-01T12:30:45Z`, `…45.123Z`, `…45+02:00`, or without a zone
    /// (taken as UTC, which is what GPX requires).
    static func parseISO8601(_ text: String) -> Date? {
        let s = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= s.count else { return nil }
            var value = 0
            for c in s[range] {
                guard (48...57).contains(c) else { return nil }
                value = value * 10 + Int(c - 48)
            }
            return value
        }
        guard s.count >= 19, s[4] == UInt8(ascii: "-"), s[7] == UInt8(ascii: "-"),
              s[10] == UInt8(ascii: "T") || s[10] == UInt8(ascii: " "),
              s[13] == UInt8(ascii: ":"), s[16] == UInt8(ascii: ":"),
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let whole = number(17..<19) else { return nil }
        var index = 19
        var second = Double(whole)
        if index < s.count, s[index] == UInt8(ascii: ".") || s[index] == UInt8(ascii: ",") {
            index += 1
            var scale = 0.1
            while index < s.count, (48...57).contains(s[index]) {
                second += Double(s[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var zoneOffset = 0
        if index < s.count {
            switch s[index] {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                index += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                let sign = s[index] == UInt8(ascii: "-") ? -1 : 1
                guard let zh = number(index + 1..<index + 3) else { return nil }
                var zm = 0
                var end = index + 3
                if end < s.count, s[end] == UInt8(ascii: ":") { end += 1 }
                if end + 2 <= s.count, let m = number(end..<end + 2) { zm = m; end += 2 }
                zoneOffset = sign * (zh * 3600 + zm * 60)
                index = end
            default:
                return nil
            }
        }
        guard index == s.count, let date = date(year: year, month: month, day: day, hour: hour,
                                                minute: minute, second: second) else { return nil }
        return date.addingTimeInterval(TimeInterval(-zoneOffset))
    }
}
