import COpenBLAS
import Dispatch
import Foundation
import Synchronization

/// How many threads the tensor operations use: OpenBLAS's GEMM and the loops written here.
public enum ComputeThreads {
    private static let current = Atomic<Int>(ProcessInfo.processInfo.activeProcessorCount)

    /// Threads in use; defaults to the machine's cores.
    public static var count: Int { current.load(ordering: .relaxed) }

    /// Sets the thread count for GEMM (`Gemm` splits the work itself; OpenBLAS stays on one thread) and
    /// for the element-wise loops.
    public static func set(_ threads: Int) {
        let n = max(1, threads)
        current.store(n, ordering: .relaxed)
        openblas_set_num_threads(1)
    }

    /// Runs `body` over `0..<n` split into contiguous chunks, one per thread.
    @inlinable public static func forEach(_ n: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let threads = min(count, max(1, n / max(1, minimumPerThread)))
        if threads <= 1 || n <= 1 {
            body(0..<n)
            return
        }
        let chunk = (n + threads - 1) / threads
        withoutActuallyEscaping(body) { escapable in
            // The chunks are disjoint ranges; callers write only inside their own range.
            nonisolated(unsafe) let body = escapable
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let start = t * chunk
                let end = min(n, start + chunk)
                if start < end { body(start..<end) }
            }
        }
    }
}

/// Counts multiply-accumulates done by convolutions, for benchmarks (GFLOP/s = 2 x MACs / time).
public enum OperationCounter {
    private static let total = Atomic<Int>(0)

    public static func add(_ macs: Int) { total.add(macs, ordering: .relaxed) }
    public static var macs: Int { total.load(ordering: .relaxed) }
    public static func reset() { total.store(0, ordering: .relaxed) }
}
