import Dispatch
import Foundation

/// SIGINT and SIGTERM: the first one asks the run to stop cleanly (drain, finish the files); a second
/// SIGINT exits at once.
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

    init(onStop: @escaping @Sendable () -> Void) {
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
                } else if number == SIGINT {
                    _exit(130)
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
