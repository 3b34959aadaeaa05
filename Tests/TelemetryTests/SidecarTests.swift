import Foundation
import Telemetry
import XCTest

/// GPX and DJI SRT sidecars written as text by the tests.
final class SidecarTests: XCTestCase {
    static let gpx = """
    <?xml version="1.0" encoding="UTF-8"?>
    <gpx version="1.1" creator="roadwatch tests" xmlns="http://www.topografix.com/GPX/1/1"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <metadata><time>2024-06-15T11:59:00Z</time></metadata>
      <trk><name>drive</name>
        <trkseg>
          <trkpt lat="59.3293" lon="18.0686"><ele>28.5</ele><time>2024-06-15T12:00:00Z</time><fix>3d</fix><hdop>0.9</hdop></trkpt>
          <trkpt lat="59.3295" lon="18.0690"><ele>28.9</ele><time>2024-06-15T12:00:01.500Z</time></trkpt>
          <trkpt lat="59.3299" lon="18.0695"><ele>29.0</ele></trkpt>
        </trkseg>
        <trkseg>
          <trkpt lat=" 59.3301 " lon="18.0699"><time>2024-06-15T14:00:03+02:00</time></trkpt>
          <trkpt lat="59.3302" lon="18.0700"><time>2024-06-15T12:00:04Z</time><fix>none</fix></trkpt>
        </trkseg>
      </trk>
    </gpx>
    """

    func testGPX() throws {
        let track = try GPX.parse(Data(Self.gpx.utf8), name: "drive.gpx")
        XCTAssertEqual(track.source, .gpx)
        XCTAssertEqual(track.fixes.map(\.time), [0, 1.5, 3], "the point without <time> and the no-fix point are left out")
        XCTAssertEqual(track.fixes.map(\.latitude), [59.3293, 59.3295, 59.3301])
        XCTAssertEqual(track.fixes[0].altitude, 28.5)
        XCTAssertEqual(track.fixes[0].fix, .threeD)
        XCTAssertEqual(track.fixes[0].dop, 0.9)
        XCTAssertEqual(track.fixes[1].fix, .valid)
        XCTAssertEqual(try XCTUnwrap(track.fixes[2].utc).timeIntervalSince1970, 1_718_452_803, "+02:00 is two hours ahead of UTC")
    }

    func testBrokenGPX() {
        let cut = String(Self.gpx.prefix(400))
        XCTAssertThrowsError(try GPX.parse(Data(cut.utf8), name: "cut.gpx")) { error in
            let line = "\(error)"
            XCTAssertTrue(line.hasPrefix("cut.gpx: not well-formed XML near line")
                          || line == "cut.gpx: XML ends before its elements are closed (truncated?)", line)
        }
        let garbled = Self.gpx.replacingOccurrences(of: "</trkpt>", with: "</trkpoint>")
        XCTAssertThrowsError(try GPX.parse(Data(garbled.utf8), name: "garbled.gpx")) { error in
            XCTAssertTrue("\(error)".hasPrefix("garbled.gpx: not well-formed XML near line"), "\(error)")
        }
        let untimed = "<gpx><trk><trkseg><trkpt lat=\"1\" lon=\"2\"/><trkpt lat=\"1.1\" lon=\"2\"/></trkseg></trk></gpx>"
        XCTAssertThrowsError(try GPX.parse(Data(untimed.utf8), name: "untimed.gpx")) { error in
            XCTAssertEqual("\(error)", "untimed.gpx: its 2 points have no <time>, so they cannot be placed on the video")
        }
        XCTAssertThrowsError(try GPX.parse(Data("<gpx></gpx>".utf8), name: "empty.gpx")) { error in
            XCTAssertEqual("\(error)", "empty.gpx: no <trkpt> points")
        }
    }

    /// The bracketed form of recent DJI drones, the Mavic Mini's "longtitude" spelling, and a cue without lock.
    func testDJIBracketedForms() throws {
        let srt = """
        1\r
        00:00:00,000 --> 00:00:00,033\r
        <font size="28">FrameCnt: 1, DiffTime: 33ms\r
        2023-05-01 10:20:30.123\r
        [iso: 100] [shutter: 1/500.0] [fnum: 1.7] [ev: 0] [color_md: default] [focal_len: 24.00] [latitude: 47.376887] [longitude: 8.541694] [rel_alt: 1.500 abs_alt: 432.100] [ct: 5500] </font>\r
        \r
        2\r
        00:00:00,033 --> 00:00:00,066\r
        <font size="28">FrameCnt: 2, DiffTime: 33ms\r
        [latitude : 47.376901] [longtitude : 8.541710] [altitude: 433.0]</font>\r
        \r
        3\r
        00:00:00,066 --> 00:00:00,100\r
        [latitude: 0.000000] [longitude: 0.000000] [rel_alt: 0.000 abs_alt: 0.000]\r
        \r
        4\r
        00:00:01,000 --> 00:00:01,033\r
        [latitude: -47.5] [longitude: -8.25] [rel_alt: 2.000 abs_alt: 430.000]\r
        """
        let track = try DJISubtitles.parse(srt, name: "DJI_0001.SRT")
        XCTAssertEqual(track.source, .srt)
        XCTAssertEqual(track.fixes.map(\.time), [0, 0.033, 1.0], accuracy: 1e-12)
        XCTAssertEqual(track.fixes.map(\.latitude), [47.376887, 47.376901, -47.5])
        XCTAssertEqual(track.fixes.map(\.longitude), [8.541694, 8.541710, -8.25])
        XCTAssertEqual(track.fixes.map(\.altitude), [432.1, 433.0, 430.0])
    }

    /// The older form puts longitude first: GPS(lon,lat,alt), and with spaces GPS (lon, lat, alt).
    func testDJIOlderForm() throws {
        let srt = """
        1
        00:00:00,000 --> 00:00:01,000
        HOME(113.9352,22.5369) 2017.08.05 14:11:51
        GPS(113.9353,22.5370,19) BAROMETER:52.9
        ISO:100 Shutter:60 EV: Fnum:2.2

        2
        00:00:01,000 --> 00:00:02,000
        F/3.5, SS 1000, ISO 100, EV 0, GPS (8.6499, 53.1665, 18), D 24.26m, H 6.00m
        """
        let track = try DJISubtitles.parse(srt)
        XCTAssertEqual(track.fixes.count, 2)
        XCTAssertEqual(track.fixes[0].latitude, 22.5370)
        XCTAssertEqual(track.fixes[0].longitude, 113.9353, "not HOME's coordinates")
        XCTAssertEqual(track.fixes[0].altitude, 19)
        XCTAssertEqual(track.fixes[1].latitude, 53.1665)
        XCTAssertEqual(track.fixes[1].longitude, 8.6499)
    }

    /// The same DJI text muxed by ffmpeg as a mov_text subtitle track (as DJI's own MP4s carry it).
    func testDJITextInSubtitleTrack() throws {
        let folder = try ScratchFolder("dji-subs")
        var srt = ""
        for i in 0..<3 {
            srt += "\(i + 1)\n00:00:0\(i),000 --> 00:00:0\(i + 1),000\n<font size=\"28\">FrameCnt: \(i + 1)\n"
                + "[iso: 100] [latitude: \(47.3768 + Double(i) * 1e-4)] [longitude: 8.5416] [rel_alt: 1.5 abs_alt: 432.1]</font>\n\n"
        }
        try srt.write(toFile: folder.path("DJI_0002.SRT"), atomically: true, encoding: .utf8)
        let out = folder.path("muxed.mp4")
        try Tool.ffmpegRun(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=4", "-i", folder.path("DJI_0002.SRT"),
                            "-map", "0", "-map", "1", "-c:v", "mpeg4", "-c:s", "mov_text", out])
        let found = try GPSSource.readEmbedded(path: out)
        XCTAssertEqual(found.warnings, [])
        let track = try XCTUnwrap(found.track)
        XCTAssertEqual(track.source, .srt)
        XCTAssertEqual(track.fixes.map(\.time), [0, 1, 2], accuracy: 1e-6)
        XCTAssertEqual(track.fixes.map(\.latitude), [47.3768, 47.3769, 47.377], accuracy: 1e-9)
        XCTAssertEqual(track.fixes.map(\.altitude), [432.1, 432.1, 432.1])
    }

    func testSRTWithoutCoordinates() {
        XCTAssertThrowsError(try DJISubtitles.parse("1\n00:00:00,000 --> 00:00:01,000\nHello\n", name: "movie.srt")) { error in
            XCTAssertEqual("\(error)", "movie.srt: none of its 1 cues holds GPS coordinates")
        }
        XCTAssertThrowsError(try DJISubtitles.parse("just text", name: "x.srt")) { error in
            XCTAssertEqual("\(error)", "x.srt: no subtitle cues")
        }
    }
}
