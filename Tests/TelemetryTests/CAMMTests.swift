import Foundation
import Telemetry
import XCTest

/// Camera Motion Metadata tracks built box by box: gyroscope packets mixed with type 5 and type 6 positions.
final class CAMMTests: XCTestCase {
    static func header(_ type: UInt16) -> Data {
        var d = Data(); d.le16(0); d.le16(type); return d
    }

    static func gyro() -> Data {
        var d = header(2); d.lef32(0.01); d.lef32(-0.02); d.lef32(0.03); return d
    }

    static func position(lat: Double, lon: Double, alt: Double) -> Data {
        var d = header(5); d.lef64(lat); d.lef64(lon); d.lef64(alt); return d
    }

    static func gps(time: Double, fix: UInt32, lat: Double, lon: Double, alt: Float, east: Float, north: Float, up: Float) -> Data {
        var d = header(6)
        d.lef64(time); d.le32(fix); d.lef64(lat); d.lef64(lon); d.lef32(alt)
        d.lef32(3.5); d.lef32(5.0) // horizontal, vertical accuracy
        d.lef32(east); d.lef32(north); d.lef32(up); d.lef32(0.4)
        return d
    }

    func testPositionsAmongOtherPackets() throws {
        let samples = [
            Self.gyro(),
            Self.position(lat: 35.6586, lon: 139.7454, alt: 40.25),
            Self.gyro(),
            Self.gps(time: 1_400_000_000.5, fix: 3, lat: 35.6587, lon: 139.7455, alt: 41.5, east: 3, north: 4, up: 12),
            Self.gyro(),
            Self.gps(time: 1_400_000_001.5, fix: 2, lat: 35.6588, lon: 139.7456, alt: 42, east: 0, north: 5, up: 0),
            Self.gps(time: 1_400_000_002.5, fix: 0, lat: 0, lon: 0, alt: 0, east: 0, north: 0, up: 0),
        ]
        var builder = MovieBuilder()
        builder.tracks = [TrackSpec(handler: "meta", format: "camm", timescale: 1000, samples: samples,
                                    durations: [250, 250, 250, 250, 250, 250, 250], samplesPerChunk: 3)]
        let folder = try ScratchFolder("camm")
        let path = folder.path("camm.mp4")
        try builder.build().write(to: URL(fileURLWithPath: path))

        let found = GPSSource.discover(videoPath: path)
        XCTAssertEqual(found.warnings, [])
        let track = try XCTUnwrap(found.track)
        XCTAssertEqual(track.source, .camm)
        XCTAssertEqual(track.fixes.map(\.time), [0.25, 0.75, 1.25], "the no-fix packet is left out")
        XCTAssertEqual(track.fixes.map(\.latitude), [35.6586, 35.6587, 35.6588])
        XCTAssertEqual(track.fixes.map(\.fix), [.valid, .threeD, .twoD])
        XCTAssertEqual(track.fixes[0].altitude, 40.25)
        XCTAssertEqual(track.fixes[1].altitude, 41.5)
        XCTAssertEqual(track.fixes[1].speed2D ?? 0, 5, accuracy: 1e-6)
        XCTAssertEqual(track.fixes[1].speed3D ?? 0, 13, accuracy: 1e-6)
        // GPS time 1,400,000,000.5 s after 1980-01-06, less 18 leap seconds: 2024-05-17 16:53:02.5 UTC.
        XCTAssertEqual(try XCTUnwrap(track.fixes[1].utc).timeIntervalSince1970, 1_715_964_782.5, accuracy: 1e-6)

        let exif = try Tool.exifFixes(path).flatMap(\.fixes)
        XCTAssertEqual(exif.count, 4, "ExifTool lists the no-fix packet too")
        for (a, b) in zip(exif, track.fixes) {
            XCTAssertEqual(a.lat, b.latitude, accuracy: 1e-6)
            XCTAssertEqual(a.lon, b.longitude, accuracy: 1e-6)
        }
    }

    func testUnknownPacketTypeIsAnError() {
        var bad = Self.header(9)
        bad.zeros(12)
        XCTAssertThrowsError(try CAMM.fixes(in: bad, sampleTime: 0, sampleDuration: 1, name: "camm sample 3")) { error in
            XCTAssertEqual("\(error)", "camm sample 3: camm packet type 9 is not defined")
        }
        XCTAssertThrowsError(try CAMM.fixes(in: Self.position(lat: 1, lon: 2, alt: 3).prefix(20), sampleTime: 0,
                                            sampleDuration: 1))
    }
}
