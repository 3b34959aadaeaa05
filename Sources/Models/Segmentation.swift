import Tensors

/// An input size a model cannot take, told in one line.
public struct InputSizeError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

extension SegmentationModel {
    /// Throws unless `width` x `height` is a size this model can run at.
    public func checkInputSize(width: Int, height: Int) throws(InputSizeError) {
        if let fixed = fixedInputSize, fixed != (width, height) {
            throw InputSizeError(description: "this model takes only \(fixed.width)x\(fixed.height) (its file fixes the input size; export it with dynamic height and width for others), not \(width)x\(height)")
        }
        guard width % sizeMultiple == 0, height % sizeMultiple == 0 else {
            throw InputSizeError(description: "input size \(width)x\(height) is not a multiple of \(sizeMultiple) in both sides (try \(width / sizeMultiple * sizeMultiple)x\(height / sizeMultiple * sizeMultiple))")
        }
        guard width >= minimumSize.width, height >= minimumSize.height else {
            throw InputSizeError(description: "input size \(width)x\(height) is below this model's minimum of \(minimumSize.width)x\(minimumSize.height)")
        }
        if let problem = prepare(width: width, height: height) { throw InputSizeError(description: problem) }
    }
}

/// Class maps from logits.
public enum ClassMap {
    /// The argmax class per pixel at `width` x `height`, the logits bilinearly resized first
    /// (half-pixel centres) when the sizes differ.
    public static func from(logits: Tensor, width: Int, height: Int) -> [UInt8] {
        var scores = logits
        if logits.width != width || logits.height != height {
            scores = Tensor(uninitialized: [logits.channels, height, width])
            Resize.bilinear(logits, into: scores, alignCorners: false)
        }
        return Ops.argmax(scores).map { UInt8(truncatingIfNeeded: $0) }
    }
}
