import Foundation
import Testing
import TestKit
import Tensors
@testable import Models

/// ESPNetv2 against the PyTorch reference tensors in ../shared (tolerances from its README).
@Suite("ESPNetv2 equals its PyTorch reference")
struct ESPNetv2ReferenceTests {
    static let folder = "models/espnetv2-cityscapes"

    static func model() throws -> ESPNetv2 {
        let file = try SafeTensorsFile(path: Shared.path("\(folder)/espnetv2_s_2.0_city_1024x512.safetensors"))
        return try ESPNetv2(weights: WeightSet(file: file.path, tensors: try file.allFloats()))
    }

    static func tensor(_ reference: SafeTensorsFile, _ name: String) throws -> Tensor {
        let t = try reference.floats(name)
        let shape = t.shape.first == 1 ? Array(t.shape.dropFirst()) : t.shape
        return Tensor(shape: shape, values: t.values)
    }

    @Test("512x256: every block, both feature levels, the logits and the argmax")
    func matchesAt512x256() throws {
        let reference = try SafeTensorsFile(path: Shared.path("\(Self.folder)/reference/ref_512x256.safetensors"))
        let model = try Self.model()
        let input = try Self.tensor(reference, "input")
        var captured: [String: Tensor] = [:]
        let encoded = model.backbone(input, capture: { name, t in captured[name] = t.copy() })
        let logits = model.decoder(encoded, capture: { name, t in captured[name] = t.copy() })

        // Every top-level block: its bottom-left crop.
        var checked = 0
        for name in reference.names where !["input", "logits", "argmax", "features_l3", "features_l4", "maxlogit19_pool16", "maxlogit19_pool8"].contains(name) {
            let expected = try Self.tensor(reference, name)
            let full = try #require(captured[name], "block \(name) was not captured")
            let crop = full.crop(rows: (full.height * 3 / 4)..<full.height, cols: 0..<(full.width / 4))
            #expect(crop.shape == expected.shape, "\(name)")
            let scale = max(1, maxAbs(expected))
            #expect(maxAbsDifference(crop, expected) <= 1e-3 * scale, "\(name): max |Δ| \(maxAbsDifference(crop, expected))")
            checked += 1
        }
        #expect(checked >= 25)

        let l3 = try Self.tensor(reference, "features_l3")
        let l4 = try Self.tensor(reference, "features_l4")
        #expect(maxAbsDifference(try #require(encoded.maps["l3"]), l3) <= 1e-3 * maxAbs(l3))
        #expect(maxAbsDifference(encoded.features, l4) <= 1e-3 * maxAbs(l4))
        let expectedLogits = try Self.tensor(reference, "logits")
        let logitError = maxAbsDifference(logits, expectedLogits)
        #expect(logitError <= 1e-3 * maxAbs(expectedLogits), "logits max |Δ| \(logitError)")

        let argmax = Ops.argmax(logits)
        let expectedArgmax = try reference.int32s("argmax").values
        let agree = zip(argmax, expectedArgmax).filter { $0 == $1 }.count
        #expect(Double(agree) / Double(argmax.count) >= 0.999, "argmax agrees on \(agree) of \(argmax.count)")
    }
}

func maxAbs(_ t: Tensor) -> Float { t.buffer.reduce(0) { max($0, abs($1)) } }

func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    guard a.shape == b.shape else { return .infinity }
    var worst: Float = 0
    for i in 0..<a.count { worst = max(worst, abs(a.data[i] - b.data[i])) }
    return worst
}
