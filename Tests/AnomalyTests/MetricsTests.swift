import Foundation
import Testing
import TestKit
import VideoIO
@testable import Anomaly

@Suite("Metrics equal scikit-learn's")
struct MetricsTests {
    struct Expected: Decodable {
        var pixels: Int, positives: Int, negatives: Int
        var AP: Double, FPR95: Double, AUROC: Double
    }

    /// The reference case `name`: its scores, labels and scikit-learn's figures.
    func reference(_ name: String) throws -> (scores: [Float], labels: [UInt8], expected: Expected) {
        let folder = URL(fileURLWithPath: Shared.path("data/metrics_reference"))
        let expected = try JSONDecoder().decode([String: Expected].self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))[name]!
        let scoreBytes = try Data(contentsOf: folder.appendingPathComponent("\(name).scores.f32"))
        let labels = try [UInt8](Data(contentsOf: folder.appendingPathComponent("\(name).labels.u8")))
        let scores = scoreBytes.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        #expect(scores.count == expected.pixels && labels.count == expected.pixels)
        return (scores, labels, expected)
    }

    @Test("AP, FPR95 and AUROC to 1e-9 on the reference arrays, in memory and spilled to disk in small runs",
          arguments: ["tiny", "continuous", "ties", "quantised"], [nil, 1_000, 7])
    func matchesReference(_ name: String, chunk: Int?) throws {
        let (scores, labels, expected) = try reference(name)
        let pool = chunk.map { PixelPool(methods: ["s"], chunkPixels: $0) } ?? PixelPool(methods: ["s"])
        // Added in pieces of uneven length, as frames would be, so runs end in the middle of an image.
        var start = 0
        while start < scores.count {
            let end = min(scores.count, start + 4_099)
            try pool.add(labels: Array(labels[start..<end]), scores: [Array(scores[start..<end])])
            start = end
        }
        if let chunk, scores.count > chunk { #expect(pool.spilledBytes > 0) } else { #expect(pool.spilledBytes == 0) }
        let m = try #require(try pool.metrics()["s"])
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
        try whole.add(labels: labels, scores: [scores])
        let halves = PixelPool(methods: ["s"])
        try halves.add(labels: Array(labels[..<4]), scores: [Array(scores[..<4])])
        try halves.add(labels: Array(labels[4...]), scores: [Array(scores[4...])])
        #expect(try whole.metrics() == halves.metrics())
        #expect(whole.count == 7)
        // By hand: descending 0.9(+) 0.8(+) 0.6(-) 0.4(+,-) 0.2(-) 0.1(-): AP = 1/3 + 1/3 + 1/3 * 3/5.
        #expect(abs(try #require(try whole.metrics()["s"]).ap - (2.0 / 3 + 1.0 / 5)) < 1e-12)
        // A tie split across two runs on disk (0.4+ in one, 0.4- in the next) is still one threshold.
        let spilled = PixelPool(methods: ["s"], chunkPixels: 2)
        try spilled.add(labels: labels, scores: [scores])
        #expect(spilled.spilledBytes > 0)
        #expect(try spilled.metrics() == whole.metrics())
    }

    @Test("several methods spill and merge independently, each equal to its own sort")
    func severalMethodsSpilled() throws {
        var generator = SystemRandomNumberGenerator()
        let n = 50_000
        let labels = (0..<n).map { _ in [UInt8(0), 0, 0, 2, 255].randomElement(using: &generator)! }
        // A quantised score (many ties) and a continuous one.
        let a = (0..<n).map { _ in Float(Int.random(in: 0..<40, using: &generator)) / 4 }
        let b = (0..<n).map { _ in Float.random(in: -3...3, using: &generator) }
        let memory = PixelPool(methods: ["a", "b"])
        let disk = PixelPool(methods: ["a", "b"], chunkPixels: 3_001)
        for start in stride(from: 0, to: n, by: 9_000) {
            let end = min(n, start + 9_000)
            try memory.add(labels: Array(labels[start..<end]), scores: [Array(a[start..<end]), Array(b[start..<end])])
            try disk.add(labels: Array(labels[start..<end]), scores: [Array(a[start..<end]), Array(b[start..<end])])
        }
        #expect(memory.spilledBytes == 0 && disk.spilledBytes > 0)
        let kept = labels.indices.filter { labels[$0] != 255 }
        let positive = kept.map { UInt8(labels[$0] == 2 ? 1 : 0) }
        #expect(try disk.metrics() == memory.metrics())
        #expect(try disk.metrics()["a"] == DetectionMetrics.compute(scores: kept.map { a[$0] }, positive: positive))
        #expect(try disk.metrics()["b"] == DetectionMetrics.compute(scores: kept.map { b[$0] }, positive: positive))
    }

    @Test("a full disk while spilling: ENOSPC, one line naming the folder",
          .enabled(if: SmallDisk.available, "needs root to mount a small tmpfs (CI runs as root)"))
    func fullDisk() throws {
        let disk = try SmallDisk(megabytes: 1)
        // One run of 2^18 keys is 2 MB: the first spill cannot fit.
        let pool = PixelPool(methods: ["s"], chunkPixels: 1 << 18, spillDirectory: URL(fileURLWithPath: disk.path))
        let labels = [UInt8](repeating: 0, count: 1 << 18), scores = (0..<(1 << 18)).map { Float($0) }
        do {
            try pool.add(labels: labels, scores: [scores])
            Issue.record("a 2 MB run went into a 1 MB disk")
        } catch {
            #expect(error.errno == ENOSPC)
            let line = error.describe(naming: describeErrno)
            #expect(line.contains("No space left on device (ENOSPC)") && line.contains(disk.path) && !line.contains("\n"), "\(line)")
        }
    }

    @Test("a temporary folder that cannot be written is one clear error")
    func unwritableSpillFolder() throws {
        let pool = PixelPool(methods: ["s"], chunkPixels: 2, spillDirectory: URL(fileURLWithPath: "/nonexistent-roadwatch-folder"))
        #expect(throws: PixelPoolError.self) { try pool.add(labels: [0, 2, 0], scores: [[0.1, 0.9, 0.2]]) }
    }
}
