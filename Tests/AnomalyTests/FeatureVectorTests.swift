import Anomaly
import Foundation
import Tensors
import Testing

@Suite("Feature vectors for clustering")
struct FeatureVectorTests {
    /// Channel counts around the eight-channel blocks of the transpose, a zero vector among the points.
    @Test("one L2-normalised row per cell, in (row, column) order", arguments: [1, 7, 8, 13, 64])
    func rows(channels: Int) {
        let h = 5, w = 7, n = h * w
        var state: UInt32 = 12345
        let values = (0..<(channels * n)).map { i -> Float in
            state = state &* 1_103_515_245 &+ 12345
            return i % n == 3 ? 0 : Float(Int(state >> 16) % 2001 - 1000) / 250
        }
        let points = FeatureVectors.normalized(Tensor(shape: [channels, h, w], values: values))
        #expect(points.count == n && points.dimension == channels)
        for i in 0..<n {
            let vector = (0..<channels).map { Double(values[$0 * n + i]) }
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for c in 0..<channels {
                let expected = norm == 0 ? 0 : vector[c] / norm
                #expect(abs(Double(points.values[i * channels + c]) - expected) < 1e-6, "point \(i) channel \(c)")
            }
        }
    }

    @Test("points written into kept memory equal fresh ones, frame after frame and when the shape changes")
    func reusedMemory() {
        var rows: [Float] = []
        for (channels, h, w, seed) in [(13, 5, 7, 1), (13, 5, 7, 2), (8, 3, 4, 3), (16, 6, 6, 4)] {
            let values = (0..<(channels * h * w)).map { Float(($0 * 37 + seed * 101) % 97) / 13 - 3 }
            let features = Tensor(shape: [channels, h, w], values: values)
            let kept = FeatureVectors.normalized(features, reusing: &rows)
            let fresh = FeatureVectors.normalized(features)
            #expect(kept.values == fresh.values && kept.count == fresh.count && kept.dimension == fresh.dimension)
            #expect(rows == fresh.values)
        }
    }
}
