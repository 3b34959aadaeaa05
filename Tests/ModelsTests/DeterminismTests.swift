import Foundation
import Testing
import TestKit
@testable import Tensors
@testable import Models

/// The same input gives the same bits whatever the number of threads: the GEMM's pieces and every split loop
/// depend on the shape alone (a stage working alone and one sharing the cores must agree, on any CPU).
@Suite("Results do not depend on the thread count")
struct DeterminismTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Float(Int(state % 2001) - 1000) / 1000
        }
    }

    /// Shapes of the products roadwatch makes: K-Means (points x 4 centroids x 512), the road memory (cells x
    /// bank), a 1x1 convolution as GEMM (channels x pixels), a small one below the split size.
    @Test("GEMM: equal bits at 1, 2, 3 and 8 threads", arguments: [
        [512, 4, 512], [2048, 4, 512], [600, 1024, 512], [64, 8192, 96], [19, 300, 40], [8, 40_000, 3],
    ])
    func gemm(_ shape: [Int]) {
        let (m, n, k) = (shape[0], shape[1], shape[2])
        let a = Self.random(m * k, seed: 1), b = Self.random(k * n, seed: 2)
        var results: [[Float]] = []
        for threads in [1, 2, 3, 8] {
            ComputeThreads.set(threads)
            var c = [Float](repeating: 0, count: m * n)
            Gemm.multiply(m: m, n: n, k: k, a: a, b: b, into: &c)
            results.append(c)
        }
        ComputeThreads.set(ProcessInfo.processInfo.activeProcessorCount)
        for r in results.dropFirst() { #expect(r == results[0], "\(shape)") }
        // The pieces cover the product exactly once.
        let plan = GemmPlan(m: m, n: n, k: k)
        let covered = (0..<plan.pieces).map { plan.range($0).count }.reduce(0, +)
        #expect(covered == (plan.splitsColumns ? n : m))
    }

    @Test("ESPNetv2 at 512x256: features and logits equal bit for bit at 1, 2 and 3 threads")
    func forward() throws {
        let file = try SafeTensorsFile(path: Shared.path("models/espnetv2-cityscapes/espnetv2_s_2.0_city_1024x512.safetensors"))
        let model = try ESPNetv2(weights: WeightSet(file: file.path, tensors: try file.allFloats()))
        let input = Tensor(shape: [3, 256, 512], values: Self.random(3 * 256 * 512, seed: 3))
        var outputs: [([Float], [Float])] = []
        for threads in [1, 2, 3] {
            ComputeThreads.set(threads)
            let encoded = model.backbone(input, capture: nil)
            let logits = model.decoder(encoded, capture: nil)
            outputs.append((encoded.features.array, logits.array))
        }
        ComputeThreads.set(ProcessInfo.processInfo.activeProcessorCount)
        for o in outputs.dropFirst() {
            #expect(o.0 == outputs[0].0, "features differ")
            #expect(o.1 == outputs[0].1, "logits differ")
        }
    }
}
