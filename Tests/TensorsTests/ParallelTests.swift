import Foundation
import Synchronization
import Testing
@testable import Tensors

/// How the stages share the cores: the share a loop takes, the per-thread flag `occupy` sets, and `forEach` still
/// covering every index once when it runs inside a stage's work. The process-wide count of busy threads is not
/// asserted: other suites' pipelines run in parallel with these tests and move it.
@Suite("Compute threads shared by the stages")
struct ParallelTests {
    @Test("A loop takes the cores the other busy threads leave, at least one, at most the set count")
    func share() {
        #expect(ComputeThreads.share(count: 2, cores: 2, others: 0) == 2)
        #expect(ComputeThreads.share(count: 2, cores: 2, others: 1) == 1)
        #expect(ComputeThreads.share(count: 2, cores: 2, others: 3) == 1)
        #expect(ComputeThreads.share(count: 1, cores: 8, others: 0) == 1)
        #expect(ComputeThreads.share(count: 8, cores: 8, others: 3) == 5)
        #expect(ComputeThreads.share(count: 4, cores: 8, others: 2) == 4)
        #expect(ComputeThreads.share(count: 4, cores: 2, others: -1) == 2)
    }

    @Test("occupy marks only the calling thread, nests without counting twice, and clears on return and on throw")
    func flag() throws {
        #expect(!ComputeThreads.isOccupied)
        ComputeThreads.occupy {
            #expect(ComputeThreads.isOccupied)
            ComputeThreads.occupy { #expect(ComputeThreads.isOccupied) }
            // The inner call returning must not clear the outer's mark.
            #expect(ComputeThreads.isOccupied)
            let other = Mutex<Bool?>(nil)
            let done = DispatchSemaphore(value: 0)
            Thread {
                other.withLock { $0 = ComputeThreads.isOccupied }
                done.signal()
            }.start()
            done.wait()
            #expect(other.withLock { $0 } == false)
        }
        #expect(!ComputeThreads.isOccupied)
        struct Failure: Error {}
        #expect(throws: Failure.self) { try ComputeThreads.occupy { throw Failure() } }
        #expect(!ComputeThreads.isOccupied)
    }

    @Test("forEach inside a stage's work visits every index exactly once", arguments: [1, 2, 7, 1000, 4097])
    func forEachCovers(_ n: Int) {
        let visits = Mutex([Int](repeating: 0, count: n))
        ComputeThreads.occupy {
            ComputeThreads.forEach(n, minimumPerThread: 3) { range in
                visits.withLock { for i in range { $0[i] += 1 } }
            }
        }
        #expect(visits.withLock { $0 } == [Int](repeating: 1, count: n))
    }
}
