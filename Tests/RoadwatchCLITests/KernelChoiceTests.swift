import Foundation
import Testing
import TestKit

/// `ROADWATCH_KERNELS` caps the convolution kernels' instruction set; a bad value is one line and a non-zero exit.
@Suite("Choosing the kernels' instruction set")
struct KernelChoiceTests {
    @Test("a value that names no set is refused in one line")
    func badValue() throws {
        let outcome = try RoadwatchBinary.run(["bench", "model", "--runs", "1"], environment: ["ROADWATCH_KERNELS": "sse9"])
        #expect(outcome.status != 0 && !outcome.timedOut)
        #expect(outcome.stderrLines.count == 1)
        #expect(outcome.stderr.contains("ROADWATCH_KERNELS=sse9") && outcome.stderr.contains("avx2"))
    }

    @Test("the baseline set is used when asked for, and the benchmark says which set ran")
    func baseline() throws {
        let outcome = try RoadwatchBinary.run(
            ["bench", "model", "--models", "espnetv2-cityscapes", "--sizes", "512x256", "--threads", "1", "--runs", "1", "--json"],
            timeout: 120, environment: ["ROADWATCH_KERNELS": "generic"])
        #expect(outcome.status == 0)
        #expect(outcome.stdout.contains(#""kernels":"generic""#))
    }
}
