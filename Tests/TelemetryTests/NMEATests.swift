import Foundation
import Telemetry
import XCTest

/// NMEA sentences written by the tests, with their checksums.
enum NMEAWriter {
    /// "$body*hh" with the XOR checksum of `body`.
    static func sentence(_ body: String) -> String {
        let sum = body.utf8.reduce(UInt8(0), ^)
        return "$" + body + "*" + String(format: "%02X", sum)
    }

    /// Degrees as NMEA's "dddmm.mmmmm" and its hemisphere letter.
    static func coordinate(_ degrees: Double, latitude: Bool) -> (String, String) {
        let a = abs(degrees)
        let whole = Int(a)
        let minutes = (a - Double(whole)) * 60
        let text = String(format: latitude ? "%02d%08.5f" : "%03d%08.5f", whole, minutes)
        return (text, latitude ? (degrees < 0 ? "S" : "N") : (degrees < 0 ? "W" : "E"))
    }

    /// An RMC and a GGA for one fix at `time` ("hhmmss.ss") on `date` ("ddmmyy").
    static func fix(lat: Double, lon: Double, alt: Double, knots: Double, time: String, date: String,
                    talker: String = "GN") -> [String] {
        let (la, ns) = coordinate(lat, latitude: true), (lo, ew) = coordinate(lon, latitude: false)
        return [
            sentence("\(talker)RMC,\(time),A,\(la),\(ns),\(lo),\(ew),\(knots),87.5,\(date),,,A"),
            sentence("\(talker)GGA,\(time),\(la),\(ns),\(lo),\(ew),1,09,0.8,\(alt),M,47.0,M,,"),
        ]
    }
}

final class NMEATests: XCTestCase {
    /// The classic example pair from NMEA references (23 March 1994, 12:35:19 UTC, near Munich).
    static let rmc = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
    static let gga = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"

    func testChecksums() {
        XCTAssertTrue(NMEA.checksumIsValid(Self.rmc))
        XCTAssertTrue(NMEA.checksumIsValid(Self.gga))
        XCTAssertFalse(NMEA.checksumIsValid(Self.rmc.replacingOccurrences(of: "4807.038", with: "4807.039")))
        XCTAssertFalse(NMEA.checksumIsValid(Self.rmc.replacingOccurrences(of: "*6A", with: "*6B")))
        XCTAssertFalse(NMEA.checksumIsValid(String(Self.rmc.dropLast(3))), "no checksum, not accepted")
        XCTAssertEqual(NMEAWriter.sentence("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"), Self.rmc)
    }

    func testRMCAndGGAMergeIntoOneFix() throws {
        let fixes = NMEA.fixes(in: Self.rmc + "\r\n" + Self.gga + "\r\n")
        XCTAssertEqual(fixes.count, 1)
        let fix = try XCTUnwrap(fixes.first)
        XCTAssertEqual(fix.latitude, 48 + 7.038 / 60, accuracy: 1e-12)
        XCTAssertEqual(fix.longitude, 11 + 31.0 / 60, accuracy: 1e-12)
        XCTAssertEqual(fix.altitude, 545.4)
        XCTAssertEqual(fix.dop, 0.9)
        XCTAssertEqual(fix.speed2D ?? 0, 22.4 * 1852 / 3600, accuracy: 1e-12)
        XCTAssertEqual(fix.fix, .valid)
        XCTAssertEqual(try XCTUnwrap(fix.utc).timeIntervalSince1970, 764_426_119) // 1994-03-23 12:35:19 UTC
        XCTAssertEqual(fix.time, 0)
    }

    /// A sidecar log: south-west coordinates, a bad checksum and a no-fix record skipped, GSA's 3D mode, and a
    /// midnight that moves the date on.
    func testSidecarFile() throws {
        var lines: [String] = []
        let times = ["235958.00", "235959.00", "000000.00", "000001.00"]
        let dates = ["311224", "311224", "010125", "010125"]
        for (i, time) in times.enumerated() {
            lines += NMEAWriter.fix(lat: -37.8136 - Double(i) * 1e-4, lon: -144.9631 + Double(i) * 1e-4,
                                    alt: 31.5, knots: 10, time: time, date: dates[i])
            lines.append(NMEAWriter.sentence("GNGSA,A,3,01,02,03,04,,,,,,,,,1.5,0.8,1.2"))
        }
        // A corrupted copy of a sentence and a receiver without lock.
        lines.insert(lines[0].replacingOccurrences(of: "A,37", with: "A,38"), at: 2)
        lines += NMEAWriter.fix(lat: 0, lon: 0, alt: 0, knots: 0, time: "000002.00", date: "010125")
            .map { $0.replacingOccurrences(of: ",A,0", with: ",V,0") }
            .map { NMEAWriter.sentence(String($0.dropFirst().dropLast(3))) }

        let folder = try ScratchFolder("nmea")
        let path = folder.path("drive.nmea")
        try lines.joined(separator: "\r\n").write(toFile: path, atomically: true, encoding: .utf8)
        let track = try GPSSource.readSidecar(path: path)
        XCTAssertEqual(track.source, .nmea)
        XCTAssertEqual(track.fixes.count, 4)
        XCTAssertEqual(track.fixes.map(\.time), [0, 1, 2, 3])
        XCTAssertEqual(track.fixes[0].latitude, -37.8136, accuracy: 1e-9)
        XCTAssertEqual(track.fixes[3].longitude, -144.9628, accuracy: 1e-9)
        XCTAssertTrue(track.fixes.allSatisfy { $0.fix == .threeD })
        // 2025-01-01 00:00:01 UTC.
        XCTAssertEqual(try XCTUnwrap(track.fixes[3].utc).timeIntervalSince1970, 1_735_689_601)
        XCTAssertEqual(track.rate, 1)
    }

    /// NMEA in a subtitle track, muxed by ffmpeg from an SRT as mov_text: in a .mov (QuickTime 'text' entry) and
    /// in an .mp4 ('tx3g'). Each fix sits at its cue's start; ExifTool reads the same positions from the .mov.
    func testSubtitleTrackMuxedByFFmpeg() throws {
        let folder = try ScratchFolder("nmea-subs")
        var srt = ""
        var expected: [(Double, Double)] = []
        for i in 0..<4 {
            let lat = 51.5007 + Double(i) * 2e-4, lon = -0.1246 - Double(i) * 3e-4
            expected.append((lat, lon))
            let sentences = NMEAWriter.fix(lat: lat, lon: lon, alt: 20, knots: 15, time: "12000\(i).00", date: "150624")
            srt += "\(i + 1)\n00:00:0\(i),500 --> 00:00:0\(i + 1),500\n\(sentences.joined(separator: "\n"))\n\n"
        }
        try srt.write(toFile: folder.path("gps.srt"), atomically: true, encoding: .utf8)
        for container in ["mov", "mp4"] {
            let out = folder.path("subs.\(container)")
            try Tool.ffmpegRun(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=5", "-i", folder.path("gps.srt"),
                                "-map", "0", "-map", "1", "-c:v", "mpeg4", "-c:s", "mov_text", out])
            let file = try MP4File(path: out)
            XCTAssertEqual(file.tracks.map(\.format).sorted(), container == "mov" ? ["mp4v", "text"] : ["mp4v", "tx3g"])
            let found = GPSSource.discover(videoPath: out)
            XCTAssertEqual(found.warnings, [])
            let track = try XCTUnwrap(found.track, container)
            XCTAssertEqual(track.source, .nmea)
            XCTAssertEqual(track.fixes.map(\.time), [0.5, 1.5, 2.5, 3.5], accuracy: 1e-6)
            for (fix, (lat, lon)) in zip(track.fixes, expected) {
                XCTAssertEqual(fix.latitude, lat, accuracy: 1e-7)
                XCTAssertEqual(fix.longitude, lon, accuracy: 1e-7)
                XCTAssertEqual(fix.altitude, 20)
            }
            // ExifTool 12.57 parses NMEA in QuickTime 'text' tracks; in 'tx3g' ones it only shows the text.
            guard container == "mov" else { continue }
            let exif = try Tool.exifFixes(out).flatMap(\.fixes)
            XCTAssertEqual(exif.count, 4, container)
            for (a, b) in zip(exif, track.fixes) {
                XCTAssertEqual(a.lat, b.latitude, accuracy: 1e-6)
                XCTAssertEqual(a.lon, b.longitude, accuracy: 1e-6)
            }
        }
    }

    /// A BlackVue-like file: ffmpeg's MP4 with a top-level 'free' box holding Pittasoft boxes: 'cprt', 'sttm'
    /// (the recording's start, Unix ms) and 'gps ' (NMEA lines stamped with Unix ms).
    func testBlackVueGPSBox() throws {
        let folder = try ScratchFolder("blackvue")
        let video = folder.path("video.mp4")
        try Tool.ffmpegRun(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=4", "-c:v", "mpeg4", video])
        let start: UInt64 = 1_718_452_800_000 // 2024-06-15 12:00:00
        var log = ""
        var expected: [(Double, Double, Double)] = []
        for i in 0..<3 {
            let lat = 37.5665 + Double(i) * 1e-4, lon = 126.978 + Double(i) * 1e-4
            let stamp = start + 500 + UInt64(i) * 1000
            expected.append((Double(stamp - start) / 1000, lat, lon))
            for s in NMEAWriter.fix(lat: lat, lon: lon, alt: 38, knots: 20, time: "12000\(i).50", date: "150624", talker: "GP") {
                log += "[\(stamp)]\(s)\r\n"
            }
        }
        var sttm = Data(); sttm.be64(start)
        var gps = Data(); gps.ascii(log); gps.zeros(7)
        let free = Box.container("free", [Box.make("cprt", Data("Pittasoft test".utf8)), Box.make("sttm", sttm),
                                          Box.make("gps ", gps)])
        var data = try Data(contentsOf: URL(fileURLWithPath: video))
        data.append(free)
        let path = folder.path("blackvue.mp4")
        try data.write(to: URL(fileURLWithPath: path))

        let found = GPSSource.discover(videoPath: path)
        XCTAssertEqual(found.warnings, [])
        let track = try XCTUnwrap(found.track)
        XCTAssertEqual(track.source, .nmea)
        XCTAssertEqual(track.fixes.count, 3)
        for (fix, (time, lat, lon)) in zip(track.fixes, expected) {
            XCTAssertEqual(fix.time, time, accuracy: 1e-9)
            XCTAssertEqual(fix.latitude, lat, accuracy: 1e-7)
            XCTAssertEqual(fix.longitude, lon, accuracy: 1e-7)
            XCTAssertEqual(fix.altitude, 38)
        }
        let exif = try Tool.exifFixes(path).flatMap(\.fixes)
        XCTAssertEqual(exif.count, 3)
        for (a, b) in zip(exif, track.fixes) {
            XCTAssertEqual(a.lat, b.latitude, accuracy: 1e-6)
            XCTAssertEqual(a.lon, b.longitude, accuracy: 1e-6)
        }
    }
}
