import Foundation
import ZIPFoundation

/// PyTorch checkpoints (`torch.save` of a state dict) read without running any code, in both formats:
/// the legacy one (pickles followed by raw storages) and the zip one (torch 1.6 and later).
public enum TorchCheckpoint {
    static let legacyMagic: Int128 = 0x1950a86a20f9469cfc6c
    static let legacyProtocol = 1001
    /// Bytes per element of each storage type; the unpickler admits no others.
    static let elementSizes: [String: Int] = [
        "torch.FloatStorage": 4, "torch.DoubleStorage": 8, "torch.HalfStorage": 2, "torch.BFloat16Storage": 2,
        "torch.LongStorage": 8, "torch.IntStorage": 4, "torch.ShortStorage": 2, "torch.CharStorage": 1,
        "torch.ByteStorage": 1, "torch.BoolStorage": 1,
    ]

    /// Every tensor of the state dict in `path`, as Float32.
    public static func load(path: String) throws(WeightError) -> [String: WeightTensor] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw WeightError(path, FileManager.default.fileExists(atPath: path) ? "unreadable" : "no such file")
        }
        if data.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            do {
                try ZipBounds.check(data)
            } catch {
                throw WeightError(path, "not a readable PyTorch zip checkpoint: " + error.message)
            }
            return try loadZip(path: path)
        }
        return try loadLegacy(bytes: [UInt8](data), name: path)
    }

    /// The legacy format: magic, protocol, system info and the state dict as four pickles, then a pickled
    /// list of storage keys, then each storage as an 8-byte element count and its raw little-endian bytes.
    public static func loadLegacy(bytes: [UInt8], name: String) throws(WeightError) -> [String: WeightTensor] {
        func fail(_ message: String) -> WeightError { WeightError(name, "not a readable PyTorch checkpoint: " + message) }
        var reader = RestrictedUnpickler(bytes: bytes)
        do {
            guard case .bigInt(let magic) = try reader.load(), magic == legacyMagic else {
                throw fail("it does not start with PyTorch's magic number")
            }
            guard case .int(let version) = try reader.load(), version == legacyProtocol else {
                throw fail("unknown legacy protocol version")
            }
            if case .dict(let info) = try reader.load() {
                for (key, value) in info.pairs {
                    if case .string("little_endian") = key, case .bool(false) = value { throw fail("big-endian checkpoints are not supported") }
                }
            }
            let root = try reader.load()
            guard case .list(let keyList) = try reader.load() else { throw fail("storage key list missing") }
            var storages: [String: Range<Int>] = [:]
            var offset = reader.position
            let types = storageTypes(in: root)
            for item in keyList.items {
                guard case .string(let key) = item, let type = types[key], let size = elementSizes[type] else {
                    throw fail("storage list names an unknown storage")
                }
                guard offset + 8 <= bytes.count else { throw fail("file ends before storage '\(key)'") }
                let count = bytes[offset..<(offset + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                guard count <= UInt64(bytes.count) else { throw fail("storage '\(key)' claims \(count) elements") }
                let start = offset + 8, end = start + Int(count) * size
                guard end <= bytes.count else { throw fail("file ends inside storage '\(key)' (truncated)") }
                storages[key] = start..<end
                offset = end
            }
            return try tensors(from: root, name: name) { key throws(WeightError) in
                guard let range = storages[key] else { throw fail("tensor uses storage '\(key)' that is not in the file") }
                return bytes[range]
            }
        } catch let failure as RestrictedUnpickler.Failure {
            throw fail(failure.message)
        } catch let error as WeightError {
            throw error
        } catch {
            throw fail("\(error)")
        }
    }

    /// The zip format: `<root>/data.pkl` holds the state dict, `<root>/data/<key>` each storage's raw bytes.
    static func loadZip(path: String) throws(WeightError) -> [String: WeightTensor] {
        func fail(_ message: String) -> WeightError { WeightError(path, "not a readable PyTorch zip checkpoint: " + message) }
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw fail("the zip archive cannot be opened")
        }
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        func extract(_ entry: Entry) throws(WeightError) -> [UInt8] {
            // Storages are stored uncompressed; a large inflation ratio is a zip bomb, not a checkpoint.
            guard entry.uncompressedSize <= UInt64(max(fileSize, 1)) * 4 + 1_000_000,
                  entry.compressedSize <= UInt64(max(fileSize, 0)) else {
                throw fail("entry '\(entry.path)' inflates to \(entry.uncompressedSize) bytes")
            }
            var result: [UInt8] = []
            result.reserveCapacity(Int(entry.uncompressedSize))
            let checksum: CRC32
            do {
                checksum = try archive.extract(entry, skipCRC32: false) { chunk in result += chunk }
            } catch {
                throw fail("entry '\(entry.path)' is damaged")
            }
            guard checksum == entry.checksum, result.count == Int(entry.uncompressedSize) else {
                throw fail("entry '\(entry.path)' fails its CRC-32 check (damaged file)")
            }
            return result
        }
        guard let pickleEntry = archive.first(where: { $0.path.hasSuffix("/data.pkl") || $0.path == "data.pkl" }) else {
            throw fail("it has no data.pkl")
        }
        let root = String(pickleEntry.path.dropLast("data.pkl".count))
        var reader = RestrictedUnpickler(bytes: try extract(pickleEntry))
        let value: RestrictedUnpickler.Value
        do {
            value = try reader.load()
        } catch {
            throw fail(error.message)
        }
        var cache: [String: [UInt8]] = [:]
        return try tensors(from: value, name: path) { key throws(WeightError) in
            if let bytes = cache[key] { return bytes[...] }
            guard !key.contains("/"), !key.contains(".."), let entry = archive["\(root)data/\(key)"] else {
                throw fail("storage '\(key)' is missing from the archive")
            }
            let bytes = try extract(entry)
            cache[key] = bytes
            return bytes[...]
        }
    }

    /// Storage key to storage type, for every tensor in the state dict.
    static func storageTypes(in root: RestrictedUnpickler.Value) -> [String: String] {
        var result: [String: String] = [:]
        if case .dict(let dict) = root {
            for (_, value) in dict.pairs {
                if case .tensor(let t) = value { result[t.storage.key] = t.storage.type }
            }
        }
        return result
    }

    /// Turns the state dict's tensor records into Float32 tensors read from their storages.
    static func tensors(from root: RestrictedUnpickler.Value, name: String,
                        storage: (String) throws(WeightError) -> ArraySlice<UInt8>) throws(WeightError) -> [String: WeightTensor] {
        func fail(_ message: String) -> WeightError { WeightError(name, "not a readable PyTorch checkpoint: " + message) }
        guard case .dict(let dict) = root else { throw fail("it does not hold a state dict") }
        var result: [String: WeightTensor] = [:]
        for (key, value) in dict.pairs {
            guard case .string(let tensorName) = key else { throw fail("a state dict key is not a string") }
            guard case .tensor(let t) = value else { continue }  // non-tensor entries (e.g. metadata) are not weights
            guard let size = elementSizes[t.storage.type] else { throw fail("tensor '\(tensorName)' has storage type \(t.storage.type)") }
            let bytes = try storage(t.storage.key)
            let available = bytes.count / size
            // Element count and the furthest element the strides reach, with overflow treated as lying.
            var count = 1
            var reach = t.offset
            for (dim, step) in zip(t.shape, t.stride) {
                let (product, overflow) = count.multipliedReportingOverflow(by: dim)
                guard !overflow, product <= 1 << 30 else { throw fail("tensor '\(tensorName)' has an impossible shape \(t.shape)") }
                count = product
                if dim > 0 {
                    let (extent, o1) = (dim - 1).multipliedReportingOverflow(by: step)
                    let (sum, o2) = reach.addingReportingOverflow(extent)
                    guard !o1, !o2 else { throw fail("tensor '\(tensorName)' has impossible strides \(t.stride)") }
                    reach = sum
                }
            }
            guard count == 0 || reach < available else {
                throw fail("tensor '\(tensorName)' reaches element \(reach) of a storage of \(available)")
            }
            var values = [Float](repeating: 0, count: count)
            let base = bytes.startIndex
            var index = [Int](repeating: 0, count: t.shape.count)
            for i in 0..<count {
                var element = t.offset
                for d in 0..<index.count { element += index[d] * t.stride[d] }
                values[i] = decode(bytes, at: base + element * size, type: t.storage.type)
                var d = index.count - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < t.shape[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
            result[tensorName] = WeightTensor(shape: t.shape, values: values)
        }
        return result
    }

    @inline(__always)
    static func decode(_ bytes: ArraySlice<UInt8>, at offset: Int, type: String) -> Float {
        func le(_ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<n { v |= UInt64(bytes[offset + k]) << (8 * k) }
            return v
        }
        switch type {
        case "torch.FloatStorage": return Float(bitPattern: UInt32(le(4)))
        case "torch.DoubleStorage": return Float(Double(bitPattern: le(8)))
        case "torch.HalfStorage": return Float(Float16(bitPattern: UInt16(le(2))))
        case "torch.BFloat16Storage": return Float(bitPattern: UInt32(le(2)) << 16)
        case "torch.LongStorage": return Float(Int64(bitPattern: le(8)))
        case "torch.IntStorage": return Float(Int32(truncatingIfNeeded: le(4)))
        case "torch.ShortStorage": return Float(Int16(truncatingIfNeeded: le(2)))
        case "torch.CharStorage": return Float(Int8(truncatingIfNeeded: le(1)))
        default: return Float(le(1))
        }
    }
}
