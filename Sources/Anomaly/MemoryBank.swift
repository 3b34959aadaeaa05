import Foundation
import Tensors

/// A memory of normal road made from clean footage (`roadwatch calibrate`): L2-normalised cell features of the
/// drivable area, reduced to a coreset. A stream's `RoadMemory` uses it as a prior: a cell is novel only when it
/// is far from the stream's own memory and from this one, so what any calibrated road shows (cars, shadows,
/// markings) does not alarm on a road the stream has not yet learned.
///
/// On disk (`.rwmem`): the 8 bytes `RWMEM\0\0\u{1}` (magic and format version 1), a little-endian UInt32 length,
/// that many bytes of JSON header (`Header`), then `count` x `dimension` IEEE half-precision floats,
/// little-endian, one vector after another.
public struct MemoryBank: Sendable, Equatable {
    public struct Header: Codable, Sendable, Equatable {
        /// The model's registry name and the SHA-256 of its weights ("" for a user's file without one).
        public var model: String
        public var modelSHA256: String
        /// The network input size the features were taken at.
        public var width: Int
        public var height: Int
        public var dimension: Int
        public var count: Int
        /// Where the vectors came from (file names) and how many candidate cells were reduced.
        public var sources: [String]
        public var candidates: Int

        public init(model: String, modelSHA256: String, width: Int, height: Int, dimension: Int, count: Int,
                    sources: [String], candidates: Int) {
            self.model = model
            self.modelSHA256 = modelSHA256
            self.width = width
            self.height = height
            self.dimension = dimension
            self.count = count
            self.sources = sources
            self.candidates = candidates
        }

        enum CodingKeys: String, CodingKey {
            case model, width, height, dimension, count, sources, candidates
            case modelSHA256 = "model_sha256"
        }
    }

    public var header: Header
    /// `count` x `dimension`, row-major.
    public var vectors: [Float]

    public init(header: Header, vectors: [Float]) {
        precondition(vectors.count == header.count * header.dimension, "memory bank shape")
        self.header = header
        self.vectors = vectors
    }

    static let magic: [UInt8] = Array("RWMEM".utf8) + [0, 0, 1]

    /// The file's bytes.
    public func encoded() throws -> Data {
        var data = Data(Self.magic)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(header)
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        var halves = [UInt16](repeating: 0, count: vectors.count)
        for i in vectors.indices { halves[i] = Float16(vectors[i]).bitPattern.littleEndian }
        halves.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// Reads a memory file; anything else is one line naming what is wrong.
    public init(data: Data, name: String) throws(MemoryBankError) {
        let bytes = [UInt8](data)
        guard bytes.count >= 12, Array(bytes[0..<5]) == Array(Self.magic[0..<5]) else {
            throw MemoryBankError("'\(name)' is not a roadwatch memory file (made by `roadwatch calibrate`)")
        }
        guard Array(bytes[5..<8]) == Array(Self.magic[5..<8]) else {
            throw MemoryBankError("'\(name)' is a memory file of another format version (\(bytes[7])); this roadwatch reads version 1")
        }
        let length = Int(UInt32(bytes[8]) | UInt32(bytes[9]) << 8 | UInt32(bytes[10]) << 16 | UInt32(bytes[11]) << 24)
        guard length <= bytes.count - 12 else { throw MemoryBankError("'\(name)' is truncated (its header runs past the end)") }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(bytes[12..<(12 + length)]))
        } catch {
            throw MemoryBankError("'\(name)' has an unreadable header: \(error)")
        }
        guard header.dimension > 0, header.dimension <= 65536, header.count > 0, header.count <= 1 << 20,
              header.width > 0, header.height > 0 else {
            throw MemoryBankError("'\(name)' declares \(header.count) vectors of dimension \(header.dimension) at \(header.width)x\(header.height): out of range")
        }
        let body = 12 + length
        let expected = header.count * header.dimension * 2
        guard bytes.count - body == expected else {
            throw MemoryBankError("'\(name)' holds \(bytes.count - body) bytes of vectors, its header says \(expected)")
        }
        var vectors = [Float](repeating: 0, count: header.count * header.dimension)
        for i in vectors.indices {
            let bits = UInt16(bytes[body + 2 * i]) | UInt16(bytes[body + 2 * i + 1]) << 8
            let value = Float(Float16(bitPattern: bits))
            guard value.isFinite else { throw MemoryBankError("'\(name)' holds a value that is not finite (vector \(i / header.dimension))") }
            vectors[i] = value
        }
        self.header = header
        self.vectors = vectors
    }

    public init(contentsOf path: String) throws(MemoryBankError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MemoryBankError("cannot read memory file '\(path)'")
        }
        try self.init(data: data, name: path)
    }

    /// Refuses a bank made for another model, input size or feature width, in one line.
    public func check(model: String, sha256: String, width: Int, height: Int, dimension: Int, name: String) throws(MemoryBankError) {
        if header.model != model || (!header.modelSHA256.isEmpty && !sha256.isEmpty && header.modelSHA256 != sha256) {
            throw MemoryBankError("memory '\(name)' was made for model \(header.model) (\(header.modelSHA256.prefix(12))), not \(model) (\(sha256.prefix(12))): make one with `roadwatch calibrate --model \(model)`")
        }
        if header.width != width || header.height != height {
            throw MemoryBankError("memory '\(name)' was made at \(header.width)x\(header.height), this run is \(width)x\(height): make one with `roadwatch calibrate --size \(width)x\(height)`")
        }
        if header.dimension != dimension {
            throw MemoryBankError("memory '\(name)' holds \(header.dimension)-wide features, the model gives \(dimension)")
        }
    }

    /// Greedy k-center selection (the coreset PatchCore keeps): starting from one vector, repeatedly take the
    /// candidate farthest from everything chosen, so the `target` vectors cover the candidates with the smallest
    /// radius this greedy rule finds. Distances are measured after a fixed random projection to `projected`
    /// dimensions (distances are nearly kept, the cost falls by the same factor). Deterministic for a seed.
    public static func coreset(_ points: [Float], count n: Int, dimension d: Int, target: Int, projected: Int = 128,
                               seed: UInt64 = 0) -> [Int] {
        precondition(points.count == n * d)
        guard n > target else { return Array(0..<n) }
        guard target > 0 else { return [] }
        let p = min(projected, d)
        var random = SeededGenerator(seed: seed)
        // A Gaussian projection (Box-Muller), scaled so squared lengths are kept on average.
        var projection = [Float](repeating: 0, count: d * p)
        let scale = 1 / Float(p).squareRoot()
        for i in stride(from: 0, to: projection.count, by: 2) {
            let u1 = max(Double(random.next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(random.next() >> 11) / Double(1 << 53)
            let r = (-2 * Foundation.log(u1)).squareRoot()
            projection[i] = Float(r * cos(2 * .pi * u2)) * scale
            if i + 1 < projection.count { projection[i + 1] = Float(r * sin(2 * .pi * u2)) * scale }
        }
        var reduced = [Float](repeating: 0, count: n * p)
        Gemm.multiply(m: n, n: p, k: d, a: points, b: projection, into: &reduced)
        var nearest = [Float](repeating: .infinity, count: n)
        var chosen: [Int] = []
        chosen.reserveCapacity(target)
        var next = Int(random.next() % UInt64(n))
        reduced.withUnsafeBufferPointer { r in
            for _ in 0..<target {
                chosen.append(next)
                let c = r.baseAddress! + next * p
                var far = 0
                var farthest: Float = -1
                for i in 0..<n {
                    let row = r.baseAddress! + i * p
                    var s: Float = 0
                    for k in 0..<p { let t = row[k] - c[k]; s += t * t }
                    if s < nearest[i] { nearest[i] = s }
                    if nearest[i] > farthest { farthest = nearest[i]; far = i }
                }
                next = far
            }
        }
        return chosen
    }
}

public struct MemoryBankError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
