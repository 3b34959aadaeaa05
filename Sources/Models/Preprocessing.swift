import Tensors

/// How a model wants its input pixels: channel order and normalisation.
public struct Normalization: Sendable, Equatable {
    public enum ChannelOrder: String, Sendable { case rgb, bgr }
    /// Where the division by 255 happens: before standardising (`(x/255 - mean)/std`, ImageNet style)
    /// or after it (`(x - mean)/std/255`, as ESPNet was trained).
    public enum Scaling: String, Sendable { case divideFirst, divideLast }

    public var order: ChannelOrder
    /// Per channel, in `order`.
    public var mean: [Float]
    public var std: [Float]
    public var scaling: Scaling

    public init(order: ChannelOrder, mean: [Float], std: [Float], scaling: Scaling) {
        self.order = order
        self.mean = mean
        self.std = std
        self.scaling = scaling
    }
}

/// Turns 8-bit interleaved RGB frames into a model's input tensor: bilinear resize on the float image
/// (half-pixel centres, no antialiasing), channel order, normalisation.
public final class Preprocessor: Sendable {
    public let normalization: Normalization
    private let arenas = ArenaPool()

    public init(normalization: Normalization) {
        self.normalization = normalization
    }

    /// The network input (3, height, width) for an interleaved RGB image of `sourceWidth` x `sourceHeight`.
    public func tensor(rgb pixels: [UInt8], sourceWidth: Int, sourceHeight: Int, width: Int, height: Int) -> Tensor {
        precondition(pixels.count == sourceWidth * sourceHeight * 3, "pixel count does not match the size")
        return arenas.with { arena in
            convert(pixels, sourceWidth: sourceWidth, sourceHeight: sourceHeight, width: width, height: height, arena: arena)
        }
    }

    private func convert(_ pixels: [UInt8], sourceWidth: Int, sourceHeight: Int, width: Int, height: Int, arena: Arena) -> Tensor {
        let planes = arena.tensor("source", [3, sourceHeight, sourceWidth])
        let order = normalization.order == .rgb ? [0, 1, 2] : [2, 1, 0]
        let n = sourceWidth * sourceHeight
        pixels.withUnsafeBufferPointer { p in
            for (target, source) in order.enumerated() {
                let dst = planes.channelBuffer(target)
                for i in 0..<n { dst[i] = Float(p[i * 3 + source]) }
            }
        }
        let output = Tensor(uninitialized: [3, height, width])
        if sourceWidth == width && sourceHeight == height {
            output.copyValues(from: planes)
        } else {
            Resize.bilinear(planes, into: output, alignCorners: false)
        }
        // In the reference's order of operations, so the float results agree closely.
        let plane = output.plane
        for c in 0..<3 {
            let p = output.channelBuffer(c)
            let mean = normalization.mean[c], std = normalization.std[c]
            switch normalization.scaling {
            case .divideFirst: for i in 0..<plane { p[i] = (p[i] / 255 - mean) / std }
            case .divideLast: for i in 0..<plane { p[i] = (p[i] - mean) / std / 255 }
            }
        }
        return output
    }
}
