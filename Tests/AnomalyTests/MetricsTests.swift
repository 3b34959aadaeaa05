import Foundation
import Testing
import TestKit
@testable import Anomaly

@Suite("Metrics equal scikit-learn's")
struct MetricsTests {
    struct Expected: Decodable {
        var pixels: Int, positives: Int, negatives: Int
        var AP: Double, FPR95: Double, AUROC: Double
    }

    @Test("AP, FPR95 and AUROC to 1e-9 on the reference arrays", arguments: ["tiny", "continuous", "ties", "quantised"])
    func matchesReference(_ name: String) throws {
        let folder = URL(fileURLWithPath: Shared.path("data/metrics_reference"))
        let expected = try JSONDecoder().decode([String: Expected].self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))[name]!
        let scoreBytes = try Data(contentsOf: folder.appendingPathComponent("\(name).scores.f32"))
        let labels = try [UInt8](Data(contentsOf: folder.appendingPathComponent("\(name).labels.u8")))
        let scores = scoreBytes.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        #expect(scores.count == expected.pixels && labels.count == expected.pixels)
        let pool = PixelPool(methods: ["s"])
        pool.add(labels: labels, scores: [scores])
        let m = try #require(pool.metrics()["s"])
        #expect(m.positives == expected.positives && m.negatives == expected.negatives)
        // expected.json's AP for "continuous" (0.4309101291427238) is 1.8e-8 away from what scikit-learn 1.2.1
        // computes on the stored float32 scores (0.4309101113116328, run here with Debian's sklearn): the
        // float32 file has 248 ties that the scores it was computed from evidently did not have. Checked
        // against the value scikit-learn gives on the stored arrays; the other three cases use expected.json.
        let expectedAP = name == "continuous" ? 0.4309101113116328 : expected.AP
        #expect(abs(m.ap - expectedAP) < 1e-9, "AP \(m.ap) vs \(expectedAP)")
        #expect(abs(m.fpr95 - expected.FPR95) < 1e-9, "FPR95 \(m.fpr95) vs \(expected.FPR95)")
        #expect(abs(m.auroc - expected.AUROC) < 1e-9, "AUROC \(m.auroc) vs \(expected.AUROC)")
    }

    @Test("pooling two halves gives the metrics of the whole")
    func poolingIsConcatenation() throws {
        let scores: [Float] = [0.9, 0.1, 0.8, 0.4, 0.4, 0.7, 0.2, 0.6]
        let labels: [UInt8] = [2, 0, 2, 0, 2, 255, 0, 0]
        let whole = PixelPool(methods: ["s"])
        whole.add(labels: labels, scores: [scores])
        let halves = PixelPool(methods: ["s"])
        halves.add(labels: Array(labels[..<4]), scores: [Array(scores[..<4])])
        halves.add(labels: Array(labels[4...]), scores: [Array(scores[4...])])
        #expect(whole.metrics() == halves.metrics())
        #expect(whole.count == 7)
        // By hand: descending 0.9(+) 0.8(+) 0.6(-) 0.4(+,-) 0.2(-) 0.1(-): AP = 1/3 + 1/3 + 1/3 * 3/5.
        #expect(abs(try #require(whole.metrics()["s"]).ap - (2.0 / 3 + 1.0 / 5)) < 1e-12)
    }
}
