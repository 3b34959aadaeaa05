import Foundation

/// What looking for a video's GPS found: the track (if any), the file it came from, and one line for each
/// problem met on the way (corrupt tracks, unsupported layouts, truncated recordings).
public struct GPSDiscovery: Sendable {
    /// The track, or nil when no source gave a fix.
    public var track: GPSTrack?
    /// The file the track was read from (the video itself, or a sidecar).
    public var origin: String?
    /// One line each, naming the file and the problem.
    public var warnings: [String]

    public init(track: GPSTrack? = nil, origin: String? = nil, warnings: [String] = []) {
        self.track = track
        self.origin = origin
        self.warnings = warnings
    }
}

/// Finds a video's GPS: the track embedded in the file (GoPro GPMF, CAMM, Novatek freeGPS, BlackVue NMEA,
/// subtitle NMEA or DJI text), else a sidecar beside it with the same base name (`.gpx`, `.nmea`, `.srt`).
public enum GPSSource {
    /// Sidecar extensions tried, in order (both cases, for case-sensitive file systems).
    public static let sidecarExtensions = ["gpx", "GPX", "nmea", "NMEA", "srt", "SRT"]

    /// The embedded track if the video has one that yields fixes, else the first sidecar that does; never throws.
    public static func discover(videoPath: String) -> GPSDiscovery {
        var warnings: [String] = []
        do {
            let found = try readEmbedded(path: videoPath)
            if found.track != nil { return found }
            warnings += found.warnings
        } catch {
            warnings.append(String(describing: error))
        }
        let base = (videoPath as NSString).deletingPathExtension
        var tried = Set<String>()
        for ext in sidecarExtensions {
            let path = base + "." + ext
            guard FileManager.default.fileExists(atPath: path) else { continue }
            // On a case-insensitive file system .srt and .SRT are one file.
            let number = (try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber]
            let key = number.map { "\($0)" } ?? path
            guard tried.insert(key).inserted else { continue }
            do {
                let track = try readSidecar(path: path)
                if !track.fixes.isEmpty { return GPSDiscovery(track: track, origin: path, warnings: warnings) }
                warnings.append(TelemetryError(file: path, problem: "no usable fixes").description)
            } catch {
                warnings.append(String(describing: error))
            }
        }
        return GPSDiscovery(track: nil, origin: nil, warnings: warnings)
    }

    /// Reads a sidecar by its extension: `.gpx`, `.nmea` (also `.nma`, `.log`, `.txt`), `.srt`.
    public static func readSidecar(path: String) throws -> GPSTrack {
        switch (path as NSString).pathExtension.lowercased() {
        case "gpx":
            return try GPX.read(path: path)
        case "srt":
            return try DJISubtitles.read(path: path)
        case "nmea", "nma", "log", "txt":
            let data = try TelemetryError.naming(path) { try Data(contentsOf: URL(fileURLWithPath: path)) }
            let fixes = NMEA.fixes(in: String(decoding: data, as: UTF8.self))
            guard !fixes.isEmpty else {
                throw TelemetryError(file: path, problem: "no NMEA RMC/GGA sentence with a valid checksum and a fix")
            }
            return GPSTrack(fixes: fixes, source: .nmea)
        default:
            throw TelemetryError(file: path, problem: "not a known GPS sidecar type (.gpx, .nmea, .srt)")
        }
    }

    /// The GPS embedded in the MP4/MOV at `path`; throws only when the file itself cannot be read as one.
    public static func readEmbedded(path: String) throws -> GPSDiscovery {
        readEmbedded(try MP4File(path: path))
    }

    /// The GPS embedded in MP4/MOV bytes in memory; `name` is used in messages.
    public static func readEmbedded(data: Data, name: String) throws -> GPSDiscovery {
        readEmbedded(try MP4File(data: data, name: name))
    }

    /// The GPS embedded in an opened file: the first source, in the order GPMF, CAMM, freeGPS, BlackVue NMEA,
    /// subtitle text, that yields at least one fix.
    public static func readEmbedded(_ file: MP4File) -> GPSDiscovery {
        var warnings = file.trackProblems.map(\.description)
        if file.isFragmented {
            warnings.append(TelemetryError(file: file.name, problem: "fragmented MP4: samples in movie fragments are not read").description)
        }
        var attempts: [() throws -> (GPSTrack?, [String])] = []
        for track in file.tracks where track.format == "gpmd" {
            attempts.append { try readSamples(file, track, source: .gpmf) }
        }
        for track in file.tracks where track.format == "camm" {
            attempts.append { try readSamples(file, track, source: .camm) }
        }
        for box in file.extraBoxes where box.type == "gps " && FreeGPS.looksLikeTable(box.payload) {
            attempts.append { try readFreeGPS(file, box) }
        }
        for box in file.extraBoxes where box.type == "gps " && !FreeGPS.looksLikeTable(box.payload) {
            attempts.append { try readNMEABox(file, box) }
        }
        for track in file.tracks where ["tx3g", "text"].contains(track.format) {
            attempts.append { try readText(file, track) }
        }
        for attempt in attempts {
            do {
                let (track, notes) = try attempt()
                warnings += notes
                if let track, !track.fixes.isEmpty {
                    return GPSDiscovery(track: track, origin: file.name, warnings: warnings)
                }
            } catch {
                warnings.append(String(describing: error))
            }
        }
        return GPSDiscovery(track: nil, origin: nil, warnings: warnings)
    }

    // MARK: Embedded sources

    private static func label(_ track: MP4Track) -> String { "track \(track.id) ('\(track.format)')" }

    /// Notes shared by the sample-based readers: samples past the end, samples that failed.
    private static func notes(_ file: MP4File, _ track: MP4Track, failed: Int, first: String?) -> [String] {
        var notes: [String] = []
        if track.samplesPastEnd > 0 {
            notes.append(TelemetryError(file: file.name, problem: "\(label(track)): \(track.samplesPastEnd) samples lie past the end of the file (truncated recording?)").description)
        }
        if failed > 0, let first {
            notes.append(TelemetryError(file: file.name, problem: "\(label(track)): \(failed) of \(track.samples.count) samples could not be read (first: \(first))").description)
        }
        return notes
    }

    /// GPMF or CAMM: every sample's fixes; a corrupt sample is skipped and counted, not fatal.
    private static func readSamples(_ file: MP4File, _ track: MP4Track,
                                    source: GPSTrackSource) throws -> (GPSTrack?, [String]) {
        var fixes: [GPSFix] = []
        var failed = 0
        var first: String?
        try file.forEachSample(in: track) { index, sample, data in
            do {
                let name = "sample \(index)"
                switch source {
                case .camm:
                    fixes += try CAMM.fixes(in: data, sampleTime: sample.time, sampleDuration: sample.duration,
                                            creationTime: file.creationTime, name: name)
                default:
                    fixes += try GPMF.fixes(in: data, sampleTime: sample.time, sampleDuration: sample.duration,
                                            name: name)
                }
            } catch let error as TelemetryError {
                failed += 1
                first = first ?? error.description
            }
        }
        // A track without a lock (or a camera with GPS off) is not corrupt: no track, and nothing to warn about.
        let usable = fixes.filter { $0.fix != .noFix && $0.isPlausible }
        return (usable.isEmpty ? nil : GPSTrack(fixes: usable, source: source),
                notes(file, track, failed: failed, first: first))
    }

    /// Novatek: the blocks a `gps ` table lists, one fix each, timed by their UTC from the first (else 1 s apart).
    private static func readFreeGPS(_ file: MP4File, _ box: MP4Box) throws -> (GPSTrack?, [String]) {
        let table = try TelemetryError.naming(file.name) { try FreeGPS.blockTable(box.payload) }
        var fixes: [(index: Int, fix: GPSFix)] = []
        var failed = 0
        var first: String?
        try file.withWindow { window in
            for (index, entry) in table.enumerated() {
                do {
                    try TelemetryError.naming(file.name) {
                        guard entry.size > 0, entry.size <= 1 << 20 else {
                            throw Malformed("freeGPS block \(index) has size \(entry.size)")
                        }
                        let block = try window.read(at: entry.offset, count: entry.size)
                        if let fix = try FreeGPS.fix(inBlock: block) { fixes.append((index, fix)) }
                    }
                } catch let error as TelemetryError {
                    failed += 1
                    first = first ?? error.problem
                }
            }
        }
        var notes: [String] = []
        if failed > 0, let first {
            notes.append(TelemetryError(file: file.name, problem: "'\(box.path)': \(failed) of \(table.count) freeGPS blocks not read (first: \(first))").description)
        }
        let usable = fixes.filter { $0.fix.isPlausible }
        let startUTC = usable.compactMap(\.fix.utc).min()
        let timed = usable.map { item -> GPSFix in
            var fix = item.fix
            if let utc = fix.utc, let startUTC, usable.allSatisfy({ $0.fix.utc != nil }) {
                fix.time = utc.timeIntervalSince(startUTC)
            } else {
                fix.time = Double(item.index)
            }
            return fix
        }
        return (timed.isEmpty ? nil : GPSTrack(fixes: timed, source: .freeGPS), notes)
    }

    /// BlackVue: NMEA text whose lines start with `[unix milliseconds]`, timed from the `sttm` box (the
    /// recording's start) when there is one, else from the first stamp.
    private static func readNMEABox(_ file: MP4File, _ box: MP4Box) throws -> (GPSTrack?, [String]) {
        let text = String(decoding: box.payload.prefix { $0 != 0 }, as: UTF8.self)
        let records = NMEA.records(in: text).filter { $0.latitude != nil && $0.quality != .noFix }
        guard !records.isEmpty else {
            // Sentences that all fail their checksum are damage; no sentences, or none with a lock, are not.
            let written = text.filter { $0 == "$" }.count
            if written > 0, NMEA.sentences(in: text).isEmpty {
                throw TelemetryError(file: file.name, problem: "'\(box.path)': none of its \(written) NMEA sentences has a valid checksum")
            }
            return (nil, [])
        }
        var fixes: [GPSFix] = []
        if records.allSatisfy({ $0.stamp != nil }) {
            var start = records.compactMap(\.stamp).min() ?? 0
            if let sttm = file.extraBoxes.first(where: { $0.type == "sttm" }),
               let value = try? ByteReader(sttm.payload).peek(UInt64.self, at: 0), Double(value) <= start,
               start - Double(value) < 86_400_000 {
                start = Double(value)
            }
            fixes = records.compactMap { $0.fix(at: (($0.stamp ?? start) - start) / 1000) }
        } else {
            let first = records.compactMap(\.clock).first ?? 0
            fixes = records.compactMap { record in record.clock.flatMap { record.fix(at: $0 - first) } }
        }
        return (GPSTrack(fixes: fixes.filter(\.isPlausible), source: .nmea), [])
    }

    /// Subtitle tracks: NMEA sentences (each cue's fixes spread over its duration) or DJI telemetry text.
    private static func readText(_ file: MP4File, _ track: MP4Track) throws -> (GPSTrack?, [String]) {
        var nmeaFixes: [GPSFix] = []
        var djiFixes: [GPSFix] = []
        var failed = 0
        var first: String?
        try file.forEachSample(in: track) { index, sample, data in
            // A text sample is a 16-bit length, the UTF-8 text, then optional style boxes.
            var reader = ByteReader(data)
            guard let length = try? reader.u16(), length > 0 else { return }
            guard let body = try? reader.bytes(Int(length)) else {
                failed += 1
                first = first ?? "sample \(index): text length \(length) exceeds the sample's \(data.count) bytes"
                return
            }
            let text = String(decoding: body, as: UTF8.self)
            let records = NMEA.records(in: text).filter { $0.latitude != nil }
            if !records.isEmpty {
                let step = sample.duration / Double(records.count)
                for (k, record) in records.enumerated() where record.quality != .noFix {
                    if let fix = record.fix(at: sample.time + Double(k) * step) { nmeaFixes.append(fix) }
                }
            } else if var fix = DJISubtitles.fix(in: text) {
                fix.time = sample.time
                djiFixes.append(fix)
            }
        }
        let notes = notes(file, track, failed: failed, first: first)
        if !nmeaFixes.isEmpty {
            return (GPSTrack(fixes: nmeaFixes.filter(\.isPlausible), source: .nmea), notes)
        }
        return (djiFixes.isEmpty ? nil : GPSTrack(fixes: djiFixes.filter(\.isPlausible), source: .srt), notes)
    }
}
