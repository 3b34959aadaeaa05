import Foundation
import Telemetry
import XCTest

/// `GPSSource.discover`: the embedded track first, then sidecars with the video's base name.
final class DiscoveryTests: XCTestCase {
    private var folder: ScratchFolder!

    override func setUpWithError() throws {
        folder = try ScratchFolder("discover")
    }

    override func tearDown() {
        folder = nil
    }

    /// A short MP4 with video only (no GPS anywhere in it).
    private func plainVideo(_ name: String) throws -> String {
        let path = folder.path(name)
        try Tool.ffmpegRun(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2", "-c:v", "mpeg4", path])
        return path
    }

    private func write(_ text: String, _ name: String) throws -> String {
        let path = folder.path(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testGPXSidecar() throws {
        let video = try plainVideo("ride.mp4")
        let gpx = try write(SidecarTests.gpx, "ride.gpx")
        let found = GPSSource.discover(videoPath: video)
        XCTAssertEqual(found.warnings, [])
        XCTAssertEqual(found.origin, gpx)
        XCTAssertEqual(found.track?.source, .gpx)
        XCTAssertEqual(found.track?.fixes.count, 3)
    }

    func testUppercaseSRTSidecar() throws {
        let video = try plainVideo("DJI_0001.MP4")
        _ = try write("1\n00:00:00,000 --> 00:00:01,000\n[latitude: 22.5] [longitude: 113.9]\n", "DJI_0001.SRT")
        let found = GPSSource.discover(videoPath: video)
        XCTAssertEqual(found.track?.source, .srt)
        XCTAssertEqual(found.track?.fixes.first?.latitude, 22.5)
    }

    func testEmbeddedTrackWinsOverSidecar() throws {
        let video = folder.path("gopro.mov")
        try GPMFTests.goProStyleMovie().0.write(to: URL(fileURLWithPath: video))
        _ = try write(SidecarTests.gpx, "gopro.gpx")
        let found = GPSSource.discover(videoPath: video)
        XCTAssertEqual(found.track?.source, .gpmf)
        XCTAssertEqual(found.origin, video)
    }

    /// A corrupt embedded track is a warning naming the file and track, and the sidecar is used.
    func testCorruptEmbeddedTrackFallsBackToSidecar() throws {
        var movie = GPMFTests.goProStyleMovie().0
        let stsz = try XCTUnwrap(movie.range(of: Data("stsz".utf8)))
        movie.replaceSubrange((stsz.upperBound + 8)..<(stsz.upperBound + 12), with: [0, 0, 0x10, 0])
        let video = folder.path("broken.mov")
        try movie.write(to: URL(fileURLWithPath: video))
        let nmea = (NMEAWriter.fix(lat: 1, lon: 2, alt: 3, knots: 4, time: "120000.00", date: "010124")
            + NMEAWriter.fix(lat: 1.001, lon: 2, alt: 3, knots: 4, time: "120001.00", date: "010124")).joined(separator: "\n")
        let sidecar = try write(nmea, "broken.nmea")

        let found = GPSSource.discover(videoPath: video)
        XCTAssertEqual(found.origin, sidecar)
        XCTAssertEqual(found.track?.source, .nmea)
        XCTAssertEqual(found.warnings, ["\(video): track 1: 'stsz' lists 4096 samples but holds sizes for 3 (truncated?)"])
    }

    func testNothingFound() throws {
        let video = try plainVideo("plain.mp4")
        let found = GPSSource.discover(videoPath: video)
        XCTAssertNil(found.track)
        XCTAssertNil(found.origin)
        XCTAssertEqual(found.warnings, [])

        let missing = GPSSource.discover(videoPath: folder.path("missing.mp4"))
        XCTAssertNil(missing.track)
        XCTAssertEqual(missing.warnings, ["\(folder.path("missing.mp4")): no such file"])
    }

    /// A broken GPX is a warning; the NMEA sidecar after it is still tried.
    func testBrokenSidecarThenGoodOne() throws {
        let video = try plainVideo("trip.mp4")
        _ = try write("<gpx><trk><trkseg><trkpt lat=\"1\" lon=", "trip.gpx")
        let nmea = NMEAWriter.fix(lat: 1, lon: 2, alt: 3, knots: 4, time: "120000.00", date: "010124").joined(separator: "\n")
        _ = try write(nmea, "trip.nmea")
        let found = GPSSource.discover(videoPath: video)
        XCTAssertEqual(found.track?.source, .nmea)
        XCTAssertEqual(found.warnings.count, 1)
        XCTAssertTrue(found.warnings[0].hasPrefix(folder.path("trip.gpx") + ": "), found.warnings[0])
    }

    /// A video that is not MP4/MOV: a one-line warning, and sidecars still work.
    func testNotAnMP4StillFindsSidecar() throws {
        let video = try write("this is an AVI, honest", "old.avi")
        _ = try write(SidecarTests.gpx, "old.gpx")
        let found = GPSSource.discover(videoPath: video)
        XCTAssertEqual(found.track?.source, .gpx)
        XCTAssertEqual(found.warnings.count, 1)
        XCTAssertTrue(found.warnings[0].hasPrefix("\(video): not an MP4/MOV file"), found.warnings[0])
    }
}
