import Foundation
import Telemetry
import XCTest

/// Novatek files built box by box: a 'gps ' table in 'moov' pointing at 'free' boxes with "freeGPS " blocks.
final class FreeGPSTests: XCTestCase {
    struct Reading {
        var hour: UInt32, minute: UInt32, second: UInt32
        var lat: Float, lon: Float // DDDMM.MMMM
        var ns = "N", ew = "E"
        var knots: Float = 30
        var status = "A"
        var day: UInt32 = 15
    }

    /// The A119 / A119S layout: time fields at 48, status and hemispheres at 72, floats from 76.
    static func a119Block(_ r: Reading) -> Data {
        var d = Data()
        d.be32(256); d.ascii("freeGPS "); d.le32(0x4c); d.zeros(32)
        for v in [r.hour, r.minute, r.second, 24, 6, r.day] { d.le32(v) }
        d.ascii(r.status); d.ascii(r.ns); d.ascii(r.ew); d.zeros(1)
        d.lef32(r.lat); d.lef32(r.lon); d.lef32(r.knots); d.lef32(123.5)
        d.zeros(256 - d.count)
        return d
    }

    /// The A119 V3 layout: time fields at 16, "\0\0\0A" and the hemispheres at 37, floats from 0x2c.
    static func a119V3Block(_ r: Reading) -> Data {
        var d = Data()
        d.be32(256); d.ascii("freeGPS "); d.le32(0x3f0)
        for v in [r.hour, r.minute, r.second, 24, 6, r.day] { d.le32(v) }
        // The day's three high zero bytes (37-39) and the status letter make the "\0\0\0A" signature.
        d.ascii(r.status); d.ascii(r.ns); d.ascii(r.ew); d.zeros(1)
        d.lef32(r.lat); d.lef32(r.lon); d.lef32(r.knots); d.lef32(90)
        d.zeros(256 - d.count)
        return d
    }

    /// A movie whose 'moov' lists the blocks, which sit in top-level boxes between 'mdat' and 'moov'.
    static func movie(_ blocks: [Data], extraCount: UInt32 = 0, offsetShift: UInt64 = 0) -> Data {
        var builder = MovieBuilder()
        builder.topLevelExtras = blocks
        builder.moovExtras = { offsets in
            var table = Data()
            table.be32(0x0000_0101)
            table.be32(UInt32(blocks.count) + extraCount)
            for (offset, block) in zip(offsets, blocks) { table.be32(UInt32(offset + offsetShift)); table.be32(UInt32(block.count)) }
            return [Box.make("gps ", table)]
        }
        return builder.build()
    }

    private func degrees(_ ddmm: Float) -> Double {
        let v = Double(ddmm)
        let d = (v / 100).rounded(.down)
        return d + (v - d * 100) / 60
    }

    func testA119Blocks() throws {
        let readings = [
            Reading(hour: 8, minute: 59, second: 58, lat: 3348.8757, lon: 15112.9203, ns: "S"),
            Reading(hour: 8, minute: 59, second: 59, lat: 3348.8812, lon: 15112.9299, ns: "S"),
            Reading(hour: 9, minute: 0, second: 0, lat: 3348.8871, lon: 15112.9388, ns: "S", status: "V"),
            Reading(hour: 9, minute: 0, second: 1, lat: 3348.8930, lon: 15112.9477, ns: "S"),
        ]
        let folder = try ScratchFolder("freegps")
        let path = folder.path("novatek.mp4")
        try Self.movie(readings.map(Self.a119Block)).write(to: URL(fileURLWithPath: path))

        let found = GPSSource.discover(videoPath: path)
        XCTAssertEqual(found.warnings, [])
        let track = try XCTUnwrap(found.track)
        XCTAssertEqual(track.source, .freeGPS)
        XCTAssertEqual(track.fixes.map(\.time), [0, 1, 3], "timed by UTC; the 'V' block has no fix")
        let used = [readings[0], readings[1], readings[3]]
        for (fix, r) in zip(track.fixes, used) {
            XCTAssertEqual(fix.latitude, -degrees(r.lat), accuracy: 1e-12)
            XCTAssertEqual(fix.longitude, degrees(r.lon), accuracy: 1e-12)
            XCTAssertEqual(fix.speed2D ?? 0, 30 * 1852 / 3600, accuracy: 1e-9)
        }
        // 2024-06-15 08:59:58 UTC.
        XCTAssertEqual(try XCTUnwrap(track.fixes[0].utc).timeIntervalSince1970, 1_718_441_998)

        // ExifTool reads the same blocks (it lists the 'V' block too, so compare by time).
        let exif = try Tool.exifFixes(path).flatMap(\.fixes)
        XCTAssertEqual(exif.count, 3)
        for (a, b) in zip(exif, track.fixes) {
            XCTAssertEqual(a.lat, b.latitude, accuracy: 1e-6)
            XCTAssertEqual(a.lon, b.longitude, accuracy: 1e-6)
        }
    }

    func testA119V3Blocks() throws {
        let readings = [
            Reading(hour: 23, minute: 59, second: 59, lat: 4043.0718, lon: 7400.3587, ew: "W"),
            Reading(hour: 0, minute: 0, second: 0, lat: 4043.0801, lon: 7400.3655, ew: "W", day: 16),
        ]
        let folder = try ScratchFolder("freegps-v3")
        let path = folder.path("a119v3.mp4")
        try Self.movie(readings.map(Self.a119V3Block)).write(to: URL(fileURLWithPath: path))
        let track = try XCTUnwrap(GPSSource.discover(videoPath: path).track)
        XCTAssertEqual(track.fixes.map(\.time), [0, 1], "one second apart across midnight")
        XCTAssertEqual(track.fixes[0].longitude, -degrees(readings[0].lon), accuracy: 1e-12)
        let exif = try Tool.exifFixes(path).flatMap(\.fixes)
        XCTAssertEqual(exif.count, 2)
        for (a, b) in zip(exif, track.fixes) {
            XCTAssertEqual(a.lat, b.latitude, accuracy: 1e-6)
            XCTAssertEqual(a.lon, b.longitude, accuracy: 1e-6)
        }
    }

    /// A block holding NMEA text (NextBase style) is read through the NMEA parser.
    func testNMEATextBlock() throws {
        var block = Data()
        block.be32(256); block.ascii("freeGPS "); block.le32(0x140); block.zeros(36)
        block.ascii("20240615120000")
        block.ascii(NMEATests.rmc)
        block.zeros(256 - block.count)
        let fix = try XCTUnwrap(try FreeGPS.fix(inBlock: block))
        XCTAssertEqual(fix.latitude, 48 + 7.038 / 60, accuracy: 1e-12)
    }

    /// Obfuscated and encrypted layouts: one line saying "not supported", not one per block, and no track.
    func testObfuscatedVariantsAreNotSupported() throws {
        var xor = Self.a119Block(Reading(hour: 1, minute: 2, second: 3, lat: 1, lon: 1))
        xor.replaceSubrange(18..<26, with: [0xaa, 0xaa, 0xf2, 0xe1, 0xf0, 0xee, 0x54, 0x54])
        var akaso = Data()
        akaso.be32(256); akaso.ascii("freeGPS "); akaso.le32(0x78); akaso.zeros(48)
        akaso.le32(6); akaso.le32(15); akaso.ascii("ANE"); akaso.zeros(5)
        akaso.zeros(256 - akaso.count)
        var shifted = Self.a119Block(Reading(hour: 1, minute: 2, second: 3, lat: 1, lon: 1))
        shifted.replaceSubrange(60..<67, with: Array("4W`b]S<".utf8))

        for (name, block, words) in [("xor", xor, "XOR-obfuscated"), ("akaso", akaso, "encrypted coordinates"),
                                     ("shifted", shifted, "obfuscated")] {
            XCTAssertThrowsError(try FreeGPS.fix(inBlock: block), name) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error)")
            }
            let found = try GPSSource.readEmbedded(data: Self.movie([block, block, block]), name: "\(name).mp4")
            XCTAssertNil(found.track)
            XCTAssertEqual(found.warnings.count, 1, "\(found.warnings)")
            let line = try XCTUnwrap(found.warnings.first)
            XCTAssertTrue(line.hasPrefix("\(name).mp4: 'moov/gps ': 3 of 3 freeGPS blocks not read"), line)
            XCTAssertTrue(line.hasSuffix("not supported)"), line)
        }
    }

    /// A table that points past the end of the file (a cut recording) or claims more entries than it holds.
    func testTablePointingPastTheEnd() throws {
        let block = Self.a119Block(Reading(hour: 1, minute: 2, second: 3, lat: 4807.038, lon: 1131.0))
        let found = try GPSSource.readEmbedded(data: Self.movie([block, block], extraCount: 5, offsetShift: 1_000_000),
                                               name: "cut.mp4")
        XCTAssertNil(found.track)
        XCTAssertEqual(found.warnings.count, 1)
        XCTAssertTrue(found.warnings[0].contains("2 of 2 freeGPS blocks not read"), found.warnings[0])
        XCTAssertTrue(found.warnings[0].contains("past the end of the file"), found.warnings[0])
    }
}
