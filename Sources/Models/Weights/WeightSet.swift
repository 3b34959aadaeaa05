import Tensors

/// The tensors of one checkpoint, handed out by name with their shapes checked, so a model can tell
/// missing, misshapen and left-over tensors apart.
public final class WeightSet {
    public let file: String
    private var tensors: [String: WeightTensor]
    private var used: Set<String> = []

    public init(file: String, tensors: [String: WeightTensor]) {
        self.file = file
        self.tensors = tensors
    }

    /// The values of `name`, which must have `shape`.
    public func take(_ name: String, _ shape: [Int]) throws(WeightError) -> [Float] {
        guard let tensor = tensors[name] else {
            throw WeightError(file, "missing tensor '\(name)' (is this checkpoint for another architecture?)")
        }
        guard tensor.shape == shape else {
            throw WeightError(file, "tensor '\(name)' has shape \(tensor.shape), expected \(shape)")
        }
        used.insert(name)
        return tensor.values
    }

    /// Marks tensors the architecture stores but never uses (so they are not reported as left over).
    public func skip(_ name: String) { if tensors[name] != nil { used.insert(name) } }

    /// Throws if the checkpoint holds tensors the architecture did not take (batch-norm step counters aside).
    public func checkAllUsed() throws(WeightError) {
        let extra = tensors.keys.filter { !used.contains($0) && !$0.hasSuffix("num_batches_tracked") }.sorted()
        guard extra.isEmpty else {
            let shown = extra.prefix(3).joined(separator: "', '")
            throw WeightError(file, "\(extra.count) unexpected tensor(s) such as '\(shown)' (is this checkpoint for another architecture?)")
        }
    }

    // MARK: Layer loaders shared by the architectures

    /// A convolution `name.weight` (and `name.bias` if `bias`), shape-checked.
    public func conv(_ name: String, in cin: Int, out cout: Int, kernel k: Int, stride: Int = 1, padding: Int? = nil,
                     dilation: Int = 1, groups: Int = 1, bias: Bool = false) throws(WeightError) -> Conv2D {
        let weight = try take("\(name).weight", [cout, cin / groups, k, k])
        let biasValues = bias ? try take("\(name).bias", [cout]) : nil
        let pad = padding ?? (k - 1) / 2 * dilation
        return Conv2D(inChannels: cin, outChannels: cout, kernel: (k, k), stride: (stride, stride), padding: (pad, pad),
                      dilation: (dilation, dilation), groups: groups, weight: weight, bias: biasValues)
    }

    /// Batch norm `name.{weight,bias,running_mean,running_var}` as an affine map.
    public func batchNorm(_ name: String, _ channels: Int, eps: Float) throws(WeightError) -> BatchNorm {
        BatchNorm(gamma: try take("\(name).weight", [channels]), beta: try take("\(name).bias", [channels]),
                  mean: try take("\(name).running_mean", [channels]), variance: try take("\(name).running_var", [channels]),
                  eps: eps)
    }

    /// PReLU slopes `name.weight`.
    public func prelu(_ name: String, _ channels: Int) throws(WeightError) -> [Float] {
        try take("\(name).weight", [channels])
    }
}
