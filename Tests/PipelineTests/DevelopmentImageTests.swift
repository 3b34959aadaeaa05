import Anomaly
import Foundation
import Models
import Testing
import TestKit
import VideoIO
@testable import Pipeline

@Suite("The method on a development image")
struct DevelopmentImageTests {
    /// METHOD.md: animals01_Guiguinto_railway_station_Calves, defaults, seed 0: clusters AP 20.22,
    /// max-logit AP 15.67. The baseline has no randomness, but our JPEG decoder (FFmpeg) and the reference's
    /// (PIL) differ by about a level per pixel, which moves it by about 0.1 point; clustering this image
    /// lands within 20.0-20.3 over k-means++ seeds 0-4.
    @Test("animals01: max-logit and clusters AP against METHOD.md's per-image figures")
    func animals01() async throws {
        let frames = Shared.path("data/road_anomaly_dev/frames")
        let name = "animals01_Guiguinto_railway_station_Calves"
        let picture = try StillImage.readRGB("\(frames)/\(name).jpg")
        let labels = try StillImage.readGray8("\(frames)/\(name).labels/labels_semantic.png")
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        let analyzer = try FrameAnalyzer(model: model, width: 1024, height: 512)
        let result = analyzer.analyze(rgb: picture.samples, width: picture.width, height: picture.height, warm: false)
        #expect(result.analysis.gridWidth == 64 && result.analysis.gridHeight == 32)

        let baselines = ScoreMaps.baselines(logits: result.logits, classes: 19, width: picture.width, height: picture.height)
        let clusters = ScoreMaps.clusters(result.analysis, variant: .d2b, width: picture.width, height: picture.height)
        let pool = PixelPool(methods: ["clusters", "max-logit"])
        pool.add(labels: labels.samples, scores: [clusters, baselines.maxLogit])
        let metrics = pool.metrics()
        let maxLogitAP = 100 * (try #require(metrics["max-logit"]).ap)
        let clustersAP = 100 * (try #require(metrics["clusters"]).ap)
        #expect(abs(maxLogitAP - 15.67) <= 0.25, "max-logit AP \(maxLogitAP)")
        #expect(abs(clustersAP - 20.22) <= 1.0, "clusters AP \(clustersAP)")
        print("animals01: clusters AP \(clustersAP), max-logit AP \(maxLogitAP)")
    }
}
