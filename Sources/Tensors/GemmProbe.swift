
/// What the machine's matrix multiply reaches: the ceiling the convolutions are measured against.
public enum GemmProbe {
    /// GFLOP/s of `Gemm.multiply` (OpenBLAS's sgemm kernel, split over `ComputeThreads`) on n x n matrices,
    /// best of `runs`.
    public static func sgemmGFLOPS(n: Int = 1024, runs: Int = 5) -> Double {
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        let clock = ContinuousClock()
        var best = Double.infinity
        for _ in 0..<(runs + 1) {
            let elapsed = clock.measure {
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            Gemm.multiply(m: n, n: n, k: n, a: a.baseAddress!, lda: n, b: b.baseAddress!, ldb: n,
                                          c: c.baseAddress!, ldc: n)
                        }
                    }
                }
            }
            best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }
}
