import CFFmpeg
import Dispatch
import Foundation
import Synchronization

/// Process-wide FFmpeg set-up, done once before the first call.
enum FFmpegRuntime {
    private static let setUp: Void = {
        avdevice_register_all()
        avformat_network_init()
        // FFmpeg's own logging would print around our one-line errors; problems reach the caller
        // as thrown errors or warnings instead. `ROADWATCH_FFMPEG_LOG=1` brings FFmpeg's log back.
        let verbose = ProcessInfo.processInfo.environment["ROADWATCH_FFMPEG_LOG"] != nil
        av_log_set_level(verbose ? AV_LOG_WARNING : AV_LOG_QUIET)
    }()

    static func ensureReady() { _ = setUp }
}

/// A deadline that FFmpeg's interrupt callback polls, so blocking I/O gives up instead of hanging.
final class InterruptDeadline: Sendable {
    private let deadlineNanos = Atomic<UInt64>(.max)
    private let aborted = Atomic<Bool>(false)

    /// Starts a new wait of `seconds` (nil = no limit).
    func arm(_ seconds: Double?) {
        guard let seconds else { deadlineNanos.store(.max, ordering: .relaxed); return }
        let now = DispatchTime.now().uptimeNanoseconds
        deadlineNanos.store(now &+ UInt64(max(0, seconds) * 1e9), ordering: .relaxed)
    }

    /// Makes every pending and future blocking call return at once.
    func abort() { aborted.store(true, ordering: .relaxed) }

    var isAborted: Bool { aborted.load(ordering: .relaxed) }

    var shouldInterrupt: Bool {
        isAborted || DispatchTime.now().uptimeNanoseconds > deadlineNanos.load(ordering: .relaxed)
    }

    /// The C callback FFmpeg calls; `opaque` is an unretained `InterruptDeadline`.
    static let callback: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { opaque in
        guard let opaque else { return 0 }
        return Unmanaged<InterruptDeadline>.fromOpaque(opaque).takeUnretainedValue().shouldInterrupt ? 1 : 0
    }
}

/// A serial queue for blocking FFmpeg work, so it never occupies Swift's cooperative threads.
final class BlockingLane: Sendable {
    private let queue: DispatchQueue

    init(label: String) { queue = DispatchQueue(label: label, qos: .userInitiated) }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    func runSync<T>(_ body: () throws -> T) rethrows -> T { try queue.sync(execute: body) }
}

/// Builds an FFmpeg dictionary from Swift options; the caller frees it with `av_dict_free`.
func makeDictionary(_ options: [String: String]) -> OpaquePointer? {
    var dictionary: OpaquePointer?
    for (key, value) in options.sorted(by: { $0.key < $1.key }) {
        av_dict_set(&dictionary, key, value, 0)
    }
    return dictionary
}

/// A short description of a local path problem FFmpeg would report less clearly, or nil if the path looks usable.
func localPathProblem(_ target: String) -> VideoIOError? {
    guard !target.contains("://"), target != "-", !target.hasPrefix("/dev/") else { return nil }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) else {
        return VideoIOError(.notFound, operation: "open input", target: target, message: "no such file")
    }
    if isDirectory.boolValue {
        return VideoIOError(.unreadable, operation: "open input", target: target, message: "is a directory, not a video or image file")
    }
    guard FileManager.default.isReadableFile(atPath: target) else {
        return VideoIOError(.unreadable, operation: "open input", target: target, message: "permission denied")
    }
    if let size = (try? FileManager.default.attributesOfItem(atPath: target))?[.size] as? Int, size == 0 {
        return VideoIOError(.invalidInput, operation: "open input", target: target, message: "file is empty")
    }
    return nil
}
