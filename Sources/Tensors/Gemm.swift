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
        let transA = transposeA ? CblasTrans : CblasNoTrans
        func run(_ rows: Range<Int>, _ columns: Range<Int>) {
            guard !rows.isEmpty, !columns.isEmpty else { return }
            // Row offset into A: a row of A, or a column of Aᵀ's storage.
            let aStart = transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda
            cblas_sgemm(CblasRowMajor, transA, CblasNoTrans, Int32(rows.count), Int32(columns.count), Int32(k),
                        1, aStart, Int32(lda), b + columns.lowerBound, Int32(ldb), accumulate ? 1 : 0,
                        c + rows.lowerBound * ldc + columns.lowerBound, Int32(ldc))
        }
        // The pieces depend on the shape alone, never on the threads free at the moment: OpenBLAS picks its
        // kernel per call from the call's shape (on AVX-512 a direct kernel for small products, with another
        // order of additions), so pieces that followed the thread count gave results that differed in the last
        // bits between a stage working alone and one sharing the cores. Threads take whole pieces.
        let plan = GemmPlan(m: m, n: n, k: k)
        if plan.pieces == 1 {
            run(0..<m, 0..<n)
        } else if plan.splitsColumns {
            ComputeThreads.forEach(plan.pieces) { range in
                for piece in range { run(0..<m, plan.range(piece)) }
            }
        } else {
            ComputeThreads.forEach(plan.pieces) { range in
                for piece in range { run(plan.range(piece), 0..<n) }
            }
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

/// How one product is cut into pieces that threads share: a function of the shape only, so every element of C
/// is computed by the same OpenBLAS call whatever the number of threads (results equal bit for bit).
struct GemmPlan: Equatable {
    /// Below this many multiply-adds a product is one call: splitting it costs more than it gains.
    static let smallestSplit = 1 << 18
    /// At most this many pieces: enough for the cores roadwatch runs on, few enough that OpenBLAS's packing of
    /// the shared operand (repeated per call) stays a small part of each piece.
    static let maximumPieces = 8
    /// Column pieces are multiples of 16 (full AVX-512 vectors in the kernels) and at least 128 wide.
    static let columnAlignment = 16, minimumColumns = 128
    /// Row pieces (C narrow: K-Means' points by centroids) are multiples of 8 and at least 64 rows.
    static let rowAlignment = 8, minimumRows = 64

    let splitsColumns: Bool
    let pieces: Int
    let pieceLength: Int
    let total: Int

    init(m: Int, n: Int, k: Int) {
        splitsColumns = n >= 2 * Self.minimumColumns
        total = splitsColumns ? n : m
        let alignment = splitsColumns ? Self.columnAlignment : Self.rowAlignment
        let minimum = splitsColumns ? Self.minimumColumns : Self.minimumRows
        guard m * n * k >= Self.smallestSplit, total >= 2 * minimum else {
            pieces = 1
            pieceLength = max(1, total)
            return
        }
        let share = (total + Self.maximumPieces - 1) / Self.maximumPieces
        let length = max(minimum, (share + alignment - 1) / alignment * alignment)
        pieceLength = length
        pieces = (total + length - 1) / length
    }

    /// The columns (or rows) of piece `index`.
    func range(_ index: Int) -> Range<Int> {
        index * pieceLength..<min(total, (index + 1) * pieceLength)
    }
}
