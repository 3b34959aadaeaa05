import Foundation

/// A problem found inside a telemetry payload, before the reader that owns the file names the file.
///
/// Parsers throw this; the public entry points turn it into a `TelemetryError` that names the file, so every
/// message a user sees is one line with the file first.
struct Malformed: Error, Sendable {
    let problem: String
    init(_ problem: String) { self.problem = problem }
}

/// A cursor over bytes in memory, the only place in the module that loads values from raw memory.
///
/// Every read checks the bounds first and throws `Malformed` instead of trapping, because the bytes come from
/// files that may be truncated or corrupt. Offsets are relative to the start of `data` (Data slices keep their
/// parent's indices; this type hides that).
struct ByteReader: Sendable {
    private let data: Data
    /// The next byte to read, from 0 to `count`.
    private(set) var position: Int = 0

    init(_ data: Data) { self.data = data }

    var count: Int { data.count }
    var remaining: Int { data.count - position }
    var isAtEnd: Bool { position >= data.count }

    /// Moves the cursor; a position outside the bytes is an error, not a trap.
    mutating func seek(to offset: Int) throws {
        guard offset >= 0, offset <= data.count else {
            throw Malformed("offset \(offset) lies outside the \(data.count) bytes")
        }
        position = offset
    }

    mutating func skip(_ n: Int) throws {
        try require(n)
        position += n
    }

    /// Throws unless `n` more bytes can be read.
    func require(_ n: Int, what: String = "value") throws {
        guard n >= 0, n <= remaining else {
            throw Malformed("\(what) needs \(n) bytes at offset \(position), only \(max(remaining, 0)) left")
        }
    }

    // MARK: Fixed-width loads

    /// Loads a fixed-width integer at an absolute offset without moving the cursor.
    func peek<T: FixedWidthInteger>(_: T.Type, at offset: Int, bigEndian: Bool = true) throws -> T {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= data.count - size else {
            throw Malformed("\(size)-byte value at offset \(offset) lies past the end of \(data.count) bytes")
        }
        let raw = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        return bigEndian ? T(bigEndian: raw) : T(littleEndian: raw)
    }

    private mutating func next<T: FixedWidthInteger>(_ type: T.Type, bigEndian: Bool) throws -> T {
        let value = try peek(type, at: position, bigEndian: bigEndian)
        position += MemoryLayout<T>.size
        return value
    }

    mutating func u8() throws -> UInt8 { try next(UInt8.self, bigEndian: true) }
    mutating func i8() throws -> Int8 { Int8(bitPattern: try u8()) }
    mutating func u16() throws -> UInt16 { try next(UInt16.self, bigEndian: true) }
    mutating func i16() throws -> Int16 { try next(Int16.self, bigEndian: true) }
    mutating func u32() throws -> UInt32 { try next(UInt32.self, bigEndian: true) }
    mutating func i32() throws -> Int32 { try next(Int32.self, bigEndian: true) }
    mutating func u64() throws -> UInt64 { try next(UInt64.self, bigEndian: true) }
    mutating func i64() throws -> Int64 { try next(Int64.self, bigEndian: true) }
    mutating func f32() throws -> Float { Float(bitPattern: try u32()) }
    mutating func f64() throws -> Double { Double(bitPattern: try u64()) }

    mutating func u16le() throws -> UInt16 { try next(UInt16.self, bigEndian: false) }
    mutating func u32le() throws -> UInt32 { try next(UInt32.self, bigEndian: false) }
    mutating func i32le() throws -> Int32 { try next(Int32.self, bigEndian: false) }
    mutating func u64le() throws -> UInt64 { try next(UInt64.self, bigEndian: false) }
    mutating func f32le() throws -> Float { Float(bitPattern: try u32le()) }
    mutating func f64le() throws -> Double { Double(bitPattern: try u64le()) }

    // MARK: Runs of bytes

    /// The next `n` bytes as their own Data (indices from 0).
    mutating func bytes(_ n: Int, what: String = "field") throws -> Data {
        try require(n, what: what)
        let start = data.startIndex + position
        position += n
        return Data(data[start..<(start + n)])
    }

    /// The bytes from `offset` for `n` bytes, without moving the cursor.
    func slice(at offset: Int, count n: Int) throws -> Data {
        guard offset >= 0, n >= 0, offset <= data.count - n else {
            throw Malformed("\(n) bytes at offset \(offset) lie past the end of \(data.count) bytes")
        }
        let start = data.startIndex + offset
        return Data(data[start..<(start + n)])
    }

    /// A four-character code; bytes outside printable ASCII are shown as '?', so a corrupt code still prints.
    mutating func fourCC() throws -> String {
        ByteReader.fourCCString(try bytes(4, what: "four-character code"))
    }

    static func fourCCString(_ bytes: Data) -> String {
        String(bytes.map { (0x20...0x7e).contains($0) ? Character(UnicodeScalar($0)) : "?" })
    }
}
