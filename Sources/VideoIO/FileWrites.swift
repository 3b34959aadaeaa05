import Foundation

/// Writes all of `data` to `descriptor` with `write(2)`, again after a partial write or EINTR; nil on
/// success, else the errno that stopped it. Nothing is buffered in the process: what returned is with
/// the kernel, so a kill does not lose it.
public func writeAll(_ descriptor: Int32, _ data: Data) -> Int32? {
    data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> Int32? in
        var offset = 0
        while offset < bytes.count {
            let wrote = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if wrote < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += wrote
        }
        return nil
    }
}
