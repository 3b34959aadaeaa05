import Foundation
import Telemetry
import XCTest

/// The box reader on files built box by box: every table form, layout and failure it must handle.
final class MP4FileTests: XCTestCase {
    /// Samples whose bytes say which track and sample they are, so a misplaced offset shows.
    private func samples(_ track: Int, _ count: Int, size: Int = 10) -> [Data] {
        (0..<count).map { i in Data((0..<(size + i % 3)).map { UInt8(truncatingIfNeeded: track * 100 + i + $0 * 7) }) }
    }

    private func payloads(_ file: MP4File, _ track: MP4Track) throws -> [Data] {
        var result: [Data] = []
        try file.forEachSample(in: track) { _, _, data in result.append(data) }
        return result
    }

    /// Two interleaved tracks, several samples per chunk with a shorter last chunk, 64-bit chunk offsets, compact
    /// sample sizes and a 64-bit 'mdat' header.
    func testTablesOfEveryForm() throws {
        var builder = MovieBuilder()
        builder.largeMdat = true
        builder.tracks = [
            TrackSpec(handler: "meta", format: "gpmd", timescale: 90_000, samples: samples(1, 7),
                      durations: [90_000, 90_000, 45_000, 45_000, 90_000, 90_000, 90_000], samplesPerChunk: 3,
                      use64BitOffsets: true),
            TrackSpec(handler: "meta", format: "camm", timescale: 1000, samples: samples(2, 5),
                      durations: Array(repeating: 100, count: 5), samplesPerChunk: 2, compactSizes: true),
        ]
        let file = try MP4File(data: builder.build(), name: "forms.mov")
        XCTAssertEqual(file.trackProblems, [])
        XCTAssertEqual(file.tracks.map(\.format), ["gpmd", "camm"])
        XCTAssertEqual(file.tracks.map(\.id), [1, 2])
        XCTAssertEqual(file.movieTimescale, 1000)
        XCTAssertEqual(try payloads(file, file.tracks[0]), samples(1, 7))
        XCTAssertEqual(try payloads(file, file.tracks[1]), samples(2, 5))
        XCTAssertEqual(file.tracks[0].samples.map(\.time), [0, 1, 2, 2.5, 3, 4, 5])
        XCTAssertEqual(file.tracks[0].samples.map(\.duration), [1, 1, 0.5, 0.5, 1, 1, 1])
        XCTAssertEqual(file.tracks[1].samples.map(\.time), [0, 0.1, 0.2, 0.3, 0.4], accuracy: 1e-12)
    }

    /// 'moov' before 'mdat', and the 'mdat' with size 0: it runs to the end of the file.
    func testMoovFirstAndSizeZero() throws {
        var builder = MovieBuilder()
        builder.layout = .moovFirst
        builder.mdatSizeZero = true
        builder.tracks = [TrackSpec(samples: samples(1, 4), durations: [500, 500, 500, 500], samplesPerChunk: 2)]
        let data = builder.build()
        let file = try MP4File(data: data, name: "moov-first.mp4")
        XCTAssertEqual(try payloads(file, file.tracks[0]), samples(1, 4))
        XCTAssertEqual(file.size, UInt64(data.count))
    }

    /// An edit list that starts the media 0.25 s in: presentation = decode time - 0.25 s.
    func testEditListMediaTime() throws {
        var builder = MovieBuilder()
        builder.tracks = [TrackSpec(timescale: 1000, samples: samples(1, 3), durations: [500, 500, 500],
                                    mediaTimeEdit: 250)]
        let track = try XCTUnwrap(try MP4File(data: builder.build(), name: "edit.mov").tracks.first)
        XCTAssertEqual(track.editShift, -0.25)
        XCTAssertEqual(track.samples.map(\.time), [-0.25, 0.25, 0.75])
    }

    /// A recording cut off inside 'mdat' (moov written first): samples past the end are counted, not read.
    func testTruncatedMdatKeepsTheSamplesBeforeTheCut() throws {
        var builder = MovieBuilder()
        builder.layout = .moovFirst
        builder.tracks = [TrackSpec(samples: samples(1, 6, size: 100), durations: Array(repeating: 1000, count: 6))]
        let data = builder.build()
        let cut = data.prefix(data.count - 250)
        let file = try MP4File(data: cut, name: "cut.mov")
        let track = try XCTUnwrap(file.tracks.first)
        XCTAssertEqual(track.samples.count, 3)
        XCTAssertEqual(track.samplesPastEnd, 3)
        XCTAssertEqual(try payloads(file, track), Array(samples(1, 6, size: 100).prefix(3)))
    }

    /// A track whose size table claims more entries than it holds is left out with one line naming the file
    /// and the track; the other track is still read.
    func testCorruptTrackIsOneLineAndSpared() throws {
        var builder = MovieBuilder()
        builder.tracks = [TrackSpec(samples: samples(1, 3), durations: [1, 1, 1]),
                          TrackSpec(format: "camm", samples: samples(2, 3), durations: [1, 1, 1])]
        var data = builder.build()
        // The first 'stsz' sample count (after version/flags and the uniform size) becomes 1000.
        let stsz = try XCTUnwrap(data.range(of: Data("stsz".utf8)))
        data.replaceSubrange((stsz.upperBound + 8)..<(stsz.upperBound + 12), with: [0, 0, 0x03, 0xe8])
        let file = try MP4File(data: data, name: "corrupt.mov")
        XCTAssertEqual(file.tracks.map(\.format), ["camm"])
        XCTAssertEqual(file.trackProblems.count, 1)
        let line = file.trackProblems[0].description
        XCTAssertTrue(line.hasPrefix("corrupt.mov: track 1: 'stsz' lists 1000 samples"), line)
        XCTAssertFalse(line.contains("\n"))
    }

    func testNotAnMP4() {
        XCTAssertThrowsError(try MP4File(data: Data("$GPRMC,hello\n".utf8), name: "x.nmea")) { error in
            XCTAssertTrue(String(describing: error).hasPrefix("x.nmea: not an MP4/MOV file"), "\(error)")
        }
        XCTAssertThrowsError(try MP4File(data: Data(), name: "empty.mp4")) { error in
            XCTAssertEqual(String(describing: error), "empty.mp4: not an MP4/MOV file (too short)")
        }
        XCTAssertThrowsError(try MP4File(path: "/nonexistent/video.mp4")) { error in
            XCTAssertEqual(String(describing: error), "/nonexistent/video.mp4: no such file")
        }
    }

    /// mdat first and the file cut before 'moov': the error says the recording was not finished.
    func testMissingMoov() throws {
        var builder = MovieBuilder()
        builder.tracks = [TrackSpec(samples: samples(1, 3, size: 50), durations: [1, 1, 1])]
        let data = builder.build()
        XCTAssertThrowsError(try MP4File(data: data.prefix(100), name: "unfinished.mp4")) { error in
            XCTAssertEqual(String(describing: error),
                           "unfinished.mp4: no 'moov' box: 'mdat' at offset 20 runs past the end of the file (truncated recording?)")
        }
    }
}
