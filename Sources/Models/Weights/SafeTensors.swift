import Foundation

/// A safetensors file, validated before any tensor is read: the header's dtypes, shapes and byte ranges
/// must describe the data exactly, inside the file and without overlaps.
public struct SafeTensorsFile: Sendable {
    public struct Entry: Sendable, Equatable {
        public var dtype: String
        public var shape: [Int]
        /// Byte range inside the data section.
        public var range: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    static let elementSizes: [String: Int] = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1]

    public init(path: String) throws(WeightError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw WeightError(path, FileManager.default.fileExists(atPath: path) ? "unreadable" : "no such file")
        }
        try self.init(data: data, name: path)
    }

    public init(data: Data, name: String) throws(WeightError) {
        func fail(_ message: String) -> WeightError { WeightError(name, "not a valid safetensors file: " + message) }
        path = name
        guard data.count >= 8 else { throw fail("shorter than its 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength >= 2, headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
            throw fail("header length \(headerLength) does not fit the file of \(data.count) bytes")
        }
        let headerEnd = 8 + Int(headerLength)
        let header = data.subdata(in: data.startIndex + 8 ..< data.startIndex + headerEnd)
        guard let object = try? JSONSerialization.jsonObject(with: header), let root = object as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let dataCount = data.count - headerEnd
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in root {
            if key == "__metadata__" {
                guard let map = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in map { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtype = info["dtype"] as? String,
                  let shapeValues = info["shape"] as? [Any],
                  let offsets = info["data_offsets"] as? [Any], offsets.count == 2 else {
                throw fail("entry '\(key)' lacks dtype, shape or data_offsets")
            }
            guard let size = Self.elementSizes[dtype] else { throw fail("entry '\(key)' has unknown dtype \(dtype)") }
            var shape: [Int] = []
            for dim in shapeValues {
                guard let n = (dim as? NSNumber)?.int64Value, n >= 0, n <= 1 << 31 else {
                    throw fail("entry '\(key)' has a bad shape \(shapeValues)")
                }
                shape.append(Int(n))
            }
            guard let begin = (offsets[0] as? NSNumber)?.int64Value, let end = (offsets[1] as? NSNumber)?.int64Value,
                  begin >= 0, end >= begin, end <= Int64(dataCount) else {
                throw fail("entry '\(key)' has data offsets \(offsets) outside the \(dataCount) data bytes")
            }
            var elements: Int64 = 1
            for dim in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int64(dim))
                guard !overflow, product <= Int64(dataCount) else { throw fail("entry '\(key)' has an impossible shape \(shape)") }
                elements = product
            }
            guard elements * Int64(size) == end - begin else {
                throw fail("entry '\(key)' has \(end - begin) bytes for shape \(shape) of \(dtype)")
            }
            entries[key] = Entry(dtype: dtype, shape: shape, range: Int(begin) ..< Int(end))
        }
        let ordered = entries.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.value.range.upperBound > b.value.range.lowerBound {
            throw fail("entries '\(a.key)' and '\(b.key)' overlap")
        }
        self.entries = entries
        self.metadata = metadata
        self.data = data
        self.dataStart = headerEnd
    }

    public var names: [String] { entries.keys.sorted() }

    private func bytes(of name: String) throws(WeightError) -> (Entry, Data) {
        guard let entry = entries[name] else { throw WeightError(path, "no tensor named '\(name)'") }
        let start = data.startIndex + dataStart
        return (entry, data.subdata(in: start + entry.range.lowerBound ..< start + entry.range.upperBound))
    }

    /// A float tensor as Float32 (F32 as stored; F64 and F16 converted).
    public func floats(_ name: String) throws(WeightError) -> WeightTensor {
        let (entry, bytes) = try bytes(of: name)
        let values: [Float]
        switch entry.dtype {
        case "F32": values = bytes.withUnsafeBytes { raw in (0..<(bytes.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
        case "F64": values = bytes.withUnsafeBytes { raw in (0..<(bytes.count / 8)).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) } }
        case "F16": values = bytes.withUnsafeBytes { raw in (0..<(bytes.count / 2)).map { Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) } }
        default: throw WeightError(path, "tensor '\(name)' is \(entry.dtype), not a float type")
        }
        return WeightTensor(shape: entry.shape, values: values)
    }

    /// An integer tensor (I32 or I64) as Int32 values.
    public func int32s(_ name: String) throws(WeightError) -> (shape: [Int], values: [Int32]) {
        let (entry, bytes) = try bytes(of: name)
        switch entry.dtype {
        case "I32": return (entry.shape, bytes.withUnsafeBytes { raw in (0..<(bytes.count / 4)).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) } })
        case "I64": return (entry.shape, bytes.withUnsafeBytes { raw in (0..<(bytes.count / 8)).map { Int32(truncatingIfNeeded: Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) } })
        default: throw WeightError(path, "tensor '\(name)' is \(entry.dtype), not an integer type")
        }
    }

    /// Every float tensor, for building a model.
    public func allFloats() throws(WeightError) -> [String: WeightTensor] {
        var result: [String: WeightTensor] = [:]
        for (name, entry) in entries where ["F32", "F64", "F16"].contains(entry.dtype) {
            result[name] = try floats(name)
        }
        return result
    }
}
