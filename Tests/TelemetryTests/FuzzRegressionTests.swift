import Foundation
import Testing
@testable import Telemetry

/// Inputs that once crashed the process (found by `tools/fuzz`), replayed: each must be read or refused with a
/// `TelemetryError`, never trap.
@Suite("Telemetry inputs the fuzzer found")
struct TelemetryFuzzRegressionTests {
    @Test("a processing instruction without data (which Foundation's XML parser on Linux reads with strlen(NULL)) is an error, not a segfault",
          arguments: [
              // What `tools/fuzz gpx` found (Tests/FuzzCorpus/gpx/regress-processing-instruction-without-data.gpx).
              #"<?xml verve]="l versionon="1.1"><rk><trsion=<?xmISO-1?><gpx ve?rsis 1-01T12="l versionon="1.1"><rk><trks 1-01T12="l version=-0.1e""#,
              "<gpx><?target?><trk/></gpx>",
              "<?a?><?b?>",
          ])
    func processingInstructionWithoutData(_ text: String) {
        #expect(throws: TelemetryError.self) { try GPX.parse(Data(text.utf8)) }
    }

    @Test("processing instructions are dropped and the track around them still reads")
    func processingInstructionsAround() throws {
        let gpx = #"<?xml version="1.0" encoding="ISO-8859-1"?><?style?><gpx><trk><trkseg>"#
            + #"<trkpt lat="51.5" lon="-0.1"><time>2025-01-01T12:00:00Z</time><?empty?></trkpt>"#
            + #"<trkpt lat="51.5001" lon="-0.1001"><time>2025-01-01T12:00:01Z</time></trkpt></trkseg></trk></gpx>"#
        let track = try GPX.parse(Data(gpx.utf8))
        #expect(track.fixes.count == 2)
    }

    @Test("an unterminated processing instruction is refused")
    func unterminated() {
        #expect(throws: TelemetryError.self) { try GPX.parse(Data(#"<gpx><trk><?x <trkpt lat="1" lon="2"/></trk></gpx>"#.utf8)) }
    }
}
