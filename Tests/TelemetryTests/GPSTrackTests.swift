import Foundation
import Telemetry
import XCTest

/// Looking positions up in a track: exact fixes, interpolation, edges, offset.
final class GPSTrackTests: XCTestCase {
    private let fixes = [
        GPSFix(time: 2, latitude: 10.0, longitude: 20.0, altitude: 100, speed2D: 10, utc: Date(timeIntervalSince1970: 1000),
               fix: .threeD, dop: 1.0),
        GPSFix(time: 0, latitude: 9.0, longitude: 19.0, altitude: 90, speed2D: 8, fix: .threeD, dop: 2.0),
        GPSFix(time: 6, latitude: 14.0, longitude: 24.0, altitude: nil, speed2D: 12, utc: Date(timeIntervalSince1970: 1004),
               fix: .twoD, dop: 3.0),
    ]

    func testSortedAndSpan() {
        let track = GPSTrack(fixes: fixes, source: .gpx)
        XCTAssertEqual(track.fixes.map(\.time), [0, 2, 6])
        XCTAssertEqual(track.timeSpan, 0...6)
        XCTAssertEqual(track.duration, 6)
        XCTAssertEqual(track.rate, 2.0 / 6.0, accuracy: 1e-12)
    }

    func testExactFixIsNotInterpolated() throws {
        let track = GPSTrack(fixes: fixes, source: .gpx)
        for t in [0.0, 2, 6] {
            let p = try XCTUnwrap(track.position(at: t))
            XCTAssertFalse(p.interpolated, "at \(t)")
        }
        let p = try XCTUnwrap(track.position(at: 2))
        XCTAssertEqual(p.latitude, 10)
        XCTAssertEqual(p.dop, 1)
        XCTAssertEqual(p.time, 2)
    }

    func testLinearBetweenNeighbours() throws {
        let track = GPSTrack(fixes: fixes, source: .gpx)
        let p = try XCTUnwrap(track.position(at: 3)) // a quarter of the way from t=2 to t=6
        XCTAssertTrue(p.interpolated)
        XCTAssertEqual(p.latitude, 11, accuracy: 1e-12)
        XCTAssertEqual(p.longitude, 21, accuracy: 1e-12)
        XCTAssertNil(p.altitude, "no altitude on one side, none invented")
        XCTAssertEqual(p.speed2D ?? 0, 10.5, accuracy: 1e-12)
        XCTAssertEqual(p.utc?.timeIntervalSince1970 ?? 0, 1001, accuracy: 1e-9)
        XCTAssertEqual(p.fix, .twoD, "the worse of the two")
        XCTAssertEqual(p.dop, 3, "the worse of the two")
        let q = try XCTUnwrap(track.position(at: 1))
        XCTAssertEqual(q.altitude ?? 0, 95, accuracy: 1e-12)
    }

    func testNeverExtrapolates() {
        let track = GPSTrack(fixes: fixes, source: .gpx)
        XCTAssertNil(track.position(at: -0.001))
        XCTAssertNil(track.position(at: 6.001))
        XCTAssertNil(track.position(at: .nan))
        XCTAssertNil(GPSTrack(fixes: [], source: .nmea).position(at: 0))
        let single = GPSTrack(fixes: [fixes[0]], source: .nmea)
        XCTAssertNotNil(single.position(at: 2))
        XCTAssertNil(single.position(at: 2.5))
        XCTAssertEqual(single.rate, 0)
    }

    func testOffsetMovesTheTrackOntoTheVideo() throws {
        var track = GPSTrack(fixes: fixes, source: .gpx)
        track.offset = 10
        XCTAssertNil(track.position(at: 3))
        XCTAssertEqual(track.timeSpan, 10...16)
        let p = try XCTUnwrap(track.position(at: 13))
        XCTAssertEqual(p.time, 13)
        XCTAssertEqual(p.latitude, 11, accuracy: 1e-12)
    }

    func testAcrossTheAntimeridian() throws {
        let track = GPSTrack(fixes: [GPSFix(time: 0, latitude: -17, longitude: 179.9),
                                     GPSFix(time: 1, latitude: -17, longitude: -179.9)], source: .nmea)
        let p = try XCTUnwrap(track.position(at: 0.25))
        XCTAssertEqual(p.longitude, 179.95, accuracy: 1e-9, "the short way, through 180")
        let q = try XCTUnwrap(track.position(at: 0.75))
        XCTAssertEqual(q.longitude, -179.95, accuracy: 1e-9)
    }
}
