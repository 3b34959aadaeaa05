import Foundation

/// Reads the flight telemetry DJI drones write as subtitles (`.SRT` sidecars, or the same text in a subtitle
/// track): the bracketed form `[latitude: 22.5] [longitude: 113.9] [rel_alt: 1.2 abs_alt: 98.7]` (also the
/// `longtitude` spelling some firmware writes) and the older `GPS(lon,lat,alt)` / `GPS (lon, lat, alt)` form.
public enum DJISubtitles {
    /// The track in SRT text, each fix at its cue's start time (DJI's subtitles run on the video's clock).
    public static func parse(_ text: String, name: String = "SRT") throws -> GPSTrack {
        let cues = self.cues(in: text)
        guard !cues.isEmpty else { throw TelemetryError(file: name, problem: "no subtitle cues") }
        let fixes = cues.compactMap { cue -> GPSFix? in
            guard var fix = fix(in: cue.text) else { return nil }
            fix.time = cue.start
            return fix
        }
        guard !fixes.isEmpty else {
            throw TelemetryError(file: name, problem: "none of its \(cues.count) cues holds GPS coordinates")
        }
        return GPSTrack(fixes: fixes.filter(\.isPlausible), source: .srt)
    }

    /// Reads the SRT file at `path`.
    public static func read(path: String) throws -> GPSTrack {
        let data = try TelemetryError.naming(path) { try Data(contentsOf: URL(fileURLWithPath: path)) }
        return try parse(String(decoding: data, as: UTF8.self), name: path)
    }

    // MARK: Internals

    struct Cue {
        var start: Double
        var end: Double
        var text: String
    }

    /// The cues of SRT text: a `HH:MM:SS,mmm --> HH:MM:SS,mmm` line and the text lines up to a blank line.
    static func cues(in text: String) -> [Cue] {
        var result: [Cue] = []
        var current: Cue?
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false)
        for line in lines {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let range = trimmed.range(of: "-->") {
                if let cue = current { result.append(cue) }
                current = nil
                if let start = timestamp(trimmed[..<range.lowerBound]),
                   let end = timestamp(trimmed[range.upperBound...].split(separator: " ").first ?? "") {
                    current = Cue(start: start, end: end, text: "")
                }
            } else if trimmed.isEmpty {
                if let cue = current { result.append(cue) }
                current = nil
            } else if var cue = current {
                cue.text += (cue.text.isEmpty ? "" : "\n") + trimmed
                current = cue
            }
        }
        if let cue = current { result.append(cue) }
        return result
    }

    /// "HH:MM:SS,mmm" (or with '.') as seconds.
    private static func timestamp<S: StringProtocol>(_ s: S) -> Double? {
        let parts = s.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: ".")
            .split(separator: ":")
        guard parts.count == 3, let h = Int(parts[0]), let m = Int(parts[1]), let sec = Double(parts[2]),
              (0..<100_000).contains(h), (0..<60).contains(m), sec >= 0, sec < 60 else { return nil }
        return Double(h * 3600 + m * 60) + sec
    }

    /// The position in one cue's text, or nil when it holds none (time left at 0).
    static func fix(in text: String) -> GPSFix? {
        let lower = text.lowercased()
        if let lat = number(after: "latitude", in: lower),
           let lon = number(after: "longitude", in: lower) ?? number(after: "longtitude", in: lower) {
            let altitude = number(after: "abs_alt", in: lower) ?? number(after: "[altitude", in: lower)
            return GPSFix(time: 0, latitude: lat, longitude: lon, altitude: altitude)
        }
        // The older form puts longitude first: GPS(113.9352,22.5369,19) or GPS (8.6499, 53.1665, 18).
        for opener in ["gps(", "gps ("] {
            guard let range = lower.range(of: opener) else { continue }
            let inside = lower[range.upperBound...].prefix { $0 != ")" }
            let values = inside.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard values.count >= 2, let lon = values[0], let lat = values[1] else { continue }
            return GPSFix(time: 0, latitude: lat, longitude: lon, altitude: values.count > 2 ? values[2] : nil)
        }
        return nil
    }

    /// The number after `key` and a ':' (spaces allowed around it), e.g. `latitude : 22.5`.
    private static func number(after key: String, in text: String) -> Double? {
        var search = text.startIndex..<text.endIndex
        while let range = text.range(of: key, range: search) {
            var i = range.upperBound
            while i < text.endIndex, text[i] == " " { i = text.index(after: i) }
            if i < text.endIndex, text[i] == ":" {
                i = text.index(after: i)
                while i < text.endIndex, text[i] == " " { i = text.index(after: i) }
                let digits = text[i...].prefix { "+-.0123456789eE".contains($0) }
                if let value = Double(digits) { return value }
            }
            search = range.upperBound..<text.endIndex
        }
        return nil
    }
}
