import Foundation
import Testing
import TestKit
import Tensors
@testable import Models
import VideoIO

/// Both architectures against the PyTorch reference tensors in ../shared (tolerances from their READMEs:
/// max |Δ| ≤ 1e-3 · max|reference| for blocks, features and logits; argmax equal on ≥ 99.9 % of pixels).
@Suite("Models equal their PyTorch references")
struct ModelReferenceTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var folder: String
        var weights: String
        var featureName: String
        var extraFeature: String?
        var testDescription: String { folder }
    }

    static let cases = [
        Case(folder: "models/espnetv2-cityscapes", weights: "espnetv2_s_2.0_city_1024x512.safetensors",
             featureName: "features_l4", extraFeature: "features_l3"),
        Case(folder: "models/espnet-cityscapes", weights: "espnet_cityscapes_p2q8.safetensors",
             featureName: "features", extraFeature: nil),
    ]

    static func model(_ c: Case) throws -> any SegmentationModel {
        let file = try SafeTensorsFile(path: Shared.path("\(c.folder)/\(c.weights)"))
        let weights = WeightSet(file: file.path, tensors: try file.allFloats())
        return c.folder.contains("v2") ? try ESPNetv2(weights: weights) : try ESPNet(weights: weights)
    }

    static func tensor(_ reference: SafeTensorsFile, _ name: String) throws -> Tensor {
        let t = try reference.floats(name)
        let shape = t.shape.first == 1 ? Array(t.shape.dropFirst()) : t.shape
        return Tensor(shape: shape, values: t.values)
    }

    static let wholeTensors: Set<String> = ["input", "logits", "argmax", "features", "features_l3", "features_l4", "maxlogit19_pool16", "maxlogit19_pool8"]

    @Test("512x256: every block, the features, the logits and the argmax", arguments: cases)
    func matchesAt512x256(_ c: Case) throws {
        let reference = try SafeTensorsFile(path: Shared.path("\(c.folder)/reference/ref_512x256.safetensors"))
        let model = try Self.model(c)
        let input = try Self.tensor(reference, "input")
        var captured: [String: Tensor] = [:]
        let encoded = model.backbone(input, capture: { name, t in captured[name] = t.copy() })
        let logits = model.decoder(encoded, capture: { name, t in captured[name] = t.copy() })

        var checked = 0
        for name in reference.names where !Self.wholeTensors.contains(name) {
            let expected = try Self.tensor(reference, name)
            let full = try #require(captured[name], "block \(name) was not captured")
            let crop = full.crop(rows: (full.height * 3 / 4)..<full.height, cols: 0..<(full.width / 4))
            #expect(crop.shape == expected.shape, "\(name)")
            let error = maxAbsDifference(crop, expected)
            #expect(error <= 1e-3 * max(1, maxAbs(expected)), "\(name): max |Δ| \(error)")
            checked += 1
        }
        #expect(checked >= 20)

        let features = try Self.tensor(reference, c.featureName)
        #expect(maxAbsDifference(encoded.features, features) <= 1e-3 * maxAbs(features))
        if let extra = c.extraFeature {
            let l3 = try Self.tensor(reference, extra)
            #expect(maxAbsDifference(try #require(encoded.maps["l3"]), l3) <= 1e-3 * maxAbs(l3))
        }
        let expectedLogits = try Self.tensor(reference, "logits")
        let logitError = maxAbsDifference(logits, expectedLogits)
        #expect(logitError <= 1e-3 * maxAbs(expectedLogits), "logits max |Δ| \(logitError)")
        print("\(c.folder) 512x256: logits max |Δ| \(logitError) (bound \(1e-3 * maxAbs(expectedLogits)))")

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
    for i in 0..<a.count { worst = max(worst, abs(a.buffer[i] - b.buffer[i])) }
    return worst
}

@Suite("From the PNG to the logits at the operating size")
struct OperatingSizeTests {
    static let v2 = Normalization(order: .rgb, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scaling: .divideFirst)
    static let v1 = Normalization(order: .bgr, mean: [72.3923111, 82.90893555, 73.15840149],
                                  std: [45.3192215, 46.15289307, 44.91483307], scaling: .divideLast)

    @Test("ESPNetv2 at 1024x512 from frame100.png: input, features, logits crops, full argmax and confidence grid")
    func espnetv2At1024x512() throws {
        let c = ModelReferenceTests.cases[0]
        let reference = try SafeTensorsFile(path: Shared.path("\(c.folder)/reference/ref_1024x512.safetensors"))
        let image = try StillImage.readRGB(Shared.path("\(c.folder)/reference/frame100.png"))
        let input = Preprocessor(normalization: Self.v2).tensor(rgb: image.samples, sourceWidth: image.width,
                                                                sourceHeight: image.height, width: 1024, height: 512)
        let expectedInput = try ModelReferenceTests.tensor(reference, "input")
        #expect(maxAbsDifference(input.crop(rows: 384..<512, cols: 0..<256), expectedInput) <= 1e-4)

        let model = try ModelReferenceTests.model(c)
        let (features, logits) = model.forward(input)
        let expectedFeatures = try ModelReferenceTests.tensor(reference, "features_l4")
        #expect(maxAbsDifference(features.crop(rows: 24..<32, cols: 0..<16), expectedFeatures) <= 1e-3 * maxAbs(expectedFeatures))
        let expectedLogits = try ModelReferenceTests.tensor(reference, "logits")
        let error = maxAbsDifference(logits.crop(rows: 384..<512, cols: 0..<256), expectedLogits)
        #expect(error <= 1e-3 * maxAbs(expectedLogits), "logits max |Δ| \(error)")
        print("espnetv2 1024x512 from PNG: logits crop max |Δ| \(error)")

        let argmax = Ops.argmax(logits)
        let expectedArgmax = try reference.int32s("argmax").values
        let agree = zip(argmax, expectedArgmax).filter { $0 == $1 }.count
        #expect(Double(agree) / Double(argmax.count) >= 0.999, "argmax agrees on \(agree) of \(argmax.count)")
    }

    @Test("ESPNet preprocessing (BGR, divide by 255 last) reproduces the stored input from frame100.png")
    func espnetInput() throws {
        let folder = ModelReferenceTests.cases[1].folder
        let reference = try SafeTensorsFile(path: Shared.path("\(folder)/reference/ref_512x256.safetensors"))
        let image = try StillImage.readRGB(Shared.path("\(folder)/reference/frame100.png"))
        let input = Preprocessor(normalization: Self.v1).tensor(rgb: image.samples, sourceWidth: image.width,
                                                                sourceHeight: image.height, width: 512, height: 256)
        #expect(maxAbsDifference(input, try ModelReferenceTests.tensor(reference, "input")) <= 1e-5)
    }
}
