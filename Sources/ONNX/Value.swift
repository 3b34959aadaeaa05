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

    /// The values as integers (a float tensor rounded toward zero).
    public var intValues: [Int64] { ints ?? floats.map { Int64($0) } }
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
}
