import Foundation
import Models
import Tensors
@testable import ONNX
import Testing
import TestKit

@Suite("ONNX models on roadwatch's tensor operations")
struct ONNXRunnerTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/espnet-512x256.onnx").path

    /// The reference ESPNet exported from PyTorch (tools/onnx/make_fixtures.py), run through the ONNX path,
    /// against the PyTorch reference logits in ../shared.
    @Test("ESPNet exported from PyTorch: logits equal the PyTorch reference, argmax ≥ 99.9 %")
    func espnetMatchesReference() throws {
        let reference = try SafeTensorsFile(path: Shared.path("models/espnet-cityscapes/reference/ref_512x256.safetensors"))
        let input = try reference.floats("input"), expected = try reference.floats("logits")
        let graph = try ONNXGraph(path: Self.fixture)
        let prepared = try PreparedGraph(graph, inputShape: [1, 3, 256, 512], keep: ["features", "logits"])
        let outputs = try prepared.run(Value(shape: [1, 3, 256, 512], floats: input.values), names: ["features", "logits"])
        let logits = try #require(outputs["logits"]), features = try #require(outputs["features"])
        let expectedFeatures = try reference.floats("features")
        #expect(features.floats.count == expectedFeatures.values.count)
        let featureScale = expectedFeatures.values.map(abs).max() ?? 1
        let featureError = zip(features.floats, expectedFeatures.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(featureError <= 1e-3 * max(1, featureScale), "features max |Δ| \(featureError) for values up to \(featureScale)")
        #expect(logits.shape.suffix(3) == expected.shape.suffix(3), "\(logits.shape) vs \(expected.shape)")
        let scale = expected.values.map(abs).max() ?? 1
        let error = zip(logits.floats, expected.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(error <= 1e-3 * max(1, scale), "max |Δ| \(error) for values up to \(scale)")
        let classes = expected.shape[expected.shape.count - 3], plane = logits.count / classes
        var agree = 0
        for p in 0..<plane {
            func argmax(_ v: [Float]) -> Int { (0..<classes).max { v[$0 * plane + p] < v[$1 * plane + p] }! }
            if argmax(logits.floats) == argmax(expected.values) { agree += 1 }
        }
        #expect(Double(agree) / Double(plane) >= 0.999, "argmax agrees on \(agree) of \(plane)")
        print("espnet via ONNX: features max |Δ| \(featureError) (up to \(featureScale)), logits max |Δ| \(error) (up to \(scale)), argmax \(agree) of \(plane)")
    }

    /// ESPNetv2 exported from the PyTorch reference; the graph's weights are external data into ../shared's
    /// safetensors file (the fixture would be 3.2 MB with them), copied beside the graph here. Compared with
    /// the native Swift ESPNetv2 and with the PyTorch reference tensors at 512x256.
    @Test("ESPNetv2 exported from PyTorch equals the native model and the reference (weights as external data)")
    func espnetv2MatchesNative() async throws {
        let weights = Shared.path("models/espnetv2-cityscapes/espnetv2_s_2.0_city_1024x512.safetensors")
        let scratch = try ScratchDirectory("onnx-v2")
        let fixtures = URL(fileURLWithPath: Self.fixture).deletingLastPathComponent()
        for name in ["espnetv2-512x256.onnx", "espnetv2-512x256.json"] {
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent(name), to: scratch.url.appendingPathComponent(name))
        }
        // Without the weights beside it the graph is refused in one line naming what is missing.
        let missing = #expect(throws: (any Error).self) { try ModelLoader.loadONNX(scratch.url.appendingPathComponent("espnetv2-512x256.onnx")) }
        #expect("\(missing!)".contains("external data 'espnetv2_s_2.0_city_1024x512.safetensors'") && !"\(missing!)".contains("\n"), "\(missing!)")
        try FileManager.default.copyItem(atPath: weights, toPath: scratch.path("espnetv2_s_2.0_city_1024x512.safetensors"))

        let onnx = try ModelLoader.loadONNX(scratch.url.appendingPathComponent("espnetv2-512x256.onnx"))
        #expect(onnx.network.featureStride == 16 && onnx.network.outputChannels == 20)
        let native = try ESPNetv2(weights: WeightSet(file: weights, tensors: try SafeTensorsFile(path: weights).allFloats()))
        let reference = try SafeTensorsFile(path: Shared.path("models/espnetv2-cityscapes/reference/ref_512x256.safetensors"))
        let input = Tensor(shape: [3, 256, 512], values: try reference.floats("input").values)
        let viaONNX = onnx.network.forward(input), viaSwift = native.forward(input)

        func maxError(_ a: [Float], _ b: [Float]) -> Float { a.count == b.count ? zip(a, b).map { abs($0 - $1) }.max()! : .infinity }
        let expectedFeatures = try reference.floats("features_l4").values, expectedLogits = try reference.floats("logits").values
        let featureScale = expectedFeatures.map(abs).max()!, logitScale = expectedLogits.map(abs).max()!
        let features = (reference: maxError(viaONNX.features.array, expectedFeatures), native: maxError(viaONNX.features.array, viaSwift.features.array))
        let logits = (reference: maxError(viaONNX.logits.array, expectedLogits), native: maxError(viaONNX.logits.array, viaSwift.logits.array))
        #expect(features.reference <= 1e-3 * max(1, featureScale) && features.native <= 1e-3 * max(1, featureScale), "\(features)")
        #expect(logits.reference <= 1e-3 * max(1, logitScale) && logits.native <= 1e-3 * max(1, logitScale), "\(logits)")
        let plane = 256 * 512, classes = 20
        let a = viaONNX.logits.array, b = viaSwift.logits.array
        var agree = 0
        for p in 0..<plane {
            func argmax(_ v: [Float]) -> Int { (0..<classes).max { v[$0 * plane + p] < v[$1 * plane + p] }! }
            if argmax(a) == argmax(b) { agree += 1 }
        }
        #expect(Double(agree) / Double(plane) >= 0.999, "argmax agrees on \(agree) of \(plane)")
        print("espnetv2 via ONNX: features max |Δ| \(features.reference) from the reference, \(features.native) from native (up to \(featureScale)); logits \(logits.reference) / \(logits.native) (up to \(logitScale)); argmax equals native on \(agree) of \(plane)")
    }

    static func floats(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)"))
        return data.withUnsafeBytes { bytes in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    /// Overlap patch embedding, attention with spatial reduction (MatMul, Softmax, LayerNormalization),
    /// Mix-FFN (depthwise conv, GELU as Erf), an all-MLP decoder with bilinear Resize, and the shape
    /// arithmetic (Shape, Gather, Concat, Reshape) that the export records, folded at preparation.
    @Test("a SegFormer-shaped transformer exported from PyTorch at opset 17 equals PyTorch's logits")
    func segformerMatchesPyTorch() throws {
        let graph = try ONNXGraph(path: URL(fileURLWithPath: Self.fixture).deletingLastPathComponent()
            .appendingPathComponent("segformer-tiny.onnx").path)
        let prepared = try PreparedGraph(graph, inputShape: [1, 3, 128, 256], keep: ["logits"])
        let input = try Self.floats("segformer-tiny.input.bin"), expected = try Self.floats("segformer-tiny.logits.bin")
        let logits = try #require(try prepared.run(Value(shape: [1, 3, 128, 256], floats: input), names: ["logits"])["logits"])
        #expect(logits.shape == [1, 19, 32, 64])
        let scale = expected.map(abs).max() ?? 1
        let error = zip(logits.floats, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(error <= 1e-4 * max(1, scale), "max |Δ| \(error) for values up to \(scale)")
        #expect(prepared.plannedNodes < graph.nodes.count, "the shape arithmetic is folded")
        let spent = try prepared.profile(Value(shape: [1, 3, 128, 256], floats: input))
        #expect(Set(spent.map { String($0.op.prefix { $0 != " " && $0 != "+" }) }).isSubset(of: Set(graph.nodes.map(\.op))) && spent.contains { $0.op == "MatMul" })
        print("segformer-tiny per operator (ms): " + spent.prefix(6).map { "\($0.op) \(String(format: "%.2f", $0.seconds * 1000))" }.joined(separator: ", "))
        print("segformer-tiny: max |Δ| \(error) (logits up to \(scale)); \(prepared.plannedNodes) of \(graph.nodes.count) nodes run per frame")
    }

    @Test("preparing folds what does not depend on the image")
    func folding() throws {
        let graph = try ONNXGraph(path: Self.fixture)
        let prepared = try PreparedGraph(graph, inputShape: [1, 3, 256, 512], keep: ["logits"])
        #expect(prepared.plannedNodes <= graph.nodes.count)
        #expect(prepared.shapes["logits"] == [1, 20, 256, 512])
        #expect(throws: ONNXError.self) { try PreparedGraph(graph, inputShape: [1, 3, 256, 512], keep: ["no-such-value"]) }
    }

    /// Writes `bytes` as a model file and expects loading to fail with a one-line message containing `problem`.
    func refused(_ bytes: Data, _ problem: String, extra: [String: Data] = [:]) throws {
        let scratch = try ScratchDirectory("onnxbad")
        let path = scratch.path("model.onnx")
        try bytes.write(to: URL(fileURLWithPath: path))
        for (name, data) in extra { try data.write(to: URL(fileURLWithPath: scratch.path(name))) }
        do {
            _ = try ONNXGraph(path: path)
            Issue.record("loaded a model that should be refused (\(problem))")
        } catch {
            #expect(error.description.contains(problem), "\(error.description)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("truncated, garbage and empty files are refused in one line")
    func malformed() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: Self.fixture))
        try refused(good.prefix(good.count / 2), "is not an ONNX model")
        try refused(Data("not a model at all".utf8), "is not an ONNX model")
        try refused(Data(), "is empty")
        var random = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            var corrupted = good
            for _ in 0..<16 { corrupted[Int.random(in: 0..<corrupted.count, using: &random)] = UInt8.random(in: 0...255, using: &random) }
            // Either refused in one line or loaded: never a crash.
            let scratch = try ScratchDirectory("onnxfuzz")
            try corrupted.write(to: URL(fileURLWithPath: scratch.path("m.onnx")))
            do {
                let graph = try ONNXGraph(path: scratch.path("m.onnx"))
                _ = try? PreparedGraph(graph, inputShape: [1, 3, 256, 512], keep: ["logits"])
            } catch {
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test("lying sizes, huge dimensions, external data outside the folder and unknown operators are refused")
    func hostile() throws {
        try refused(HandMade.model(weights: [HandMade.tensor("w", dims: [4, 4], floats: [1, 2, 3])]), "12 bytes for 16 floats")
        try refused(HandMade.model(weights: [HandMade.tensor("w", dims: [1 << 40, 1 << 40], floats: [])]), "dimensions")
        try refused(HandMade.model(weights: [HandMade.tensor("w", dims: [1 << 20, 1 << 20], floats: [])]), "too large")
        try refused(HandMade.model(weights: [HandMade.external("w", dims: [4], location: "../../etc/passwd")]), "outside the model's folder")
        try refused(HandMade.model(weights: [HandMade.external("w", dims: [4], location: "/etc/passwd")]), "outside the model's folder")
        try refused(HandMade.model(op: "NonMaxSuppression"), "operator NonMaxSuppression is not supported")
        // External data inside the folder is read.
        let scratch = try ScratchDirectory("onnxext")
        try Data(repeating: 0, count: 16).write(to: URL(fileURLWithPath: scratch.path("w.bin")))
        try HandMade.model(weights: [HandMade.external("w", dims: [4], location: "w.bin")]).write(to: URL(fileURLWithPath: scratch.path("m.onnx")))
        _ = try ONNXGraph(path: scratch.path("m.onnx"))
    }
}

/// Tiny ONNX files written field by field (protobuf wire format), for the refusal cases.
enum HandMade {
    static func varint(_ value: UInt64) -> Data {
        var v = value, out = Data()
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }
    static func field(_ number: Int, _ payload: Data) -> Data { varint(UInt64(number << 3 | 2)) + varint(UInt64(payload.count)) + payload }
    static func field(_ number: Int, int value: Int64) -> Data { varint(UInt64(number << 3)) + varint(UInt64(bitPattern: value)) }
    static func string(_ number: Int, _ text: String) -> Data { field(number, Data(text.utf8)) }

    static func tensor(_ name: String, dims: [Int64], floats: [Float]) -> Data {
        var t = Data()
        for d in dims { t += field(1, int: d) }
        t += field(2, int: 1) + string(8, name)
        var raw = Data()
        for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { raw += Data($0) } }
        return t + field(9, raw)
    }

    static func external(_ name: String, dims: [Int64], location: String) -> Data {
        var t = Data()
        for d in dims { t += field(1, int: d) }
        t += field(2, int: 1) + string(8, name)
        t += field(13, string(1, "location") + string(2, location))
        return t + field(14, int: 1)
    }

    static func model(weights: [Data] = [], op: String = "Relu") -> Data {
        let node = string(1, "x") + string(2, "y") + string(3, "n0") + string(4, op)
        var graph = field(1, node) + string(2, "g")
        for w in weights { graph += field(5, w) }
        graph += field(11, string(1, "x")) + field(12, string(1, "y"))
        return field(1, int: 8) + field(7, graph) + field(8, field(2, int: 17))
    }
}

/// Operators the fixtures do not reach, against naive loops.
@Suite("ONNX operators against naive loops")
struct ONNXOperatorTests {
    /// Every permutation of a rank-4 value (runs kept, matrix transposes of merged axes, the general walk)
    /// against index arithmetic.
    @Test("Transpose: all 24 permutations of a 2x3x4x9 value")
    func transposeAllPermutations() throws {
        let shape = [2, 3, 4, 9], strides = [108, 36, 9, 1]
        let values = (0..<216).map { Float($0) }
        func permutations(_ items: [Int]) -> [[Int]] {
            items.count <= 1 ? [items] : items.flatMap { item in permutations(items.filter { $0 != item }).map { [item] + $0 } }
        }
        for perm in permutations([0, 1, 2, 3]) {
            let node = Node(name: "t", op: "Transpose", domain: "", inputs: ["x"], outputs: ["y"], attributes: ["perm": .ints(perm.map(Int64.init))])
            let out = try ShapeOps.transpose(node, Value(shape: shape, floats: values))
            let outShape = perm.map { shape[$0] }
            #expect(out.shape == outShape)
            var index = 0, wrong = 0
            for a in 0..<outShape[0] { for b in 0..<outShape[1] { for c in 0..<outShape[2] { for d in 0..<outShape[3] {
                let position = [a, b, c, d]
                var source = 0
                for (axis, p) in perm.enumerated() { source += position[axis] * strides[p] }
                if out.floats[index] != values[source] { wrong += 1 }
                index += 1
            } } } }
            #expect(wrong == 0, "perm \(perm): \(wrong) values wrong")
        }
    }

    /// The vector exp and erf that softmax and GELU use, against Foundation's expf and erff over their ranges.
    @Test("vector exp within 2 ulp of expf, vector erf within 2e-7 of erff")
    func vectorMath() {
        var worstExp: Float = 0, worstErf: Float = 0
        var x: Float = -87
        while x < 88 {
            let v = VectorMath.Vector((0..<8).map { x + Float($0) * 0.0013 })
            let e = VectorMath.exp(v), f = VectorMath.erf(v * 0.05)
            for i in 0..<8 {
                let expected = expf(v[i])
                worstExp = max(worstExp, abs(e[i] - expected) / expected.ulp)
                worstErf = max(worstErf, abs(f[i] - erff(v[i] * 0.05)))
            }
            x += 0.0173
        }
        #expect(worstExp <= 2, "exp: \(worstExp) ulp")
        #expect(worstErf <= 2e-7, "erf: \(worstErf)")
        // Softmax rows through the vector path equal the plain formula.
        let row = (0..<300).map { Float(($0 * 37) % 101) * 0.11 - 5 }
        let node = Node(name: "s", op: "Softmax", domain: "", inputs: ["x"], outputs: ["y"], attributes: [:])
        let out = try! NeuralOps.softmax(node, Value(shape: [3, 100], floats: row))
        for r in 0..<3 {
            let slice = row[(r * 100)..<(r * 100 + 100)], top = slice.max()!
            let sum = slice.map { expf($0 - top) }.reduce(0, +)
            for j in 0..<100 { #expect(abs(out.floats[r * 100 + j] - expf(row[r * 100 + j] - top) / sum) <= 1e-6) }
        }
    }

    @Test("Gemm with transA/transB, alpha, beta and a broadcast C; Transpose of rank 3 and 0")
    func gemmAndTranspose() throws {
        let (m, k, n) = (3, 4, 5)
        let a = (0..<(k * m)).map { Float($0 % 7) - 3 }, b = (0..<(n * k)).map { Float($0 % 5) * 0.5 - 1 }, c = (0..<n).map { Float($0) }
        let node = Node(name: "g", op: "Gemm", domain: "", inputs: ["a", "b", "c"], outputs: ["y"],
                        attributes: ["transA": .int(1), "transB": .int(1), "alpha": .float(2), "beta": .float(0.5)])
        // A is stored k x m and B n x k: the product uses Aᵀ (m x k) and Bᵀ (k x n).
        let y = try Operators.execute(node, [Value(shape: [k, m], floats: a), Value(shape: [n, k], floats: b),
                                             Value(shape: [n], floats: c)], arena: Arena())[0]
        #expect(y.shape == [m, n])
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for p in 0..<k { sum += a[p * m + i] * b[j * k + p] }
                #expect(abs(y.floats[i * n + j] - (2 * sum + 0.5 * c[j])) < 1e-4)
            }
        }
        let x = Value(shape: [2, 3, 4], floats: (0..<24).map(Float.init))
        let t = try Operators.execute(Node(name: "t", op: "Transpose", domain: "", inputs: ["x"], outputs: ["t"],
                                           attributes: ["perm": .ints([2, 0, 1])]), [x], arena: Arena())[0]
        #expect(t.shape == [4, 2, 3])
        for d0 in 0..<4 { for d1 in 0..<2 { for d2 in 0..<3 { #expect(t.floats[(d0 * 2 + d1) * 3 + d2] == Float((d1 * 3 + d2) * 4 + d0)) } } }
        let scalar = Value(shape: [], floats: [7])
        #expect(try Operators.execute(Node(name: "s", op: "Transpose", domain: "", inputs: ["s"], outputs: ["s"], attributes: [:]),
                                      [scalar], arena: Arena())[0].floats == [7])
    }
}
