/// An attribute of a node, as the graph gives it.
public enum Attribute: Sendable {
    case float(Float)
    case int(Int64)
    case string(String)
    case floats([Float])
    case ints([Int64])
    case tensor(Value)
    case unsupported(String)
}

/// One operator application in the graph.
public struct Node: Sendable {
    public var name: String
    public var op: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: Attribute]

    /// "node 'name' (Op)" for messages.
    public var label: String { "node '\(name.isEmpty ? outputs.first ?? "?" : name)' (\(op))" }

    func fail(_ message: String) -> ONNXError { ONNXError("\(label): \(message)") }

    func int(_ key: String, _ fallback: Int) throws(ONNXError) -> Int {
        switch attributes[key] {
        case nil: return fallback
        case .int(let value)?: return Int(value)
        default: throw fail("attribute '\(key)' should be an integer")
        }
    }

    func float(_ key: String, _ fallback: Float) throws(ONNXError) -> Float {
        switch attributes[key] {
        case nil: return fallback
        case .float(let value)?: return value
        case .int(let value)?: return Float(value)
        default: throw fail("attribute '\(key)' should be a float")
        }
    }

    func ints(_ key: String) throws(ONNXError) -> [Int]? {
        switch attributes[key] {
        case nil: return nil
        case .ints(let values)?: return values.map { Int($0) }
        case .int(let value)?: return [Int(value)]
        default: throw fail("attribute '\(key)' should be a list of integers")
        }
    }

    func floatList(_ key: String) throws(ONNXError) -> [Float] {
        switch attributes[key] {
        case nil: return []
        case .floats(let values)?: return values
        case .float(let value)?: return [value]
        default: throw fail("attribute '\(key)' should be a list of floats")
        }
    }

    func string(_ key: String, _ fallback: String) throws(ONNXError) -> String {
        switch attributes[key] {
        case nil: return fallback
        case .string(let value)?: return value
        default: throw fail("attribute '\(key)' should be a string")
        }
    }
}
