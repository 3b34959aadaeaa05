import Tensors

/// One value flowing through an ONNX graph: a dense N-D array of floats, or of integers (shapes, indices).
/// Row-major, batch included, as ONNX lays tensors out.
public struct Value: Sendable {
    public var shape: [Int]
    public var floats: [Float]
    /// Integer (and boolean) tensors keep exact 64-bit values: shape arithmetic, Slice ends of INT64_MAX.
    public var ints: [Int64]?

    public init(shape: [Int], floats: [Float]) {
        self.shape = shape
        self.floats = floats
        ints = nil
    }

    public init(shape: [Int], ints: [Int64]) {
        self.shape = shape
        self.ints = ints
        floats = []
    }

    public var isInt: Bool { ints != nil }
    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// The values as integers (a float tensor rounded toward zero, saturating: NaN is 0, ±infinity the extremes,
    /// where a plain conversion would trap on a model's odd constant).
    public var intValues: [Int64] {
        ints ?? floats.map { $0.isNaN ? 0 : Int64(Swift.max(Swift.min($0, 9e18), -9e18)) }
    }

    /// The element count of `shape`, or nil when a side is negative or the count passes what a graph may hold
    /// (`ONNXGraph.maximumElements`): shapes computed from a model's values are checked before anything is sized
    /// by them.
    static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for side in shape {
            guard side >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: side)
            guard !overflow, product <= ONNXGraph.maximumElements else { return nil }
            count = product
        }
        return count
    }
    /// The values as floats.
    public var floatValues: [Float] { ints.map { $0.map(Float.init) } ?? floats }

    /// Row-major strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = step
            step *= shape[axis]
        }
        return strides
    }

    func reshaped(_ shape: [Int]) -> Value {
        var copy = self
        copy.shape = shape
        return copy
    }

    /// The values seen as a Tensors tensor of `shape` (the batch axis dropped) while `body` runs, without a copy.
    /// Read only: `body` must not write to it.
    func withTensor<R>(_ shape: [Int], _ body: (Tensor) -> R) -> R {
        floatValues.withUnsafeBufferPointer { values in
            Tensor.borrowing(UnsafeMutableBufferPointer(mutating: values), shape: shape, body)
        }
    }

    /// A value of `shape` whose floats `body` writes in full through a tensor of `tensorShape`.
    static func written(_ shape: [Int], as tensorShape: [Int], _ body: (Tensor) -> Void) -> Value {
        let count = shape.reduce(1, *)
        let floats = [Float](unsafeUninitializedCapacity: count) { memory, initialized in
            Tensor.borrowing(memory, shape: tensorShape, body)
            initialized = count
        }
        return Value(shape: shape, floats: floats)
    }
}
