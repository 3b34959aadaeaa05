/// A weight file that cannot be used, told in one line naming the file.
public struct WeightError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var message: String

    public init(_ file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "cannot load weights '\(file)': \(message)" }
}

/// One named tensor read from a weight file: its shape and values as Float32.
public struct WeightTensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}
