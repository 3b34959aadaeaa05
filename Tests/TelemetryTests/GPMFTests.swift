import Foundation
import Telemetry
import XCTest

/// GPMF payloads the tests write key by key, alone and muxed into MOV files.
final class GPMFTests: XCTestCase {
    /// Three fixes in the south-west with a negative altitude, so signs and scales are all exercised.
    static let fixes = [
        GPMFWriter.Fix(lat: -33.8567844, lon: -151.2152967, alt: -12.345, speed2D: 13.456, speed3D: 13.5),
        GPMFWriter.Fix(lat: -33.8567901, lon: -151.2153012, alt: -12.301, speed2D: 13.502, speed3D: 13.61),
        GPMFWriter.Fix(lat: -33.8567977, lon: -151.2153088, alt: -12.250, speed2D: 13.611, speed3D: 13.7),
    ]

    func testFixesFromBuiltPayload() throws {
        let payload = GPMFWriter.sample(Self.fixes, gpsu: "191118234514.250")
        let fixes = try GPMF.fixes(in: payload, sampleTime: 2, sampleDuration: 0.9)
        XCTAssertEqual(fixes.count, 3)
        for (k, (fix, written)) in zip(fixes, Self.fixes).enumerated() {
            let expected = GPMFWriter.expected(written)
            XCTAssertEqual(fix.latitude, expected[0])
            XCTAssertEqual(fix.longitude, expected[1])
            XCTAssertEqual(fix.altitude, expected[2])
            XCTAssertEqual(fix.speed2D, expected[3])
            XCTAssertEqual(fix.speed3D, expected[4])
            XCTAssertEqual(fix.time, 2 + Double(k) * 0.3, accuracy: 1e-12, "fixes spread evenly over the sample")
            XCTAssertEqual(fix.fix, .threeD)
            XCTAssertEqual(fix.dop ?? 0, 1.54, accuracy: 1e-12)
            // 2019-11-18 23:45:14.250 UTC, then 0.3 s per fix.
            XCTAssertEqual(try XCTUnwrap(fix.utc).timeIntervalSince1970, 1_574_120_714.25 + Double(k) * 0.3, accuracy: 1e-6)
        }
    }

    func testItemTree() throws {
        let items = try GPMF.parse(GPMFWriter.sample(Self.fixes, gpsu: "191118234514.000"))
        XCTAssertEqual(items.map(\.key), ["DEVC"])
        XCTAssertEqual(items[0].children.map(\.key), ["DVID", "DVNM", "STRM", "STRM"])
        let gps = items[0].children[3].children
        XCTAssertEqual(gps.map(\.key), ["STNM", "GPSF", "GPSU", "GPSP", "SCAL", "GPS5"])
        XCTAssertEqual(gps[5].typeCharacter, "l")
        XCTAssertEqual(gps[5].structSize, 20)
        XCTAssertEqual(gps[5].repeatCount, 3)
        XCTAssertEqual(gps[5].payload.count, 60)
    }

    /// GPSF 0 marks the fixes; a whole track without lock gives no track and no warning (it is not damage).
    func testNoLockIsMarkedAndNotAWarning() throws {
        let payload = GPMFWriter.sample(Self.fixes, gpsu: "191118234514.000", gpsf: 0)
        let fixes = try GPMF.fixes(in: payload, sampleTime: 0, sampleDuration: 1)
        XCTAssertEqual(fixes.map(\.fix), [.noFix, .noFix, .noFix])
        var builder = MovieBuilder()
        builder.tracks = [TrackSpec(samples: [payload, payload], durations: [1000, 1000])]
        let found = try GPSSource.readEmbedded(data: builder.build(), name: "nolock.mov")
        XCTAssertNil(found.track)
        XCTAssertEqual(found.warnings, [])
    }

    /// A damaged sample is skipped and reported once; the other samples still give the track.
    func testOneDamagedSampleIsAWarning() throws {
        var samples = Self.goProStyleMovie().1
        samples[1].replaceSubrange(0..<4, with: [0xff, 0x00, 0x01, 0x02])
        var builder = MovieBuilder()
        builder.tracks = [TrackSpec(samples: samples, durations: [1001, 1001, 1001])]
        let found = try GPSSource.readEmbedded(data: builder.build(), name: "damaged.mov")
        XCTAssertEqual(found.track?.fixes.count, 6)
        XCTAssertEqual(found.warnings, ["damaged.mov: track 1 ('gpmd'): 1 of 3 samples could not be read (first: sample 1: not GPMF: item at offset 0 has key '????')"])
    }

    /// GPS9: each fix carries its own time (days since 2000, seconds since midnight), DOP and fix type.
    func testGPS9() throws {
        var values = Data()
        let days: Int32 = 7261 // 2019-11-18
        let rows: [[Int32]] = [
            [331_267_700, -1_173_273_436, -22_959, 1046, 105, days, 85_514_000, 154, 3],
            [331_267_696, -1_173_273_433, -22_941, 1088, 105, days, 85_514_100, 160, 2],
        ]
        for row in rows {
            for v in row[0..<7] { values.bei32(v) }
            values.be16(UInt16(row[7])); values.be16(UInt16(row[8]))
        }
        let scale: [Int32] = [10_000_000, 10_000_000, 1000, 1000, 100, 1, 1000, 100, 1]
        let stream = GPMFWriter.nested("STRM", [
            GPMFWriter.string("TYPE", "lllllllSS"),
            GPMFWriter.int32s("SCAL", scale, perStruct: 1),
            GPMFWriter.klv("GPS9", "?", structSize: 32, repeatCount: 2, values),
        ])
        let fixes = try GPMF.fixes(in: GPMFWriter.nested("DEVC", [stream]), sampleTime: 1, sampleDuration: 0.2)
        XCTAssertEqual(fixes.count, 2)
        XCTAssertEqual(fixes[0].latitude, 33.12677)
        XCTAssertEqual(fixes[0].longitude, -117.3273436)
        XCTAssertEqual(fixes[0].altitude, -22.959)
        XCTAssertEqual(fixes[1].time, 1.1, accuracy: 1e-12)
        XCTAssertEqual(fixes[0].fix, .threeD)
        XCTAssertEqual(fixes[1].fix, .twoD)
        XCTAssertEqual(fixes[1].dop ?? 0, 1.6, accuracy: 1e-12)
        // 2000-01-01 + 7261 days + 85514.1 s = 2019-11-18 23:45:14.100 UTC.
        XCTAssertEqual(try XCTUnwrap(fixes[1].utc).timeIntervalSince1970, 1_574_120_714.1, accuracy: 1e-6)
    }

    /// Inconsistent structures are one-line errors naming the payload.
    func testMalformedPayloadsAreErrors() {
        let badStruct = GPMFWriter.nested("DEVC", [GPMFWriter.nested("STRM", [
            GPMFWriter.klv("GPS5", "l", structSize: 12, repeatCount: 1, Data(count: 12)),
        ])])
        XCTAssertThrowsError(try GPMF.fixes(in: badStruct, sampleTime: 0, sampleDuration: 1, name: "bad.gpmf")) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.hasPrefix("bad.gpmf: "), text)
            XCTAssertTrue(text.contains("GPS5"), text)
            XCTAssertFalse(text.contains("\n"))
        }
        var zero = Data(); zero.bei32(0)
        let zeroScale = GPMFWriter.nested("STRM", [GPMFWriter.klv("SCAL", "l", structSize: 4, repeatCount: 1, zero)])
        XCTAssertThrowsError(try GPMF.fixes(in: zeroScale, sampleTime: 0, sampleDuration: 1))
        XCTAssertThrowsError(try GPMF.parse(Data("this is not GPMF at all".utf8)))
    }

    /// Every prefix of a payload either parses (fewer fixes) or throws; none crashes.
    func testEveryTruncationOfAPayload() {
        let payload = GPMFWriter.sample(Self.fixes, gpsu: "191118234514.000")
        var thrown = 0
        for cut in 0..<payload.count {
            do {
                let fixes = try GPMF.fixes(in: payload.prefix(cut), sampleTime: 0, sampleDuration: 1)
                XCTAssertLessThanOrEqual(fixes.count, 3)
            } catch {
                thrown += 1
                XCTAssertFalse(String(describing: error).contains("\n"))
            }
        }
        XCTAssertGreaterThan(thrown, payload.count / 2, "a cut inside an item is an error")
    }

    // MARK: In a movie

    /// Three one-second samples of three fixes each, in a hand-built MOV ('meta' handler, 'gpmd' entry).
    static func goProStyleMovie(delay: UInt32? = nil) -> (Data, [Data]) {
        let samples = (0..<3).map { s in
            GPMFWriter.sample(fixes.map { var f = $0; f.lat += Double(s) * 1e-4; return f },
                              gpsu: "19111823451\(4 + s).000")
        }
        var builder = MovieBuilder()
        builder.tracks = [TrackSpec(handler: "meta", format: "gpmd", timescale: 1000, samples: samples,
                                    durations: [1001, 1001, 1001], emptyEdit: delay)]
        return (builder.build(), samples)
    }

    func testHandBuiltMovieAgreesWithFFprobeAndExifTool() throws {
        let folder = try ScratchFolder("gpmd")
        let (movie, _) = Self.goProStyleMovie()
        let path = folder.path("built.mov")
        try movie.write(to: URL(fileURLWithPath: path))

        let file = try MP4File(path: path)
        let track = try XCTUnwrap(file.tracks.first)
        XCTAssertEqual(track.format, "gpmd")
        XCTAssertEqual(track.samples.map(\.time), [0, 1.001, 2.002])

        // ffprobe reads the same packets at the same places and times.
        let probe = try Tool.run(try Tool.ffprobe(), ["-v", "error", "-select_streams", "d:0", "-show_entries",
                                                      "packet=pts_time,size,pos", "-of", "csv=p=0", path])
        let packets = probe.stdout.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        XCTAssertEqual(packets.count, 3, probe.stderr)
        for (packet, sample) in zip(packets, track.samples) {
            XCTAssertEqual(Double(packet[0]) ?? -1, sample.time, accuracy: 1e-6)
            XCTAssertEqual(Int(packet[1]), sample.size)
            XCTAssertEqual(UInt64(packet[2]), sample.offset)
        }

        let found = try GPSSource.readEmbedded(path: path)
        XCTAssertEqual(found.warnings, [])
        let gps = try XCTUnwrap(found.track)
        XCTAssertEqual(gps.source, .gpmf)
        XCTAssertEqual(gps.fixes.count, 9)
        XCTAssertEqual(gps.fixes[3].time, 1.001, accuracy: 1e-12)
        XCTAssertEqual(gps.fixes[4].time, 1.001 + 1.001 / 3, accuracy: 1e-12)

        // ExifTool, as a second opinion, finds the same nine fixes.
        let exif = try Tool.exifFixes(path).flatMap(\.fixes)
        XCTAssertEqual(exif.count, 9)
        for (a, b) in zip(exif, gps.fixes) {
            XCTAssertEqual(a.lat, b.latitude, accuracy: 1e-6)
            XCTAssertEqual(a.lon, b.longitude, accuracy: 1e-6)
        }
    }

    /// ffmpeg copies the gpmd track next to a video it encodes, delayed 1.5 s (an edit list with an empty
    /// edit), interleaving chunks its own way; the payloads and times must survive.
    func testRemuxedByFFmpegWithDelay() throws {
        let folder = try ScratchFolder("gpmd-remux")
        let (movie, samples) = Self.goProStyleMovie()
        try movie.write(to: URL(fileURLWithPath: folder.path("built.mov")))
        let out = folder.path("remuxed.mov")
        try Tool.ffmpegRun(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=5",
                            "-itsoffset", "1.5", "-i", folder.path("built.mov"),
                            "-map", "0:v", "-map", "1:d", "-c:v", "mpeg4", "-c:d", "copy", out])
        let file = try MP4File(path: out)
        XCTAssertEqual(file.tracks.map(\.format).sorted(), ["gpmd", "mp4v"])
        let track = try XCTUnwrap(file.tracks.first { $0.format == "gpmd" })
        XCTAssertEqual(track.editShift, 1.5, accuracy: 1e-9)
        var payloads: [Data] = []
        try file.forEachSample(in: track) { _, _, data in payloads.append(data) }
        XCTAssertEqual(payloads, samples)
        XCTAssertEqual(track.samples.map(\.time), [1.5, 2.501, 3.502].map { $0 }, accuracy: 1e-9)

        let probe = try Tool.run(try Tool.ffprobe(), ["-v", "error", "-select_streams", "d:0", "-show_entries",
                                                      "packet=pts_time", "-of", "csv=p=0", out])
        let times = probe.stdout.split(separator: "\n").compactMap { Double($0) }
        XCTAssertEqual(times, track.samples.map(\.time), accuracy: 1e-6)

        let gps = try XCTUnwrap(GPSSource.discover(videoPath: out).track)
        XCTAssertEqual(gps.timeSpan?.lowerBound ?? 0, 1.5, accuracy: 1e-9)
        XCTAssertNil(gps.position(at: 1.4), "no extrapolation before a delayed track starts")
    }
}

/// Element-wise comparison of two arrays of doubles.
func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "counts differ: \(a) vs \(b)", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
