import Tensors
/// Operators that move values without arithmetic: reshapes, transposes, slices, concatenation, gathers.
enum ShapeOps {
    static func axis(_ axis: Int, rank: Int, _ node: Node) throws(ONNXError) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0 && resolved < max(rank, 1) else { throw node.fail("axis \(axis) out of range for rank \(rank)") }
        return resolved
    }

    /// Rearranges elements by `source(index)` for each output position, keeping the integer/float kind.
    static func gathered(_ x: Value, shape: [Int], _ source: [Int]) -> Value {
        if let ints = x.ints { return Value(shape: shape, ints: source.map { ints[$0] }) }
        let floats = x.floats
        return Value(shape: shape, floats: source.map { floats[$0] })
    }

    static func reshape(_ node: Node, _ x: Value, _ target: Value) throws(ONNXError) -> Value {
        let allowZero = try node.int("allowzero", 0) == 1
        var shape = target.intValues.map { Int($0) }
        for (i, d) in shape.enumerated() where d == 0 && !allowZero {
            guard i < x.rank else { throw node.fail("0 at axis \(i) of a shape for rank \(x.rank)") }
            shape[i] = x.shape[i]
        }
        if let unknown = shape.firstIndex(of: -1) {
            let others = shape.enumerated().filter { $0.offset != unknown }.map(\.element)
            guard let known = Value.elementCount(others), known > 0 && x.count % known == 0 else {
                throw node.fail("cannot reshape \(x.shape) to \(shape)")
            }
            shape[unknown] = x.count / known
        }
        guard Value.elementCount(shape) == x.count else {
            throw node.fail("cannot reshape \(x.shape) to \(shape)")
        }
        return x.reshaped(shape)
    }

    static func transpose(_ node: Node, _ x: Value) throws(ONNXError) -> Value {
        let perm = try node.ints("perm") ?? Array((0..<x.rank).reversed())
        guard perm.sorted() == Array(0..<x.rank) else { throw node.fail("perm \(perm) for rank \(x.rank)") }
        let shape = perm.map { x.shape[$0] }
        let strides = Value.strides(x.shape)
        guard x.rank > 0 else { return x }
        let permuted = perm.map { strides[$0] }
        if let ints = x.ints { return Value(shape: shape, ints: transposed(ints, shape: shape, strides: permuted)) }
        guard x.count > 0 else { return Value(shape: shape, floats: []) }
        // Axes that move together merged: [outer…, A, B] → [outer…, B, A] is a batch of matrix transposes
        // (NCHW ↔ tokens-by-channels, keys transposed for attention).
        var groups: [[Int]] = []
        for axis in perm {
            if let last = groups.last?.last, axis == last + 1 { groups[groups.count - 1].append(axis) } else { groups.append([axis]) }
        }
        let sizes = groups.map { $0.reduce(1) { $0 * x.shape[$1] } }
        if groups.count >= 2, groups.count <= 3, groups[groups.count - 2].first == groups.last!.last! + 1,
           groups.count == 2 || groups[0] == Array(0..<groups[0].count) {
            let rows = sizes[sizes.count - 1], columns = sizes[sizes.count - 2]
            return Value(shape: shape, floats: lastTwoSwapped(x.floats, batches: x.count / (rows * columns), rows: rows, columns: columns))
        }
        return Value(shape: shape, floats: transposed(x.floats, shape: shape, strides: permuted))
    }

    /// Batches of rows x columns matrices transposed, in 16x16 tiles so reads and writes both stay in cache.
    static func lastTwoSwapped(_ source: [Float], batches: Int, rows: Int, columns: Int) -> [Float] {
        let plane = rows * columns
        return source.withUnsafeBufferPointer { s in
            [Float](unsafeUninitializedCapacity: batches * plane) { o, initialized in
                let s = s.baseAddress!, o = o.baseAddress!
                let bands = (rows + 15) / 16
                ComputeThreads.forEach(batches * bands, minimumPerThread: max(1, 4096 / max(1, columns))) { range in
                    for index in range {
                        let b = index / bands, r0 = (index % bands) * 16
                        let from = s + b * plane, to = o + b * plane
                        for c0 in stride(from: 0, to: columns, by: 16) {
                            for r in r0..<min(rows, r0 + 16) {
                                for c in c0..<min(columns, c0 + 16) { (to + c * rows + r).initialize(to: from[r * columns + c]) }
                            }
                        }
                    }
                }
                initialized = batches * plane
            }
        }
    }

    /// `source` read in the order of `shape`, whose axes step through it by `strides`: the output is walked
    /// in order with the source offset kept incrementally (no index array), rows of a last axis that stays
    /// last copied whole.
    static func transposed<T>(_ source: [T], shape: [Int], strides: [Int]) -> [T] {
        let count = shape.reduce(1, *), last = shape.count - 1
        guard count > 0 else { return [] }
        return source.withUnsafeBufferPointer { s in
            [T](unsafeUninitializedCapacity: count) { o, initialized in
                var position = [Int](repeating: 0, count: shape.count)
                var offset = 0, i = 0
                let inner = shape[last], step = strides[last]
                while i < count {
                    if step == 1 {  // the last axis stays last: its rows are copied whole
                        (o.baseAddress! + i).initialize(from: s.baseAddress! + offset, count: inner)
                    } else {
                        var p = offset
                        for j in i..<(i + inner) { (o.baseAddress! + j).initialize(to: s[p]); p += step }
                    }
                    i += inner
                    var axis = last - 1
                    while axis >= 0 {
                        position[axis] += 1
                        offset += strides[axis]
                        if position[axis] < shape[axis] { break }
                        offset -= strides[axis] * shape[axis]
                        position[axis] = 0
                        axis -= 1
                    }
                }
                initialized = count
            }
        }
    }

    static func concat(_ node: Node, _ values: [Value]) throws(ONNXError) -> Value {
        guard let first = values.first else { throw node.fail("no inputs") }
        let axis = try Self.axis(try node.int("axis", 0), rank: first.rank, node)
        var shape = first.shape
        shape[axis] = 0
        for value in values {
            guard value.rank == first.rank, zip(value.shape, first.shape).enumerated().allSatisfy({ $0.offset == axis || $0.element.0 == $0.element.1 }) else {
                throw node.fail("cannot concatenate \(values.map(\.shape)) along axis \(axis)")
            }
            shape[axis] += value.shape[axis]
        }
        let outer = shape[..<axis].reduce(1, *)
        let allInt = values.allSatisfy(\.isInt)
        var floats: [Float] = [], ints: [Int64] = []
        if allInt { ints.reserveCapacity(shape.reduce(1, *)) } else { floats.reserveCapacity(shape.reduce(1, *)) }
        let sources = allInt ? [] : values.map(\.floatValues)
        for o in 0..<outer {
            for (n, value) in values.enumerated() {
                let block = value.shape[axis...].reduce(1, *), range = (o * block)..<((o + 1) * block)
                if allInt { ints.append(contentsOf: value.ints![range]) } else { floats.append(contentsOf: sources[n][range]) }
            }
        }
        return allInt ? Value(shape: shape, ints: ints) : Value(shape: shape, floats: floats)
    }

    /// Elements `range` along `axis` (step 1).
    static func narrow(_ x: Value, axis: Int, _ range: Range<Int>) -> Value {
        slice(x, axis: axis, start: range.lowerBound, step: 1, count: range.count)
    }

    static func slice(_ x: Value, axis: Int, start: Int, step: Int, count: Int) -> Value {
        var shape = x.shape
        shape[axis] = count
        let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
        var source: [Int] = []
        source.reserveCapacity(shape.reduce(1, *))
        for o in 0..<outer {
            for j in 0..<count {
                let base = (o * x.shape[axis] + start + j * step) * inner
                for i in 0..<inner { source.append(base + i) }
            }
        }
        return gathered(x, shape: shape, source)
    }

    static func sliceOp(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let x = inputs[0] else { throw node.fail("no input") }
        let starts: [Int], ends: [Int]
        var axes: [Int]?, steps: [Int]?
        if inputs.count >= 3, let s = inputs[1], let e = inputs[2] {
            starts = s.intValues.map(clampInt)
            ends = e.intValues.map(clampInt)
            if inputs.count > 3, let a = inputs[3] { axes = a.intValues.map { Int($0) } }
            if inputs.count > 4, let t = inputs[4] { steps = t.intValues.map { Int($0) } }
        } else {
            starts = try node.ints("starts") ?? []
            ends = try node.ints("ends") ?? []
            axes = try node.ints("axes")
        }
        guard ends.count == starts.count, (axes?.count ?? starts.count) == starts.count, (steps?.count ?? starts.count) == starts.count else {
            throw node.fail("\(starts.count) starts, \(ends.count) ends, \(axes?.count ?? 0) axes and \(steps?.count ?? 0) steps do not pair up")
        }
        var result = x
        for (n, start) in starts.enumerated() {
            let axis = try Self.axis(axes?[n] ?? n, rank: x.rank, node)
            let step = steps?[n] ?? 1
            // A step past ±2^31 would overflow the count below; no shape is that long.
            guard step != 0, step.magnitude <= 1 << 31 else { throw node.fail("step \(step)") }
            let size = result.shape[axis]
            func clamp(_ v: Int, _ low: Int, _ high: Int) -> Int { min(max(v, low), high) }
            var s = start < 0 ? start + size : start, e = ends[n] < 0 ? ends[n] + size : ends[n]
            let count: Int
            if step > 0 {
                s = clamp(s, 0, size); e = clamp(e, 0, size)
                count = max(0, (e - s + step - 1) / step)
            } else {
                s = clamp(s, 0, size - 1); e = clamp(e, -1, size - 1)
                count = max(0, (s - e - step - 1) / -step)
            }
            result = slice(result, axis: axis, start: s, step: step, count: count)
        }
        return result
    }

    static func clampInt(_ v: Int64) -> Int { Int(max(min(v, Int64(Int32.max)), Int64(Int32.min))) }

    static func split(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> [Value] {
        guard let x = inputs[0] else { throw node.fail("no input") }
        let axis = try Self.axis(try node.int("axis", 0), rank: x.rank, node)
        var sizes: [Int]
        if inputs.count > 1, let given = inputs[1] {
            sizes = given.intValues.map { Int($0) }
        } else if let given = try node.ints("split") {
            sizes = given
        } else {
            let parts = node.outputs.count
            let each = (x.shape[axis] + parts - 1) / parts
            sizes = (0..<parts).map { min(each, x.shape[axis] - $0 * each) }
        }
        guard sizes.allSatisfy({ $0 >= 0 && $0 <= x.shape[axis] }), sizes.reduce(0, +) == x.shape[axis] else {
            throw node.fail("split \(sizes) of axis size \(x.shape[axis])")
        }
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return narrow(x, axis: axis, start..<(start + size))
        }
    }

    static func gather(_ node: Node, _ x: Value, _ indices: Value) throws(ONNXError) -> Value {
        let axis = try Self.axis(try node.int("axis", 0), rank: x.rank, node)
        let size = x.shape[axis]
        let picks = try indices.intValues.map { (i: Int64) throws(ONNXError) -> Int in
            let index = Int(i < 0 ? i + Int64(size) : i)
            guard index >= 0 && index < size else { throw node.fail("index \(i) out of range for size \(size)") }
            return index
        }
        let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
        var source: [Int] = []
        for o in 0..<outer {
            for p in picks {
                let base = (o * size + p) * inner
                for i in 0..<inner { source.append(base + i) }
            }
        }
        let shape = Array(x.shape[..<axis]) + indices.shape + Array(x.shape[(axis + 1)...])
        return gathered(x, shape: shape, source)
    }

    static func squeeze(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let x = inputs[0] else { throw node.fail("no input") }
        let given = inputs.count > 1 ? inputs[1].map { $0.intValues.map { Int($0) } } : try node.ints("axes")
        let axes = try (given ?? x.shape.indices.filter { x.shape[$0] == 1 }).map { (a: Int) throws(ONNXError) in
            try axis(a, rank: x.rank, node)
        }
        for a in axes where x.shape[a] != 1 { throw node.fail("cannot squeeze axis \(a) of size \(x.shape[a])") }
        return x.reshaped(x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))
    }

    static func unsqueeze(_ node: Node, _ inputs: [Value?]) throws(ONNXError) -> Value {
        guard let x = inputs[0] else { throw node.fail("no input") }
        guard let given = inputs.count > 1 ? inputs[1].map({ $0.intValues.map { Int($0) } }) : try node.ints("axes") else {
            throw node.fail("no axes")
        }
        let rank = x.rank + given.count
        let axes = try given.map { (a: Int) throws(ONNXError) in try axis(a, rank: rank, node) }.sorted()
        var shape = x.shape
        for a in axes { shape.insert(1, at: a) }
        return x.reshaped(shape)
    }

    static func flatten(_ node: Node, _ x: Value) throws(ONNXError) -> Value {
        let raw = try node.int("axis", 1)
        let axis = raw < 0 ? raw + x.rank : raw
        guard axis >= 0 && axis <= x.rank else { throw node.fail("axis \(raw) for rank \(x.rank)") }
        return x.reshaped([x.shape[..<axis].reduce(1, *), x.shape[axis...].reduce(1, *)])
    }

    static func expand(_ node: Node, _ x: Value, _ target: Value) throws(ONNXError) -> Value {
        guard let shape = Broadcast.shape(x.shape, target.intValues.map { Int($0) }) else {
            throw node.fail("cannot expand \(x.shape) to \(target.intValues)")
        }
        return gathered(x, shape: shape, Broadcast.indices(of: x.shape, in: shape))
    }

    static func tile(_ node: Node, _ x: Value, _ repeats: Value) throws(ONNXError) -> Value {
        let times = repeats.intValues.map { Int($0) }
        guard times.count == x.rank, times.allSatisfy({ $0 >= 1 && $0 <= ONNXGraph.maximumElements }) else {
            throw node.fail("repeats \(times) for rank \(x.rank)")
        }
        let shape = zip(x.shape, times).map { $0 * $1 }
        guard Value.elementCount(shape) != nil else { throw node.fail("repeats \(times) make too large a value of \(x.shape)") }
        let strides = Value.strides(x.shape)
        var source = [Int](repeating: 0, count: shape.reduce(1, *))
        let outStrides = Value.strides(shape)
        for i in source.indices {
            var rest = i, index = 0
            for axis in 0..<shape.count {
                let p = rest / outStrides[axis]
                rest %= outStrides[axis]
                index += (p % x.shape[axis]) * strides[axis]
            }
            source[i] = index
        }
        return gathered(x, shape: shape, source)
    }
}
