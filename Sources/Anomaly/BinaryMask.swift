/// Operations on row-major boolean masks (a feature grid's cells, or a frame's pixels).
public enum BinaryMask {
    /// The 4-connected regions of the set entries, each as its indices, in the order of their first index.
    public static func components(_ mask: [Bool], width w: Int, height h: Int) -> [[Int]] {
        precondition(mask.count == w * h)
        var seen = [Bool](repeating: false, count: mask.count)
        var result: [[Int]] = []
        for start in mask.indices where mask[start] && !seen[start] {
            var stack = [start], region: [Int] = []
            seen[start] = true
            while let p = stack.popLast() {
                region.append(p)
                let x = p % w, y = p / w
                if x > 0, mask[p - 1], !seen[p - 1] { seen[p - 1] = true; stack.append(p - 1) }
                if x < w - 1, mask[p + 1], !seen[p + 1] { seen[p + 1] = true; stack.append(p + 1) }
                if y > 0, mask[p - w], !seen[p - w] { seen[p - w] = true; stack.append(p - w) }
                if y < h - 1, mask[p + w], !seen[p + w] { seen[p + w] = true; stack.append(p + w) }
            }
            result.append(region)
        }
        return result
    }

    /// `mask` grown by `r` entries in every direction (a (2r+1)² square around each set entry): a pass along
    /// the rows, then one along the columns, each tracking the distance to the nearest set entry.
    public static func grow(_ mask: [Bool], width w: Int, height h: Int, by r: Int) -> [Bool] {
        precondition(mask.count == w * h && r >= 0)
        func pass(_ input: [Bool], count: Int, lines: Int, index: (Int, Int) -> Int) -> [Bool] {
            var out = [Bool](repeating: false, count: input.count)
            for line in 0..<lines {
                var last = Int.min / 2
                for i in 0..<count {
                    if input[index(line, i)] { last = i }
                    if i - last <= r { out[index(line, i)] = true }
                }
                last = Int.max / 2
                for i in stride(from: count - 1, through: 0, by: -1) {
                    if input[index(line, i)] { last = i }
                    if last - i <= r { out[index(line, i)] = true }
                }
            }
            return out
        }
        let rows = pass(mask, count: w, lines: h) { y, x in y * w + x }
        return pass(rows, count: h, lines: w) { x, y in y * w + x }
    }

    /// `mask` without its 4-connected regions of fewer than `minimum` entries.
    public static func dropSmall(_ mask: [Bool], width w: Int, height h: Int, minimum: Int) -> [Bool] {
        guard minimum > 1 else { return mask }
        var out = mask
        for region in components(mask, width: w, height: h) where region.count < minimum {
            for p in region { out[p] = false }
        }
        return out
    }
}
