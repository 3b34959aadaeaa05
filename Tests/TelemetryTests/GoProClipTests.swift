import Foundation
import Telemetry
import XCTest

/// The real GoPro MAX clip from gpmf-parser's samples, read by roadwatch and by ExifTool.
final class GoProClipTests: XCTestCase {
    private func clip() throws -> String { try SharedData.require("data/gps/max-heromode.mp4") }

    /// The gpmd track's samples and the fixes in each, read through the public API.
    private func perSample(_ path: String) throws -> [(sample: MP4Sample, fixes: [GPSFix])] {
        let file = try MP4File(path: path)
        let track = try XCTUnwrap(file.tracks.first { $0.format == "gpmd" }, "no gpmd track")
        XCTAssertEqual(track.handler, "meta")
        var result: [(MP4Sample, [GPSFix])] = []
        try file.forEachSample(in: track) { _, sample, data in
            result.append((sample, try GPMF.fixes(in: data, sampleTime: sample.time, sampleDuration: sample.duration)))
        }
        return result
    }

    /// `exiftool -ee -n -p '$SampleTime $GPSLatitude $GPSLongitude'` prints one line per gpmd sample: the
    /// sample's start time with the *last* GPS5 fix of that sample (-p keeps the last value of a repeated tag).
    /// roadwatch must have a sample starting at that time whose last fix agrees to 1e-6 degrees, and its track
    /// must give the sample's *first* fix, not interpolated, at that time.
    func testAgreesWithExifToolPrintFormat() throws {
        let path = try clip()
        let run = try Tool.run(try Tool.exiftool(), ["-ee", "-n", "-p", "$SampleTime $GPSLatitude $GPSLongitude", path])
        let lines = run.stdout.split(separator: "\n").map { $0.split(separator: " ").compactMap { Double($0) } }
            .filter { $0.count == 3 }
        XCTAssertEqual(lines.count, 11, "ExifTool's output: \(run.stdout) \(run.stderr)")

        let samples = try perSample(path).filter { !$0.fixes.isEmpty }
        XCTAssertEqual(samples.count, lines.count)
        let track = try XCTUnwrap(GPSSource.readEmbedded(path: path).track)
        for line in lines {
            let (time, lat, lon) = (line[0], line[1], line[2])
            let match = try XCTUnwrap(samples.first { abs($0.sample.time - time) < 1e-6 }, "no sample at \(time) s")
            let last = try XCTUnwrap(match.fixes.last)
            XCTAssertEqual(last.latitude, lat, accuracy: 1e-6, "last fix of the sample at \(time) s")
            XCTAssertEqual(last.longitude, lon, accuracy: 1e-6, "last fix of the sample at \(time) s")

            let position = try XCTUnwrap(track.position(at: time), "no position at \(time) s")
            let first = try XCTUnwrap(match.fixes.first)
            XCTAssertFalse(position.interpolated, "a sample's first fix sits exactly at its start time")
            XCTAssertEqual(position.latitude, first.latitude, accuracy: 1e-9)
            XCTAssertEqual(position.longitude, first.longitude, accuracy: 1e-9)
        }
    }

    /// Every fix ExifTool lists (`-a -G3`, one document per sample) equals roadwatch's, in order and count.
    func testEveryFixAgreesWithExifTool() throws {
        let path = try clip()
        let exif = try Tool.exifFixes(path)
        let ours = try perSample(path).filter { !$0.fixes.isEmpty }
        XCTAssertEqual(exif.count, ours.count, "samples with GPS")
        XCTAssertEqual(exif.map(\.fixes.count).reduce(0, +), 191, "ExifTool's fix count for this clip")
        for (theirs, mine) in zip(exif, ours) {
            if let time = theirs.sampleTime { XCTAssertEqual(mine.sample.time, time, accuracy: 1e-6) }
            XCTAssertEqual(theirs.fixes.count, mine.fixes.count, "fixes in the sample at \(mine.sample.time) s")
            for (a, b) in zip(theirs.fixes, mine.fixes) {
                XCTAssertEqual(a.lat, b.latitude, accuracy: 1e-6)
                XCTAssertEqual(a.lon, b.longitude, accuracy: 1e-6)
            }
        }
    }

    /// The track as a whole: source, quality, DOP, UTC, rate, span, interpolation and no extrapolation.
    func testTrackFromClip() throws {
        let path = try clip()
        let found = GPSSource.discover(videoPath: path)
        XCTAssertEqual(found.warnings, [])
        XCTAssertEqual(found.origin, path)
        let track = try XCTUnwrap(found.track)
        XCTAssertEqual(track.source, .gpmf)
        XCTAssertEqual(track.fixes.count, 191)
        XCTAssertTrue(track.fixes.allSatisfy { $0.fix == .threeD })
        XCTAssertEqual(try XCTUnwrap(track.fixes.first?.dop), 1.54, accuracy: 1e-9) // GPSP 154
        // GPSU of the first sample: 2019-11-18 23:45:14.000 UTC (ExifTool's GPSDateTime for Doc1).
        XCTAssertEqual(try XCTUnwrap(track.fixes.first?.utc).timeIntervalSince1970, 1_574_120_714, accuracy: 1e-3)
        XCTAssertEqual(track.fixes.first?.latitude ?? 0, 33.12677, accuracy: 1e-9)
        XCTAssertEqual(track.fixes.first?.altitude ?? 0, -22.959, accuracy: 1e-9)
        XCTAssertEqual(track.fixes.first?.speed2D ?? 0, 1.046, accuracy: 1e-9)
        XCTAssertEqual(track.rate, 18.2, accuracy: 0.3, "GoPro GPS5 runs near 18 Hz")
        let span = try XCTUnwrap(track.timeSpan)
        XCTAssertEqual(span.lowerBound, 0)
        XCTAssertLessThan(span.upperBound, 10.6)
        XCTAssertGreaterThan(span.upperBound, 10.4)

        XCTAssertNil(track.position(at: -0.01))
        XCTAssertNil(track.position(at: span.upperBound + 0.01))
        // Halfway between the first two fixes: their mean, marked interpolated.
        let a = track.fixes[0], b = track.fixes[1]
        let mid = try XCTUnwrap(track.position(at: (a.time + b.time) / 2))
        XCTAssertTrue(mid.interpolated)
        XCTAssertEqual(mid.latitude, (a.latitude + b.latitude) / 2, accuracy: 1e-12)
        XCTAssertEqual(mid.longitude, (a.longitude + b.longitude) / 2, accuracy: 1e-12)
        XCTAssertEqual(mid.fix, .threeD)
    }
}
