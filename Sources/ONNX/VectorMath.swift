/// exp and erf eight floats at a time, for softmax and GELU (the transformer's element-wise cost). exp is the
/// Cephes single-precision algorithm (range reduction by ln 2 in two parts, a degree-5 polynomial, the
/// exponent set by bits): within 2 ulp of `expf` from -87.3 to 88.3 (clamped outside). erf is Cephes' series
/// x·T(x²) below 1 and Abramowitz and Stegun 7.1.26 on that exp above: within a few 1e-7 of `erff`.
enum VectorMath {
    typealias Vector = SIMD8<Float>

    typealias Bits = SIMD8<UInt32>

    @inline(__always)
    static func exp(_ value: Vector) -> Vector {
        // Clamped so that n stays in [-126, 127] (x ≤ 127.5·ln 2; softmax and GELU only ever pass x ≤ 0).
        let low = Vector(repeating: -87.33654), high = Vector(repeating: 88.37626)
        let x = value.replacing(with: low, where: value .< low).replacing(with: high, where: value .> high)
        // n = round(x·log2 e) by the 1.5·2^23 trick: the sum's low mantissa bits hold n.
        let shifted = x * 1.44269504088896341 + 12582912
        let n = shifted - 12582912
        let r = x - n * 0.693359375 + n * 2.12194440e-4
        var p = Vector(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * r * r + r + 1
        let exponent = (unsafeBitCast(shifted, to: Bits.self) &- 0x4B40_0000 &+ 127) &<< 23
        return y * unsafeBitCast(exponent, to: Vector.self)
    }

    @inline(__always)
    static func erf(_ value: Vector) -> Vector {
        let bits = unsafeBitCast(value, to: Bits.self)
        let a = unsafeBitCast(bits & 0x7FFF_FFFF, to: Vector.self)
        let t = 1 / (1 + 0.3275911 * a)
        var p = Vector(repeating: 1.061405429)
        p = p * t - 1.453152027
        p = p * t + 1.421413741
        p = p * t - 0.284496736
        p = p * t + 0.254829592
        let far = Vector(repeating: 1) - p * t * exp(-(a * a))
        // Below 1 the series x·T(x²) (Cephes erff) is closer: 1 − (…) loses bits there.
        let z = a * a
        var q = Vector(repeating: 7.853861353153693e-5)
        q = q * z - 8.010193625184903e-4
        q = q * z + 5.188327685732524e-3
        q = q * z - 2.685381193529856e-2
        q = q * z + 1.128358514861418e-1
        q = q * z - 3.761262582423300e-1
        q = q * z + 1.128379165726710
        let magnitude = far.replacing(with: a * q, where: a .< 1)
        return unsafeBitCast(unsafeBitCast(magnitude, to: Bits.self) | (bits & 0x8000_0000), to: Vector.self)
    }

    /// `f` over `count` values from `source` into `target` (which may be `source`), eight at a time, the
    /// tail through a padded vector.
    @inline(__always)
    static func apply(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, _ count: Int, _ f: (Vector) -> Vector) {
        var i = 0
        while i + 8 <= count {
            let v = UnsafeRawPointer(source + i).loadUnaligned(as: Vector.self)
            UnsafeMutableRawPointer(target + i).storeBytes(of: f(v), as: Vector.self)
            i += 8
        }
        if i < count {
            var v = Vector()
            for j in 0..<(count - i) { v[j] = source[i + j] }
            let r = f(v)
            for j in 0..<(count - i) { target[i + j] = r[j] }
        }
    }

    /// The largest of `count` values (-infinity for none).
    @inline(__always)
    static func maximum(_ source: UnsafePointer<Float>, _ count: Int) -> Float {
        var best = Vector(repeating: -.infinity), i = 0
        while i + 8 <= count {
            let v = UnsafeRawPointer(source + i).loadUnaligned(as: Vector.self)
            best = best.replacing(with: v, where: v .> best)
            i += 8
        }
        var top = best.max()
        while i < count { top = max(top, source[i]); i += 1 }
        return top
    }

    /// The sum of `count` values, eight partial sums at a time.
    @inline(__always)
    static func sum(_ source: UnsafePointer<Float>, _ count: Int) -> Float {
        var partial = Vector(), i = 0
        while i + 8 <= count {
            partial += UnsafeRawPointer(source + i).loadUnaligned(as: Vector.self)
            i += 8
        }
        var total = partial.sum()
        while i < count { total += source[i]; i += 1 }
        return total
    }
}
