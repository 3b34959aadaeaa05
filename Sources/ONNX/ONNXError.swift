/// An ONNX file roadwatch cannot use, told in one line naming the file and, where there is one, the node.
public struct ONNXError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
