/// A zero-bordered copy of a (C, H, W) tensor, so that 3x3 taps near an edge read zeros instead of being
/// checked: every plane has `pad` zero rows above and below and `pad` zero columns on the left, and rows long
/// enough that the kernels' vector loads (up to sixteen wide) past the last output stay inside the buffer (those lanes are never stored).
///
/// The copy can apply what the previous layer left for later — a per-channel affine map with a PReLU, and a
/// channel permutation — so that pass costs nothing extra.
struct PaddedPlanes {
    let base: UnsafeMutablePointer<Float>
    let channels: Int
    let height: Int
    let width: Int
    let pad: Int
    let rowStride: Int
    let planeStride: Int

    /// Pixel (0, 0) of channel `c`.
    @inline(__always) func origin(_ c: Int) -> UnsafeMutablePointer<Float> {
        base + c * planeStride + pad * rowStride + pad
    }

    /// Row length that keeps every load of a 3x3 convolution with `stride`, `dilation` and `padding` inside the
    /// row, for outputs computed up to sixteen at a time (the widest vector of `Kernels`).
    static func rowStride(width: Int, pad: Int, outWidth: Int, stride: Int, dilation: Int, padding: Int) -> Int {
        let vectors = (outWidth + 15) / 16
        // Rightmost column read, relative to the image's column 0: the last lane of the last vector's last tap,
        // and with stride 2 the odd neighbour a double-width load brings along.
        let reach = (vectors * 16 - 1) * stride - padding + 2 * dilation + (stride - 1)
        return pad + max(width + pad, reach + 1)
    }

    /// Space for `channels` planes of `height` x `width` in the arena slot `name`, its border zeroed and its inside
    /// left for the caller to fill (see `Resize.bilinear(_:into:)`).
    static func bordered(channels: Int, height h: Int, width w: Int, pad: Int, rowStride: Int, arena: Arena,
                                name: String) -> PaddedPlanes {
        let padded = allocate(channels: channels, height: h, width: w, pad: pad, rowStride: rowStride, arena: arena, name: name)
        for c in 0..<channels { padded.clearBorder(c) }
        return padded
    }

    private static func allocate(channels: Int, height h: Int, width w: Int, pad: Int, rowStride: Int, arena: Arena,
                                 name: String) -> PaddedPlanes {
        precondition(rowStride >= w + 2 * pad)
        let planeStride = (h + 2 * pad) * rowStride
        let storage = arena.tensor(name, [channels * planeStride])
        return PaddedPlanes(base: storage.data, channels: channels, height: h, width: w, pad: pad, rowStride: rowStride,
                            planeStride: planeStride)
    }

    /// Zeroes everything of plane `c` outside the image: the rows above and below, and each row's ends. A row's
    /// right end and the next row's left end are one run of floats, zeroed by a few vector stores (a call to
    /// memset per row end cost 2% of a frame).
    private func clearBorder(_ c: Int) {
        let plane = base + c * planeStride
        let gap = rowStride - width  // right end of one row and left end of the next
        plane.update(repeating: 0, count: pad * rowStride + pad)
        for y in 0..<(height - 1) { zeroRun(plane + (pad + y) * rowStride + pad + width, gap) }
        (plane + (pad + height - 1) * rowStride + pad + width).update(repeating: 0, count: gap - pad + pad * rowStride)
    }

    /// Zeroes `count` floats from `p` with vector stores (overlapping inside the run when it is not a multiple of 8).
    @inline(__always)
    private func zeroRun(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        let raw = UnsafeMutableRawPointer(p)
        if count >= 8 {
            var i = 0
            while i + 8 <= count {
                (raw + 4 * i).storeBytes(of: SIMD8<Float>(), as: SIMD8<Float>.self)
                i += 8
            }
            if i < count { (raw + 4 * (count - 8)).storeBytes(of: SIMD8<Float>(), as: SIMD8<Float>.self) }
            return
        }
        var i = 0
        if count & 4 != 0 { raw.storeBytes(of: SIMD4<Float>(), as: SIMD4<Float>.self); i = 4 }
        if count & 2 != 0 { (raw + 4 * i).storeBytes(of: SIMD2<Float>(), as: SIMD2<Float>.self); i += 2 }
        if count & 1 != 0 { p[i] = 0 }
    }

    /// Per-channel work done while copying: `value * scale + shift`, then a PReLU when `slopes` is given.
    struct Transform {
        let scale: [Float]
        let shift: [Float]
        let slopes: [Float]?

        init(scale: [Float], shift: [Float], slopes: [Float]? = nil) {
            self.scale = scale
            self.shift = shift
            self.slopes = slopes
        }
    }

    /// Copies `x` (or, with `sourceChannel`, channel `sourceChannel[c]` of `x` into plane `c`) into the arena slot
    /// `name`, bordered by `pad` zeros, with rows of `rowStride` floats. A `transform` is indexed by the
    /// source channel.
    /// With `means`, each plane's mean (in double) is written there as its rows are copied (no `transform`).
    static func copy(_ x: Tensor, pad: Int, rowStride: Int, arena: Arena, name: String,
                            sourceChannel: [Int]? = nil, transform: Transform? = nil,
                            means: UnsafeMutablePointer<Float>? = nil) -> PaddedPlanes {
        precondition(means == nil || transform == nil)
        let h = x.height, w = x.width
        let padded = allocate(channels: x.channels, height: h, width: w, pad: pad, rowStride: rowStride, arena: arena,
                              name: name)
        nonisolated(unsafe) let means = means
        ComputeThreads.forEach(x.channels, minimumPerThread: 2) { range in
            for c in range {
                padded.clearBorder(c)
                let sourceIndex = sourceChannel?[c] ?? c
                let src = x.channel(sourceIndex), target = padded.origin(c)
                var lanes = SIMD8<Double>(), rest = 0.0
                for y in 0..<h {
                    if let transform {
                        affineRow(src + y * w, into: target + y * rowStride, count: w, scale: transform.scale[sourceIndex],
                                  shift: transform.shift[sourceIndex], slope: transform.slopes?[sourceIndex])
                    } else if means != nil {
                        rest += copyRow(src + y * w, into: target + y * rowStride, count: w, summingInto: &lanes)
                    } else {
                        copyRow(src + y * w, into: target + y * rowStride, count: w)
                    }
                }
                means?[c] = Float((lanes.sum() + rest) / Double(h * w))
            }
        }
        return padded
    }
}

/// `copyRow`, adding the row's values into `lanes` (eight running sums in double, one per lane of eight floats);
/// returns the sum of the values past the last group of eight.
@inline(__always)
func copyRow(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int,
             summingInto lanes: inout SIMD8<Double>) -> Double {
    var i = 0
    while i + 8 <= count {
        let v = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: v, as: SIMD8<Float>.self)
        lanes += SIMD8<Double>(v)
        i += 8
    }
    var rest = 0.0
    while i < count {
        dst[i] = src[i]
        rest += Double(src[i])
        i += 1
    }
    return rest
}

/// `count` floats from `src` to `dst` (which do not overlap) by vector loads and stores: rows of a few hundred floats
/// each, where a memmove call per row costs more than the copy.
@inline(__always)
func copyRow(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self),
                                                    as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        dst[i] = src[i]
        i += 1
    }
}

/// Eight inputs two apart from `p` (the even lanes of sixteen).
@inline(__always)
func evenLanes(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self).evenHalf
}

/// Stores the first `count` (at most eight) lanes of `v` at `p`.
@inline(__always)
func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, count: Int) {
    if count >= 8 {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    } else {
        for i in 0..<count { p[i] = v[i] }
    }
}
