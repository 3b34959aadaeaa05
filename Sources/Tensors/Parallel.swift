import CKernels
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

    private static let occupiedThreads = Atomic<Int>(0)
    private static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body` counted as a thread doing numeric work (a pipeline stage's frame). `forEach` then splits its
    /// loops only over the cores that the other counted threads leave free: stages working at the same time get
    /// a core each, and a stage working alone gets every core. The stages' work per frame differs (the backbone
    /// takes about twice the decoder's time), so a fixed thread per stage left a core idle while the slowest
    /// stage worked, and a fixed two per stage put three threads on two cores.
    public static func occupy<T>(_ body: () throws -> T) rethrows -> T {
        if rw_thread_occupied() != 0 { return try body() }
        rw_set_thread_occupied(1)
        occupiedThreads.add(1, ordering: .relaxed)
        defer {
            occupiedThreads.subtract(1, ordering: .relaxed)
            rw_set_thread_occupied(0)
        }
        return try body()
    }

    /// Counts a core as busy while `body` waits for work done on a thread `occupy` does not see (the annotated
    /// video's encoder on a queue of its own), so the stages' loops leave that core to it meanwhile.
    public static func reserving<T>(_ body: () async throws -> T) async rethrows -> T {
        occupiedThreads.add(1, ordering: .relaxed)
        defer { occupiedThreads.subtract(1, ordering: .relaxed) }
        return try await body()
    }

    /// Threads one loop may use now: `count`, less the cores other counted threads are working on.
    static var available: Int {
        let others = occupiedThreads.load(ordering: .relaxed) - (isOccupied ? 1 : 0)
        return share(count: count, cores: cores, others: others)
    }

    /// Whether the calling thread is inside `occupy`.
    static var isOccupied: Bool { rw_thread_occupied() != 0 }

    /// The threads a loop takes: at most `count`, and no more than the cores `others` busy threads leave, but
    /// always one (the caller's own).
    static func share(count: Int, cores: Int, others: Int) -> Int {
        min(count, max(1, cores - max(0, others)))
    }

    /// Runs `body` over `0..<n` split into contiguous chunks, one per thread available (see `occupy`): the caller
    /// takes the first and the pool's workers the others. When another caller has the workers, the caller runs
    /// every chunk itself: the cores are busy anyway.
    public static func forEach(_ n: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let threads = min(available, max(1, n / max(1, minimumPerThread)))
        if threads <= 1 || n <= 1 {
            body(0..<n)
            return
        }
        let chunk = (n + threads - 1) / threads
        withoutActuallyEscaping(body) { escapable in
            // The chunks are disjoint ranges; callers write only inside their own range.
            nonisolated(unsafe) let body = escapable
            let ran = WorkerPool.shared.run(parts: threads) { t in
                let start = t * chunk
                let end = min(n, start + chunk)
                if start < end { body(start..<end) }
            }
            if !ran { body(0..<n) }
        }
    }
}

/// Threads that wait for the loops of `ComputeThreads`. Each spins for a short while after its last part, so the
/// next operation (usually microseconds later within a forward pass) starts without a wake-up, then sleeps on a
/// semaphore until work comes. Waking a thread per operation (Dispatch's `concurrentPerform`, called from inside
/// the Swift concurrency pool) left the second core nearly idle: a 2-thread forward took as long as a 1-thread one.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()
    /// How long a worker spins for the next part before it sleeps.
    static let spinNanoseconds: UInt64 = 200_000

    private let owned = Atomic<Bool>(false)
    // Read and grown only by the caller that owns the pool.
    private var workers: [Worker] = []

    /// Runs `part(0)` on the calling thread and `part(1..<parts)` on workers, and returns when all are done; false
    /// (nothing run) when another caller has the pool.
    func run(parts: Int, _ part: @escaping (Int) -> Void) -> Bool {
        guard owned.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { owned.store(false, ordering: .releasing) }
        while workers.count < parts - 1 { workers.append(Worker()) }
        nonisolated(unsafe) let part = part
        for t in 1..<parts { workers[t - 1].give { part(t) } }
        part(0)
        for t in 1..<parts { workers[t - 1].wait() }
        return true
    }

    final class Worker: @unchecked Sendable {
        private let given = Atomic<Int>(0)
        private let finished = Atomic<Int>(0)
        private let sleeping = Atomic<Bool>(false)
        private let wake = DispatchSemaphore(value: 0)
        // Written by the giver before `given` is raised, read by the worker after it sees the raise.
        nonisolated(unsafe) private var job: (() -> Void)?

        init() {
            let thread = Thread { [unowned self] in self.loop() }
            thread.name = "roadwatch-compute"
            thread.start()
        }

        func give(_ body: @escaping () -> Void) {
            job = body
            given.add(1, ordering: .sequentiallyConsistent)
            // The worker raises `sleeping` before its last look at `given`: one of the two sees the other.
            if sleeping.load(ordering: .sequentiallyConsistent) { wake.signal() }
        }

        func wait() {
            let target = given.load(ordering: .relaxed)
            while finished.load(ordering: .acquiring) != target { rw_spin_pause() }
        }

        private func loop() {
            var seen = 0
            while true {
                var spunSince = DispatchTime.now().uptimeNanoseconds
                var spins = 0
                while given.load(ordering: .acquiring) == seen {
                    rw_spin_pause()
                    spins += 1
                    guard spins & 255 == 0 else { continue }
                    if DispatchTime.now().uptimeNanoseconds - spunSince > WorkerPool.spinNanoseconds {
                        sleeping.store(true, ordering: .sequentiallyConsistent)
                        if given.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                        sleeping.store(false, ordering: .sequentiallyConsistent)
                        spunSince = DispatchTime.now().uptimeNanoseconds
                    }
                }
                seen += 1
                job?()
                job = nil
                finished.store(seen, ordering: .releasing)
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
