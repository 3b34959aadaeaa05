import Foundation

/// A zip archive's directory checked against the file's size before ZIPFoundation reads it: ZIPFoundation
/// converts offsets it reads from the archive to `off_t` and adds sizes to them unchecked, so one lying 64-bit
/// value in a Zip64 record would trap the process instead of failing the read. The walk mirrors ZIPFoundation's
/// (the last end record, the Zip64 record just before its locator, the Zip64 extra field of each entry).
enum ZipBounds {
    /// Throws a one-line reason when the central directory, or any entry's local header or data, reaches past
    /// the end of `data`.
    static func check(_ data: Data) throws(ZipBoundsError) {
        let bytes = [UInt8](data)
        let size = UInt64(bytes.count)
        func le(_ at: Int, _ n: Int) -> UInt64? {
            guard at >= 0, n <= bytes.count, at <= bytes.count - n else { return nil }
            return (0..<n).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[at + $1]) }
        }
        // The end-of-central-directory record: the last signature in the final 64 KiB plus its 22 bytes.
        guard bytes.count >= 22,
              let end = stride(from: bytes.count - 22, through: max(0, bytes.count - 22 - 65_535), by: -1)
                .first(where: { le($0, 4) == 0x0605_4b50 }) else {
            throw ZipBoundsError("no end-of-central-directory record")
        }
        // ZIPFoundation takes the Zip64 record's values whenever its locator is there, whatever the end record says.
        var directories = [(entries: le(end + 10, 2)!, length: le(end + 12, 4)!, offset: le(end + 16, 4)!)]
        if end >= 76, le(end - 20, 4) == 0x0706_4b50 {
            let record = end - 76
            directories.append((le(record + 32, 8)!, le(record + 40, 8)!, le(record + 48, 8)!))
        }
        for directory in directories {
            guard directory.offset <= size, directory.length <= size - directory.offset else {
                throw ZipBoundsError("a central directory of \(directory.length) bytes at \(directory.offset), past the end of \(size) bytes")
            }
            var at = Int(directory.offset)
            for _ in 0..<directory.entries {
                guard le(at, 4) == 0x0201_4b50, let nameLength = le(at + 28, 2), let extraLength = le(at + 30, 2),
                      let commentLength = le(at + 32, 2) else { break }  // where ZIPFoundation stops listing, too
                let flags = le(at + 8, 2)!, method = le(at + 10, 2)!
                var compressed = le(at + 20, 4)!, uncompressed = le(at + 24, 4)!, local = le(at + 42, 4)!
                // The Zip64 extra field holds, in this order, each of the three that is 0xFFFFFFFF in the entry.
                var extra = at + 46 + Int(nameLength)
                let extraEnd = extra + Int(extraLength)
                while extra + 4 <= extraEnd, let id = le(extra, 2), let length = le(extra + 2, 2) {
                    if id == 1 {
                        var field = extra + 4
                        if uncompressed == 0xFFFF_FFFF { uncompressed = le(field, 8) ?? .max; field += 8 }
                        if compressed == 0xFFFF_FFFF { compressed = le(field, 8) ?? .max; field += 8 }
                        if local == 0xFFFF_FFFF { local = le(field, 8) ?? .max }
                        break
                    }
                    extra += 4 + Int(length)
                }
                // A data descriptor is looked for after the data: stored entries measure it by their uncompressed size.
                let stored = flags & 8 != 0 && method == 0 ? uncompressed : 0
                guard local < size, compressed <= size - local, stored <= size - local else {
                    throw ZipBoundsError("an entry of \(max(compressed, stored)) bytes at \(local), past the end of \(size) bytes")
                }
                guard uncompressed <= UInt64(Int64.max) else { throw ZipBoundsError("an entry claiming \(uncompressed) bytes") }
                at = extraEnd + Int(commentLength)
            }
        }
    }
}

/// Why `ZipBounds` refused an archive, in a few words.
struct ZipBoundsError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
