import Tensors

/// MatMul by a constant matrix whose rows (left operand) or columns (right operand) hold their non-zeros in
/// short bands: the matrices that adaptive pooling and resizing become when exported (`P_h · X · P_wᵀ`), which
/// a dense GEMM would spend most of its time multiplying by zero. Found at preparation (`Fusion`), run as
/// short dot products (right constant) or row combinations (left constant); exact sums of the same products.
enum BandedMatMul {
    static let op = "roadwatch.BandedMatMul"

    /// Per band (a column of a right constant, a row of a left one): first index, length, values.
    struct Bands {
        var starts: [Int], lengths: [Int], offsets: [Int], values: [Float]
    }

    /// The bands of `matrix` (2-D, rows x columns) along `columns` (true: one band per column), or nil when
    /// they would cover more than a quarter of it (a dense GEMM is then the better tool).
    static func bands(of matrix: Value, perColumn: Bool) -> Bands? {
        guard matrix.rank == 2, !matrix.isInt else { return nil }
        let rows = matrix.shape[0], columns = matrix.shape[1], values = matrix.floats
        let count = perColumn ? columns : rows, span = perColumn ? rows : columns
        var result = Bands(starts: [], lengths: [], offsets: [], values: [])
        for band in 0..<count {
            func value(_ i: Int) -> Float { perColumn ? values[i * columns + band] : values[band * columns + i] }
            var first = 0
            while first < span && value(first) == 0 { first += 1 }
            var last = span - 1
            while last >= first && value(last) == 0 { last -= 1 }
            let length = max(0, last - first + 1)
            result.starts.append(first)
            result.lengths.append(length)
            result.offsets.append(result.values.count)
            for i in first..<(first + length) { result.values.append(value(i)) }
            if result.values.count * 4 > rows * columns { return nil }
        }
        return result
    }

    static func attributes(_ bands: Bands, constantIsLeft: Bool) -> [String: Attribute] {
        ["roadwatch.band.starts": .ints(bands.starts.map(Int64.init)), "roadwatch.band.lengths": .ints(bands.lengths.map(Int64.init)),
         "roadwatch.band.values": .floats(bands.values), "roadwatch.band.left": .int(constantIsLeft ? 1 : 0)]
    }

    static func run(_ node: Node, _ a: Value, _ b: Value) throws(ONNXError) -> Value {
        guard case .ints(let starts64)? = node.attributes["roadwatch.band.starts"],
              case .ints(let lengths64)? = node.attributes["roadwatch.band.lengths"],
              case .floats(let values)? = node.attributes["roadwatch.band.values"],
              case .int(let left)? = node.attributes["roadwatch.band.left"] else { throw node.fail("bands missing") }
        let starts = starts64.map { Int($0) }, lengths = lengths64.map { Int($0) }
        var offsets = [Int](repeating: 0, count: lengths.count)
        for i in 1..<max(1, lengths.count) { offsets[i] = offsets[i - 1] + lengths[i - 1] }
        if left == 0 {
            // X (…, M, K) · C (K, N): each output is a short dot product of a row of X with column n's band.
            let k = b.shape[0], n = b.shape[1]
            guard a.rank >= 2, a.shape.last == k, lengths.count == n else { throw node.fail("cannot multiply \(a.shape) by \(b.shape)") }
            let rows = a.count / k, xs = a.floatValues
            var out = [Float](repeating: 0, count: rows * n)
            xs.withUnsafeBufferPointer { x in
                values.withUnsafeBufferPointer { v in
                    out.withUnsafeMutableBufferPointer { o in
                        let x = x.baseAddress!, v = v.baseAddress!, o = o.baseAddress!
                        ComputeThreads.forEach(rows, minimumPerThread: 16) { range in
                            for r in range {
                                let row = x + r * k, line = o + r * n
                                for j in 0..<n {
                                    var sum: Float = 0
                                    let start = row + starts[j], weights = v + offsets[j]
                                    for i in 0..<lengths[j] { sum += start[i] * weights[i] }
                                    line[j] = sum
                                }
                            }
                        }
                    }
                }
            }
            return Value(shape: Array(a.shape.dropLast()) + [n], floats: out)
        }
        // C (M, K) · X (…, K, N): each output row is a combination of the band's rows of X.
        let m = a.shape[0], k = a.shape[1]
        guard b.rank >= 2, b.shape[b.rank - 2] == k, lengths.count == m else { throw node.fail("cannot multiply \(a.shape) by \(b.shape)") }
        let n = b.shape[b.rank - 1], batches = b.count / (k * n), ys = b.floatValues
        var out = [Float](repeating: 0, count: batches * m * n)
        ys.withUnsafeBufferPointer { y in
            values.withUnsafeBufferPointer { v in
                out.withUnsafeMutableBufferPointer { o in
                    let y = y.baseAddress!, v = v.baseAddress!, o = o.baseAddress!
                    ComputeThreads.forEach(batches * m, minimumPerThread: 4) { range in
                        for index in range {
                            let t = index / m, row = index % m, line = o + index * n
                            for i in 0..<lengths[row] {
                                let weight = v[offsets[row] + i], source = y + (t * k + starts[row] + i) * n
                                for j in 0..<n { line[j] += weight * source[j] }
                            }
                        }
                    }
                }
            }
        }
        return Value(shape: Array(b.shape.dropLast(2)) + [m, n], floats: out)
    }
}
