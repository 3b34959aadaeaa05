import CFFmpeg
import Foundation

/// An FFmpeg failure, or a video input that cannot be used, told in one line.
///
/// Carries what was being done, on which path or URL, and FFmpeg's own message,
/// so callers can print `description` as it is.
public struct VideoIOError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Broad classes of failure, for callers that branch on them.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: String { case notFound, unreadable, invalidInput, truncated, unsupported, timedOut, io, encoder, usage }
        fileprivate let value: Value
        public static let notFound = Kind(value: .notFound)
        public static let unreadable = Kind(value: .unreadable)
        public static let invalidInput = Kind(value: .invalidInput)
        public static let truncated = Kind(value: .truncated)
        public static let unsupported = Kind(value: .unsupported)
        public static let timedOut = Kind(value: .timedOut)
        public static let io = Kind(value: .io)
        public static let encoder = Kind(value: .encoder)
        public static let usage = Kind(value: .usage)
        public var description: String { value.rawValue }
    }

    public var kind: Kind
    /// What was being done: "open input", "decode", "write trailer", ...
    public var operation: String
    /// The path or URL concerned.
    public var target: String
    /// FFmpeg's message, or ours when FFmpeg had none.
    public var message: String
    /// The FFmpeg error code, when there was one.
    public var code: Int32?

    public init(_ kind: Kind, operation: String, target: String, message: String, code: Int32? = nil) {
        self.kind = kind
        self.operation = operation
        self.target = target
        self.message = message
        self.code = code
    }

    /// Wraps a negative FFmpeg return code.
    init(ffmpeg code: Int32, operation: String, target: String) {
        let kind: Kind
        switch code {
        case rw_averror(ENOENT): kind = .notFound
        case rw_averror(EACCES), rw_averror(EPERM), rw_averror(EISDIR): kind = .unreadable
        case rw_averror(ETIMEDOUT), rw_averror(EINTR), AVERROR_EXIT_: kind = .timedOut
        case rw_averror_invaliddata(): kind = .invalidInput
        case rw_averror(ECONNREFUSED), rw_averror(EIO), rw_averror(ENETUNREACH), rw_averror(EHOSTUNREACH): kind = .io
        default: kind = .invalidInput
        }
        var message = ffmpegErrorString(code)
        if code < 0 && code > -4096 { message = describeErrno(-code) }  // AVERROR(errno): name the errno too
        self.init(kind, operation: operation, target: target, message: message, code: code)
    }

    public var description: String {
        "cannot \(operation) '\(target)': \(message)"
    }
}

/// FFmpeg's `AVERROR_EXIT`, returned when an interrupt callback stops a blocking call.
let AVERROR_EXIT_: Int32 = -0x5449_5845 // -MKTAG('E','X','I','T')

/// FFmpeg's text for an error code.
func ffmpegErrorString(_ code: Int32) -> String {
    if code == AVERROR_EXIT_ { return "timed out" }
    var buffer = [CChar](repeating: 0, count: Int(AV_ERROR_MAX_STRING_SIZE))
    av_strerror(code, &buffer, buffer.count)
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// Throws a `VideoIOError` when an FFmpeg call returned a negative code; passes the code through otherwise.
@discardableResult
func check(_ code: Int32, _ operation: @autoclosure () -> String, _ target: String) throws(VideoIOError) -> Int32 {
    if code < 0 { throw VideoIOError(ffmpeg: code, operation: operation(), target: target) }
    return code
}

/// A system error number as people read it: "No space left on device (ENOSPC)".
public func describeErrno(_ number: Int32) -> String {
    let names: [Int32: String] = [
        ENOSPC: "ENOSPC", EDQUOT: "EDQUOT", EIO: "EIO", EROFS: "EROFS", EACCES: "EACCES", EPERM: "EPERM",
        ENOENT: "ENOENT", EFBIG: "EFBIG", EPIPE: "EPIPE", EISDIR: "EISDIR", ENOTDIR: "ENOTDIR", EBADF: "EBADF",
    ]
    let text = String(cString: strerror(number))
    return names[number].map { "\(text) (\($0))" } ?? text
}

