import Dispatch
import Foundation

/// SIGINT and SIGTERM: the first one asks the run to stop cleanly (drain, finish the files); a second one
/// exits at once, and so does the process when the clean stop takes longer than `grace` seconds (a write
/// or a reconnect blocked). The video is written fragmented, so it plays either way.
/// `@unchecked`: the dispatch sources are set once in `init` and only cancelled in `deinit`; `received` is
/// read and written under `lock`.
final class SignalTrap: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var received: Int32?

    /// The signal that stopped the run, if any.
    var signal: Int32? { lock.withLock { received } }

    /// Exit status for the signal received: 128 + its number (130 for SIGINT, 143 for SIGTERM).
    var exitStatus: Int32? { signal.map { 128 + $0 } }

    init(grace: Double = 20, onStop: @escaping @Sendable () -> Void) {
        for number in [SIGINT, SIGTERM] {
            Foundation.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                let first = self.lock.withLock { () -> Bool in
                    if self.received == nil {
                        self.received = number
                        return true
                    }
                    return false
                }
                if first {
                    Console.info("stopping: finishing the frames in flight (press Ctrl-C again to quit at once)")
                    onStop()
                    DispatchQueue.global().asyncAfter(deadline: .now() + grace) {
                        Console.error("did not stop within \(Int(grace)) s of the signal; quitting (the video written so far plays)")
                        _exit(128 + number)
                    }
                } else {
                    _exit(128 + number)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        sources.forEach { $0.cancel() }
    }
}
