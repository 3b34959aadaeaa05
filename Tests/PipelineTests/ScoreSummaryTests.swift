import Anomaly
import Foundation
import Models
import Tensors
import Testing
import TestKit
import VideoIO

@Suite("The decoder's scores summarised without the full-size tensor")
struct ScoreSummaryTests {
    /// 448x224: 14 grid rows, an odd count for the two compute threads that split them.
    @Test("grid confidence, class map and cell classes equal those of the full logits, value for value",
          arguments: [(448, 224), (512, 256)])
    func equalToFullLogits(size: (Int, Int)) async throws {
        let (width, height) = size
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        let source = try await VideoSource.open(Shared.path("data/videos/synthetic_fox_solidWhiteRight/video.mp4"))
        var frame: VideoFrame?
        for try await f in source where f.index == 120 { frame = f; break }
        let image = try #require(frame).image
        let input = Preprocessor(normalization: model.descriptor.normalization)
            .tensor(rgb: image.samples, sourceWidth: image.width, sourceHeight: image.height, width: width, height: height)
        let encoded = model.network.backbone(input, capture: nil)
        let scores = model.network.decoderScores(encoded)
        guard case .resized = scores else { Issue.record("ESPNetv2's scores should come coarse"); return }
        let logits = model.network.decoder(encoded, capture: nil)
        #expect(logits.shape == [model.network.outputChannels, height, width])
        #expect(scores.materialized().array == logits.array)

        let classes = model.descriptor.inDistributionClasses, cell = model.network.featureStride
        let cells = Confidence.cellMeans(Confidence.maxLogit(logits, classes: classes), width: width, height: height, cell: cell)
        let map = Ops.argmax(logits).map { UInt8(truncatingIfNeeded: $0) }
        let cellClasses = Confidence.cellClasses(logits, classes: classes, cell: cell)
        #expect(Set(map).count > 3, "a street scene has several classes")
        // The coarse scores go through the row-at-a-time kernel, compiled for each instruction set.
        for set in KernelSet.allCases where set.rawValue <= Kernels.supported.rawValue {
            Kernels.using(set) {
                for given in [scores, ClassScores.tensor(logits)] {
                    let summary = Confidence.summary(given, classes: classes, cell: cell, classMap: true, cellClasses: true)
                    #expect(summary.cellConfidence == cells, "\(set)")
                    #expect(summary.classMap == map, "\(set)")
                    #expect(summary.cellClasses == cellClasses, "\(set)")
                }
                let bare = Confidence.summary(scores, classes: classes, cell: cell, classMap: false, cellClasses: false)
                #expect(bare.cellConfidence == cells && bare.classMap == nil && bare.cellClasses == nil, "\(set)")
            }
        }
    }
}
