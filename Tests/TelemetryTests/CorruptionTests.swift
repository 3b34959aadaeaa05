import Foundation
import Telemetry
import XCTest

/// Truncated and bit-flipped inputs: the readers must never crash, and every problem must be one line that
/// names the file. (A crash fails the whole run, so these tests fail by not finishing.)
final class CorruptionTests: XCTestCase {
    /// Reads `data` as a video the way `discover` does and checks the shape of whatever comes back.
    /// Returns whether a track with fixes was found.
    @discardableResult
    private func check(_ data: Data, name: String, maxFixes: Int, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        do {
            let found = try GPSSource.readEmbedded(data: data, name: name)
            for warning in found.warnings {
                XCTAssertTrue(warning.hasPrefix(name + ": "), warning, file: file, line: line)
                XCTAssertFalse(warning.contains("\n"), warning, file: file, line: line)
            }
            guard let track = found.track else { return false }
            XCTAssertFalse(track.fixes.isEmpty, file: file, line: line)
            XCTAssertLessThanOrEqual(track.fixes.count, maxFixes, file: file, line: line)
            for fix in track.fixes {
                XCTAssertTrue(abs(fix.latitude) <= 90 && abs(fix.longitude) <= 180, "\(fix)", file: file, line: line)
            }
            // Lookups on a damaged track stay inside it.
            if let span = track.timeSpan {
                XCTAssertNotNil(track.position(at: (span.lowerBound + span.upperBound) / 2), file: file, line: line)
                XCTAssertNil(track.position(at: span.upperBound + 1), file: file, line: line)
            }
            return true
        } catch {
            let text = String(describing: error)
            XCTAssertTrue(text.hasPrefix(name + ": "), text, file: file, line: line)
            XCTAssertFalse(text.contains("\n"), text, file: file, line: line)
            return false
        }
    }

    /// The real clip cut inside its 'moov' (which GoPro writes last) at many places and near its end byte by
    /// byte, and cut across 'mdat' in coarse steps.
    func testCuttingTheGoProClip() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: try SharedData.require("data/gps/max-heromode.mp4")))
        let moovStart = try XCTUnwrap(data.range(of: Data("moov".utf8), options: .backwards)).lowerBound - 4
        var cuts = Array(stride(from: 0, to: moovStart, by: 65_536)) + Array(stride(from: moovStart, to: data.count, by: 97))
        cuts += Array((data.count - 64)..<data.count)
        var succeeded = 0
        for cut in cuts where check(data.prefix(cut), name: "cut-\(cut).mp4", maxFixes: 191) { succeeded += 1 }
        // Only cuts in the trailing 'udta'-free tail keep the moov whole; none may invent fixes.
        XCTAssertLessThan(succeeded, cuts.count)
        XCTAssertTrue(check(data, name: "whole.mp4", maxFixes: 191))
    }

    /// Random bytes flipped in the clip's 'moov' and in its gpmd samples, 400 times (seeded, so repeatable).
    func testFlippingBytesOfTheGoProClip() throws {
        let path = try SharedData.require("data/gps/max-heromode.mp4")
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let file = try MP4File(path: path)
        let samples = try XCTUnwrap(file.tracks.first { $0.format == "gpmd" }).samples
        let moovStart = try XCTUnwrap(data.range(of: Data("moov".utf8), options: .backwards)).lowerBound - 4
        var random = SeededGenerator(seed: 20_261_207)
        var withTrack = 0
        for round in 0..<400 {
            var damaged = data
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let at: Int
                if Bool.random(using: &random) {
                    at = Int.random(in: moovStart..<data.count, using: &random)
                } else {
                    let sample = samples[Int.random(in: 0..<samples.count, using: &random)]
                    at = Int(sample.offset) + Int.random(in: 0..<sample.size, using: &random)
                }
                damaged[at] ^= UInt8.random(in: 1...255, using: &random)
            }
            if check(damaged, name: "flip-\(round).mp4", maxFixes: 400) { withTrack += 1 }
        }
        XCTAssertGreaterThan(withTrack, 100, "most single flips leave most of the track readable")
    }

    /// Every cut and 300 flips of each file the tests build: GoPro-style (both layouts), CAMM, freeGPS,
    /// BlackVue-like, and subtitle-free plain tables.
    func testCuttingAndFlippingBuiltFiles() throws {
        var moovFirst = MovieBuilder()
        moovFirst.layout = .moovFirst
        moovFirst.tracks = [TrackSpec(handler: "meta", format: "gpmd", samples: GPMFTests.goProStyleMovie().1,
                                      durations: [1001, 1001, 1001], samplesPerChunk: 2)]
        var camm = MovieBuilder()
        camm.tracks = [TrackSpec(format: "camm", samples: [
            CAMMTests.gyro(), CAMMTests.position(lat: 1, lon: 2, alt: 3),
            CAMMTests.gps(time: 1e9, fix: 3, lat: 1.1, lon: 2.1, alt: 3, east: 1, north: 1, up: 0),
        ], durations: [10, 10, 10])]
        let novatek = FreeGPSTests.movie((0..<3).map { i in
            FreeGPSTests.a119Block(.init(hour: 1, minute: 2, second: UInt32(i), lat: 4807.038, lon: 1131.0))
        })
        var gps = Data(); gps.ascii("[1718452800500]" + NMEATests.rmc + "\r\n[1718452800500]" + NMEATests.gga + "\r\n")
        var blackVue = MovieBuilder()
        blackVue.topLevelExtras = [Box.container("free", [Box.make("gps ", gps)])]

        let fixtures: [(String, Data, Int)] = [
            ("gopro-mdat-first.mov", GPMFTests.goProStyleMovie(delay: 500).0, 9),
            ("gopro-moov-first.mov", moovFirst.build(), 9),
            ("camm.mp4", camm.build(), 2),
            ("novatek.mp4", novatek, 3),
            ("blackvue.mp4", blackVue.build(), 1),
        ]
        var random = SeededGenerator(seed: 7)
        for (name, data, fixes) in fixtures {
            XCTAssertTrue(check(data, name: name, maxFixes: fixes), "\(name) whole")
            for cut in 0..<data.count { check(data.prefix(cut), name: name, maxFixes: fixes) }
            for _ in 0..<300 {
                var damaged = data
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    damaged[Int.random(in: 0..<data.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
                }
                check(damaged, name: name, maxFixes: 1000)
            }
        }
    }

    /// The file-reading path (not memory) on cut files written to disk, through `discover`.
    func testCutFilesOnDisk() throws {
        let folder = try ScratchFolder("cut-files")
        let data = GPMFTests.goProStyleMovie().0
        for cut in stride(from: 0, to: data.count, by: 37) {
            let path = folder.path("cut-\(cut).mov")
            try data.prefix(cut).write(to: URL(fileURLWithPath: path))
            let found = GPSSource.discover(videoPath: path)
            XCTAssertNil(found.track, "a GoPro-style file is unreadable without its trailing moov (cut at \(cut))")
            XCTAssertEqual(found.warnings.count, 1)
            XCTAssertTrue(found.warnings.allSatisfy { $0.hasPrefix(path + ": ") && !$0.contains("\n") }, "\(found.warnings)")
        }
    }

    /// Text sidecars cut at every offset and with flipped bytes: a track or an error, never a crash.
    func testTextSidecars() {
        let nmea = (0..<5).flatMap { i in
            NMEAWriter.fix(lat: 1 + Double(i) * 1e-4, lon: 2, alt: 3, knots: 4, time: "12000\(i).00", date: "010124")
        }.joined(separator: "\r\n")
        let srt = "1\n00:00:00,000 --> 00:00:01,000\n[latitude: 22.5] [longitude: 113.9] [rel_alt: 1 abs_alt: 9]\n\n"
            + "2\n00:00:01,000 --> 00:00:02,000\nGPS(113.9353,22.5370,19) BAROMETER:52.9\n"
        let gpx = SidecarTests.gpx
        var random = SeededGenerator(seed: 99)
        for text in [nmea, srt, gpx] {
            let bytes = Array(text.utf8)
            var variants = (0...bytes.count).map { Array(bytes.prefix($0)) }
            for _ in 0..<200 {
                var b = bytes
                b[Int.random(in: 0..<b.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                variants.append(b)
            }
            for variant in variants {
                let data = Data(variant)
                let string = String(decoding: data, as: UTF8.self)
                XCTAssertLessThanOrEqual(NMEA.fixes(in: string).count, 5)
                for attempt in [{ try GPX.parse(data, name: "s.gpx") }, { try DJISubtitles.parse(string, name: "s.srt") }] {
                    do {
                        let track = try attempt()
                        XCTAssertTrue(track.fixes.allSatisfy { abs($0.latitude) <= 90 && $0.time.isFinite })
                    } catch {
                        XCTAssertFalse("\(error)".contains("\n"), "\(error)")
                    }
                }
            }
        }
    }
}
