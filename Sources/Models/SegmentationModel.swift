import Tensors

/// What the backbone hands to the decoder: the clustering features and the encoder maps the decoder reuses.
public struct BackboneOutput: Sendable {
    /// Features for clustering, (C, H/s, W/s) at the model's feature stride.
    public var features: Tensor
    /// Every encoder map the decoder needs, by name (owned by this value: safe to hand to another stage).
    public var maps: [String: Tensor]

    public init(features: Tensor, maps: [String: Tensor]) {
        self.features = features
        self.maps = maps
    }
}

/// Receives named intermediate tensors during a forward pass (tests compare them with references).
public typealias Capture = (String, Tensor) -> Void

/// A street-scene segmentation network run as two stages: backbone (image to features) and decoder
/// (features to logits at the input size).
///
/// Each instance keeps reusable activation memory per stage, so call `backbone` from one task at a time and
/// `decoder` from one task at a time; the two may run concurrently on different frames.
public protocol SegmentationModel: AnyObject, Sendable {
    /// Input sizes must be multiples of this.
    var sizeMultiple: Int { get }
    /// Smallest input width and height that works.
    var minimumSize: (width: Int, height: Int) { get }
    /// Stride of `BackboneOutput.features` relative to the input.
    var featureStride: Int { get }
    /// Output channels of the decoder (classes, including any void class).
    var outputChannels: Int { get }

    /// The only input size the network takes, when its file fixes one (ONNX graphs exported without dynamic
    /// height and width); nil when any multiple of `sizeMultiple` works.
    var fixedInputSize: (width: Int, height: Int)? { get }
    /// Gets ready to run at `width` x `height` (ONNX graphs are prepared per size); a message if it cannot.
    func prepare(width: Int, height: Int) -> String?

    func backbone(_ input: Tensor, capture: Capture?) -> BackboneOutput
    func decoder(_ backbone: BackboneOutput, capture: Capture?) -> Tensor
    /// The decoder's scores as `decoder` gives them, possibly still as a coarse tensor and its final resize (for
    /// consumers that summarise them a row at a time). By default the full tensor.
    func decoderScores(_ backbone: BackboneOutput) -> ClassScores
}

extension SegmentationModel {
    public var fixedInputSize: (width: Int, height: Int)? { nil }
    public func prepare(width: Int, height: Int) -> String? { nil }
    public func decoderScores(_ backbone: BackboneOutput) -> ClassScores { .tensor(decoder(backbone, capture: nil)) }

    /// Both stages in one call: (features, logits).
    public func forward(_ input: Tensor, capture: Capture? = nil) -> (features: Tensor, logits: Tensor) {
        let encoded = backbone(input, capture: capture)
        return (encoded.features, decoder(encoded, capture: capture))
    }
}
