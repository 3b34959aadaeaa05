import Foundation
import Testing
import TestKit
@testable import Models

@Suite("Weight files")
struct WeightFileTests {
    static let checkpoints = [
        ("models/espnetv2-cityscapes/espnetv2_s_2.0_city_1024x512.pth", "models/espnetv2-cityscapes/espnetv2_s_2.0_city_1024x512.safetensors"),
        ("models/espnet-cityscapes/espnet_p_2_q_8.pth", "models/espnet-cityscapes/espnet_cityscapes_p2q8.safetensors"),
    ]

    @Test("each legacy .pth and its safetensors copy load to identical tensors", arguments: checkpoints)
    func pthEqualsSafetensors(_ pair: (String, String)) throws {
        let pth = try TorchCheckpoint.load(path: Shared.path(pair.0)).filter { !$0.key.hasSuffix("num_batches_tracked") }
        let safe = try SafeTensorsFile(path: Shared.path(pair.1)).allFloats()
        #expect(pth.count > 100)
        #expect(Set(pth.keys) == Set(safe.keys))
        for (name, tensor) in safe {
            #expect(pth[name] == tensor, "\(name) differs")
        }
    }

    @Test("a pickle that would run os.system is refused, naming the global, and its payload never runs")
    func refusesHostilePickle() throws {
        let scratch = try ScratchDirectory("pickle")
        let marker = scratch.path("pwned")
        // protocol 2: GLOBAL os.system, ("touch <marker>",), REDUCE, STOP — what pickle.dumps makes of an
        // object whose __reduce__ returns (os.system, (cmd,)).
        for module in ["os\nsystem", "posix\nsystem", "builtins\neval", "subprocess\nPopen"] {
            var bytes: [UInt8] = [0x80, 0x02, 0x63] + Array("\(module)\n".utf8)
            let command = Array("touch \(marker)".utf8)
            bytes += [0x58] + withUnsafeBytes(of: UInt32(command.count).littleEndian, Array.init) + command
            bytes += [0x85, 0x52, 0x2E]
            let path = scratch.path("evil.pth")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect {
                _ = try TorchCheckpoint.load(path: path)
            } throws: { error in
                let text = "\(error)"
                return text.contains("refused global '\(module.replacingOccurrences(of: "\n", with: "."))'") && text.contains(path)
            }
            #expect(!FileManager.default.fileExists(atPath: marker))
        }
    }

    @Test("safetensors headers that lie are refused")
    func refusesLyingSafetensors() throws {
        func file(_ header: String, data: Int) -> Data {
            let json = Array(header.utf8)
            return Data(withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + [UInt8](repeating: 0, count: data))
        }
        let cases: [(String, Data)] = [
            ("size past the end", file(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: 8)),
            ("shape and bytes disagree", file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#, data: 16)),
            ("overlap", file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 16)),
            ("unknown dtype", file(#"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, data: 8)),
            ("header length past the file", Data([0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0x7B, 0x7D])),
            ("not JSON", file("nonsense", data: 0)),
            ("too short", Data([1, 2, 3])),
        ]
        for (label, data) in cases {
            #expect(throws: WeightError.self, "\(label)") { _ = try SafeTensorsFile(data: data, name: label) }
        }
        // And a valid one reads back.
        var good = file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: 0)
        good.append(contentsOf: withUnsafeBytes(of: Float(1.5).bitPattern.littleEndian, Array.init))
        good.append(contentsOf: withUnsafeBytes(of: Float(-2).bitPattern.littleEndian, Array.init))
        #expect(try SafeTensorsFile(data: good, name: "good").floats("a").values == [1.5, -2])
    }

    @Test("truncated checkpoints are refused with one clear error")
    func refusesTruncated() throws {
        let scratch = try ScratchDirectory("trunc")
        for (pth, safetensors) in Self.checkpoints.prefix(1) {
            for (source, fraction) in [(pth, 0.5), (pth, 0.02), (safetensors, 0.5)] {
                let whole = try Data(contentsOf: URL(fileURLWithPath: Shared.path(source)))
                let path = scratch.path("cut-" + (source as NSString).lastPathComponent)
                try whole.prefix(Int(Double(whole.count) * fraction)).write(to: URL(fileURLWithPath: path))
                #expect(throws: WeightError.self) {
                    if path.hasSuffix(".pth") { _ = try TorchCheckpoint.load(path: path) } else { _ = try SafeTensorsFile(path: path) }
                }
            }
        }
    }

    @Test("a checkpoint of another architecture is refused as such")
    func refusesWrongArchitecture() throws {
        let other = try SafeTensorsFile(path: Shared.path(Self.checkpoints[1].1))
        #expect {
            _ = try ESPNetv2(weights: WeightSet(file: "espnet.safetensors", tensors: try other.allFloats()))
        } throws: { error in
            "\(error)".contains("another architecture")
        }
        // One tensor with a wrong shape.
        let file = try SafeTensorsFile(path: Shared.path(Self.checkpoints[0].1))
        var tensors = try file.allFloats()
        tensors["bu_dec_l1.merge_layer.3.weight"] = WeightTensor(shape: [64, 10], values: [Float](repeating: 0, count: 640))
        #expect {
            _ = try ESPNetv2(weights: WeightSet(file: "edited", tensors: tensors))
        } throws: { error in
            "\(error)".contains("bu_dec_l1.merge_layer.3.weight") && "\(error)".contains("[64, 10]")
        }
    }
}

@Suite("PyTorch checkpoint formats")
struct CheckpointFormatTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// The values `Fixtures/make_fixtures.py` saved, worked out by hand.
    static let expected: [String: WeightTensor] = [
        "a": WeightTensor(shape: [2, 3], values: [0, 0.25, 0.5, 0.75, 1, 1.25]),
        "b": WeightTensor(shape: [3, 2], values: [0, 0.75, 0.25, 1, 0.5, 1.25]),
        "c": WeightTensor(shape: [4], values: [-1.5, 0, 2.25, Float(1e-3 as Double)]),
        "d": WeightTensor(shape: [2, 2], values: [0.5, -2, 3, 65504]),
        "e": WeightTensor(shape: [3], values: [0.75, 1, 1.25]),
        "bn.num_batches_tracked": WeightTensor(shape: [], values: [7]),
    ]

    @Test("zip (torch >= 1.6) and legacy files made by torch.save read to the saved values, views and dtypes included",
          arguments: ["tiny_zip.pth", "tiny_legacy.pth"])
    func readsBothFormats(_ name: String) throws {
        let tensors = try TorchCheckpoint.load(path: Self.fixtures.appendingPathComponent(name).path)
        #expect(tensors == Self.expected)
    }

    @Test("a zip checkpoint whose storage is missing or damaged is refused")
    func refusesBrokenZip() throws {
        let scratch = try ScratchDirectory("zip")
        let original = try Data(contentsOf: Self.fixtures.appendingPathComponent("tiny_zip.pth"))
        var damaged = original
        // Flip bytes of the stored values 0.25, 0.5 (float32 little-endian): the CRC check must catch it.
        let values = Data([0x00, 0x00, 0x80, 0x3E, 0x00, 0x00, 0x00, 0x3F])
        let at = try #require(damaged.range(of: values)).lowerBound
        for i in at..<(at + 8) { damaged[i] ^= 0xFF }
        let path = scratch.path("damaged.pth")
        try damaged.write(to: URL(fileURLWithPath: path))
        #expect(throws: WeightError.self) { _ = try TorchCheckpoint.load(path: path) }

        let cut = scratch.path("cut.pth")
        try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: cut))
        #expect(throws: WeightError.self) { _ = try TorchCheckpoint.load(path: cut) }
    }
}
