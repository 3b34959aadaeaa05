import Anomaly
import Models
import Tensors

/// Everything the method computes for one frame at the network size.
public struct FrameResult: @unchecked Sendable {
    /// Backbone features used for clustering (C, h, w).
    public var features: Tensor
    /// Decoder logits (channels, H, W) at the network size.
    public var logits: Tensor
    /// The cluster method on the feature grid.
    public var analysis: GridAnalysis
    /// Max-logit over the in-distribution classes at the network size (row-major H x W).
    public var maxLogit: [Float]
}

/// Runs one frame through the whole method in one call: preprocessing, backbone, decoder, confidence grid,
/// clustering and thresholding. Keeps the K-Means state, so consecutive frames are warm-started.
public final class FrameAnalyzer: @unchecked Sendable {
    public let model: LoadedModel
    public let size: (width: Int, height: Int)
    public let threshold: ClusterThreshold
    private let preprocessor: Preprocessor

    public init(model: LoadedModel, width: Int, height: Int, settings: MethodSettings = .default) throws {
        try model.network.checkInputSize(width: width, height: height)
        self.model = model
        self.size = (width, height)
        self.threshold = ClusterThreshold(settings: settings)
        self.preprocessor = Preprocessor(normalization: model.descriptor.normalization)
    }

    /// Analyses an interleaved RGB image; `warm` carries the previous frame's centroids over.
    public func analyze(rgb: [UInt8], width: Int, height: Int, warm: Bool) -> FrameResult {
        let input = preprocessor.tensor(rgb: rgb, sourceWidth: width, sourceHeight: height, width: size.width, height: size.height)
        let (features, logits) = model.network.forward(input)
        let classes = model.descriptor.inDistributionClasses
        let maxLogit = Confidence.maxLogit(logits, classes: classes)
        let cells = Confidence.cellMeans(maxLogit, width: logits.width, height: logits.height, cell: model.network.featureStride)
        let analysis = threshold.analyze(features: features, cellConfidence: cells, warm: warm)
        return FrameResult(features: features, logits: logits, analysis: analysis, maxLogit: maxLogit)
    }
}
