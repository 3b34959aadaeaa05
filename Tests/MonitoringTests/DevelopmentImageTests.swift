import Anomaly
import AsyncAlgorithms
import Foundation
import Models
import Synchronization
import Testing
import TestKit
import VideoIO
import Monitoring
import Pipeline

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
        // The image through the monitor's stages, as eval road-anomaly runs it: its own scene, tensors kept.
        let monitor = try Evaluation.monitor(model: model, size: FrameSize(width: 1024, height: 512), settings: .default,
                                             independentFrames: true)
        let frame = VideoFrame(index: 0, pts: 0, timeBase: Rational(1, 1),
                               sourceSize: FrameSize(width: picture.width, height: picture.height), image: picture)
        let results = Mutex<[MonitoredFrame]>([])
        _ = try await monitor.runSequentially([frame].async) { done in results.withLock { $0.append(done) } }
        let done = try #require(results.withLock { $0.first })
        #expect(done.analysis.gridWidth == 64 && done.analysis.gridHeight == 32)
        #expect(!done.kmeans.warm)

        let maps = Evaluation.scoreMaps(done, classes: 19, settings: .default)
        let pool = PixelPool(methods: ["clusters", "max-logit"])
        try pool.add(labels: labels.samples, scores: [maps[0], maps[1]])
        let metrics = try pool.metrics()
        let maxLogitAP = 100 * (try #require(metrics["max-logit"]).ap)
        let clustersAP = 100 * (try #require(metrics["clusters"]).ap)
        #expect(abs(maxLogitAP - 15.67) <= 0.25, "max-logit AP \(maxLogitAP)")
        #expect(abs(clustersAP - 20.22) <= 1.0, "clusters AP \(clustersAP)")
        print("animals01: clusters AP \(clustersAP), max-logit AP \(maxLogitAP)")
    }
}
