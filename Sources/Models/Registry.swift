/// The architectures roadwatch can build; a new one is a new case and a new file.
public enum Architecture: String, Sendable, CaseIterable {
    case espnetv2, espnet
    /// Any ONNX segmentation network, read from its file (`ONNXSegmentation`).
    case onnx
}

/// Everything roadwatch needs to know about one pretrained model.
public struct ModelDescriptor: Sendable {
    public var name: String
    public var architecture: Architecture
    public var summary: String
    /// The weight file's name, as published.
    public var fileName: String
    /// Where the weights are published.
    public var url: String
    /// SHA-256 of the weight file, lowercase hex.
    public var sha256: String
    /// Shipped inside roadwatch (works offline) rather than downloaded on first use.
    public var bundled: Bool
    public var defaultSize: (width: Int, height: Int)
    public var normalization: Normalization
    /// Output class names, index = channel.
    public var classNames: [String]
    /// RGB colour per class.
    public var palette: [[UInt8]]
    /// The first `inDistributionClasses` channels are real classes; later ones (void/background) take no
    /// part in confidence scores.
    public var inDistributionClasses: Int
    public var licence: String
}

/// The models roadwatch knows by name.
public enum ModelRegistry {
    public static let defaultName = "espnetv2-cityscapes"

    static let cityscapesClasses = [
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
        "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    ]
    static let cityscapesPalette: [[UInt8]] = [
        [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153], [153, 153, 153],
        [250, 170, 30], [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60],
        [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32], [0, 0, 0],
    ]
    static let cityscapesTerms = "code MIT; weights trained on Cityscapes, whose terms allow non-commercial use only"

    public static let all: [ModelDescriptor] = [
        ModelDescriptor(
            name: "espnetv2-cityscapes", architecture: .espnetv2,
            summary: "ESPNetv2 s=2.0, Cityscapes, 0.79 M parameters (default)",
            fileName: "espnetv2_s_2.0_city_1024x512.pth",
            url: "https://github.com/sacmehta/EdgeNets/raw/master/model/segmentation/model_zoo/espnetv2/espnetv2_s_2.0_city_1024x512.pth",
            sha256: "a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8",
            bundled: true, defaultSize: (1024, 512),
            normalization: Normalization(order: .rgb, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scaling: .divideFirst),
            classNames: cityscapesClasses + ["background"], palette: cityscapesPalette, inDistributionClasses: 19,
            licence: cityscapesTerms),
        ModelDescriptor(
            name: "espnet-cityscapes", architecture: .espnet,
            summary: "ESPNet p=2 q=8, Cityscapes, 0.36 M parameters",
            fileName: "espnet_p_2_q_8.pth",
            url: "https://github.com/sacmehta/ESPNet/raw/master/pretrained/decoder/espnet_p_2_q_8.pth",
            sha256: "343b0e77e8545d36113c4f3efbf1ee349256f25c97c9f9d5ddefe45f2f49763e",
            bundled: false, defaultSize: (1024, 512),
            normalization: Normalization(order: .bgr, mean: [72.3923111, 82.90893555, 73.15840149],
                                         std: [45.3192215, 46.15289307, 44.91483307], scaling: .divideLast),
            classNames: cityscapesClasses + ["void"], palette: cityscapesPalette, inDistributionClasses: 19,
            licence: cityscapesTerms),
    ]

    public static func named(_ name: String) -> ModelDescriptor? { all.first { $0.name == name } }
}
