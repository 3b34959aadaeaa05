import Foundation
import Testing
import TestKit
@testable import Models
import ONNX

/// Seeded random mutations of real weight files through both parsers: every input must either load or be
/// refused with a `WeightError`; a crash, a hang or any other error fails the run.
@Suite("Weight parser fuzzing")
struct WeightFuzzTests {
    struct Mutator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(max(bound, 1)))
        }

        /// One of: flip bytes, overwrite a run with random or extreme bytes, insert, delete, truncate.
        /// `hot` bytes at the front (headers, pickles) are hit more often than the bulk data.
        mutating func mutate(_ input: [UInt8], hot: Int) -> [UInt8] {
            var bytes = input
            let rounds = 1 + next(4)
            for _ in 0..<rounds where !bytes.isEmpty {
                let limit = next(10) < 8 ? min(hot, bytes.count) : bytes.count
                let at = next(limit)
                switch next(6) {
                case 0: bytes[at] ^= UInt8(1 << next(8))
                case 1: for i in at..<min(bytes.count, at + 1 + next(8)) { bytes[i] = UInt8(truncatingIfNeeded: next(256)) }
                case 2: for i in at..<min(bytes.count, at + 4) { bytes[i] = next(2) == 0 ? 0xFF : 0x00 }
                case 3: bytes.insert(contentsOf: (0..<(1 + next(16))).map { _ in UInt8(truncatingIfNeeded: next(256)) }, at: at)
                case 4: bytes.removeSubrange(at..<min(bytes.count, at + 1 + next(32)))
                default: bytes.removeSubrange(at..<bytes.count)
                }
            }
            return bytes
        }
    }

    enum Outcome { case loaded, refused }

    /// A refusal must be a `WeightError` that names the file in one line; anything else thrown (or a crash)
    /// fails the test. The parsers are typed `throws(WeightError)`, and `refusal` checks what the error says.
    func refusal(_ error: any Error, file: String) -> Outcome {
        guard let error = error as? WeightError else {
            Issue.record("refused with \(type(of: error)), not a WeightError: \(error)")
            return .refused
        }
        if error.file != file || error.message.isEmpty || error.description.contains("\n") {
            Issue.record("a refusal that does not name '\(file)' in one line: \(error.description)")
        }
        return .refused
    }

    func legacy(_ bytes: [UInt8]) -> Outcome? {
        do { _ = try TorchCheckpoint.loadLegacy(bytes: bytes, name: "fuzz"); return .loaded } catch { return refusal(error, file: "fuzz") }
    }

    func safetensors(_ bytes: [UInt8]) -> Outcome? {
        do {
            let file = try SafeTensorsFile(data: Data(bytes), name: "fuzz")
            _ = try file.allFloats()
            return .loaded
        } catch {
            return refusal(error, file: "fuzz")
        }
    }

    @Test("mutated legacy .pth, zip .pth and safetensors inputs load or are refused cleanly")
    func fuzzParsers() throws {
        // ROADWATCH_FUZZ_SCALE=N runs N times as many inputs (for longer runs by hand; CI uses 1).
        let scale = Int(ProcessInfo.processInfo.environment["ROADWATCH_FUZZ_SCALE"] ?? "") ?? 1
        let started = Date()
        var mutator = Mutator(state: 20261129)
        var counts: [String: (loaded: Int, refused: Int)] = [:]
        func record(_ kind: String, _ outcome: Outcome?) {
            var c = counts[kind, default: (0, 0)]
            if outcome == .loaded { c.loaded += 1 } else { c.refused += 1 }
            counts[kind] = c
        }
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let tinyLegacy = try [UInt8](Data(contentsOf: fixtures.appendingPathComponent("tiny_legacy.pth")))
        let tinyZip = try [UInt8](Data(contentsOf: fixtures.appendingPathComponent("tiny_zip.pth")))
        let espnet = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Shared.path("models/espnet-cityscapes/espnet_p_2_q_8.pth"))))
        let espnetSafe = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Shared.path("models/espnet-cityscapes/espnet_cityscapes_p2q8.safetensors"))))
        // The pickle part of the real checkpoint ends where its storages begin: fuzz it with a short data tail.
        let pickleEnd = 50_000

        for _ in 0..<(3000 * scale) { record("tiny legacy .pth", legacy(mutator.mutate(tinyLegacy, hot: tinyLegacy.count))) }
        for _ in 0..<(300 * scale) { record("ESPNet legacy .pth", legacy(mutator.mutate(espnet, hot: pickleEnd))) }
        for _ in 0..<(300 * scale) { record("ESPNet safetensors", safetensors(mutator.mutate(espnetSafe, hot: 20_000))) }

        let scratch = try ScratchDirectory("fuzzzip")
        let path = scratch.path("fuzz.pth")
        for _ in 0..<(1500 * scale) {
            try Data(mutator.mutate(tinyZip, hot: tinyZip.count)).write(to: URL(fileURLWithPath: path))
            do {
                _ = try TorchCheckpoint.load(path: path)
                record("tiny zip .pth", .loaded)
            } catch {
                record("tiny zip .pth", refusal(error, file: path))
            }
        }
        // ONNX files: the transformer fixture, and the ESPNetv2 graph whose weights are external data in the
        // safetensors file beside it (mutations reach the offsets, lengths and locations). A refusal is an
        // ONNXError naming the file in one line.
        let onnxFixtures = Shared.repositoryRoot.appendingPathComponent("Tests/ONNXTests/Fixtures")
        try FileManager.default.copyItem(atPath: Shared.path("models/espnetv2-cityscapes/espnetv2_s_2.0_city_1024x512.safetensors"),
                                         toPath: scratch.path("espnetv2_s_2.0_city_1024x512.safetensors"))
        for (fixture, kind, runs, hot) in [("segformer-tiny.onnx", "SegFormer-shaped .onnx", 200, 40_000),
                                           ("espnetv2-512x256.onnx", "ESPNetv2 .onnx (external data)", 200, 1_082_091)] {
            let original = try [UInt8](Data(contentsOf: onnxFixtures.appendingPathComponent(fixture)))
            let target = scratch.path("fuzz.onnx")
            for _ in 0..<(runs * scale) {
                try Data(mutator.mutate(original, hot: hot)).write(to: URL(fileURLWithPath: target))
                do {
                    _ = try ONNXGraph(path: target)
                    record(kind, .loaded)
                } catch {
                    if !error.description.contains(target) || error.description.contains("\n") {
                        Issue.record("an ONNX refusal that does not name the file in one line: \(error.description)")
                    }
                    record(kind, .refused)
                }
            }
        }
        let seconds = Date().timeIntervalSince(started)
        for (kind, c) in counts.sorted(by: { $0.key < $1.key }) {
            print("fuzz \(kind): \(c.loaded + c.refused) inputs, \(c.loaded) loaded, \(c.refused) refused")
        }
        print("fuzz: \(String(format: "%.1f", seconds)) s")
        #expect(counts.values.reduce(0) { $0 + $1.refused } > 1000, "mutations should mostly be refused")
        // Not a speed check: a parser gone quadratic on some mutation would blow far past this. Alone the run
        // takes about 20 s; in the whole suite on a 2-core CI machine it took 67.5 s once, past an earlier 60.
        #expect(scale > 1 || seconds < 600, "\(seconds) s")
    }
}
