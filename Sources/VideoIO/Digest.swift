import CFFmpeg
import Foundation

/// SHA-256 through libavutil, which roadwatch links for video anyway: model weights are checked with it, and a
/// cryptography package would add a second copy of BoringSSL to every build for this one digest.
public struct SHA256Digest: ~Copyable {
    private let context: OpaquePointer

    public init() {
        guard let context = av_sha_alloc() else { fatalError("av_sha_alloc: out of memory") }
        av_sha_init(context, 256)
        self.context = context
    }

    deinit { av_free(UnsafeMutableRawPointer(context)) }

    public mutating func update(_ bytes: Data) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else { return }
            av_sha_update(context, base, raw.count)
        }
    }

    /// The digest as lowercase hex; the value is used up.
    public consuming func hex() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        av_sha_final(context, &digest)
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    /// SHA-256 of a whole file, read 1 MiB at a time, as lowercase hex.
    public static func hex(ofFile url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var digest = SHA256Digest()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { digest.update(chunk) }
        return digest.hex()
    }
}
