import COpenBLAS

/// Row-major single-precision GEMM, `C = A·B` (A optionally transposed), spread over `ComputeThreads` by
/// giving each thread its own block of C's columns (or rows, when C is narrow) and a single-threaded
/// `cblas_sgemm`. OpenBLAS's own threads are not used: between calls they spin, and on two cores that
/// spinning takes the time the element-wise loops between the GEMMs need.
public enum Gemm {
    /// OpenBLAS keeps to one thread from the first multiply on, whether or not `ComputeThreads.set` ran.
    static let openBLASSingleThreaded: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// `C = A·B`, or `C += A·B` when `accumulate` (a bias already in C).
    public static func multiply(transposeA: Bool = false, m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        _ = openBLASSingleThreaded
        let threads = ComputeThreads.available
        let transA = transposeA ? CblasTrans : CblasNoTrans
        func run(_ rows: Range<Int>, _ columns: Range<Int>) {
            guard !rows.isEmpty, !columns.isEmpty else { return }
            // Row offset into A: a row of A, or a column of Aᵀ's storage.
            let aStart = transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda
            cblas_sgemm(CblasRowMajor, transA, CblasNoTrans, Int32(rows.count), Int32(columns.count), Int32(k),
                        1, aStart, Int32(lda), b + columns.lowerBound, Int32(ldb), accumulate ? 1 : 0,
                        c + rows.lowerBound * ldc + columns.lowerBound, Int32(ldc))
        }
        let work = m * n * k
        if threads <= 1 || work < 1 << 18 {
            run(0..<m, 0..<n)
        } else if n >= 128 * threads {
            // Column blocks in multiples of 16 keep the kernels on full vectors.
            let blocks = (n + 15) / 16
            ComputeThreads.forEach(blocks) { range in
                run(0..<m, range.lowerBound * 16..<min(n, range.upperBound * 16))
            }
        } else {
            ComputeThreads.forEach(m, minimumPerThread: 8) { rows in run(rows, 0..<n) }
        }
    }

    /// `C = A·B` on row-major arrays (m x k times k x n into m x n), for callers outside the tensor layer.
    public static func multiply(m: Int, n: Int, k: Int, a: [Float], b: [Float], into c: inout [Float]) {
        precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n, "GEMM operand sizes")
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: n, c: c.baseAddress!, ldc: n)
                }
            }
        }
    }
}
