import VideoIO

extension Raster where Sample == UInt8 {
    /// The image scaled down to at most `maxWidth` columns (aspect kept, both sides even so H.264 takes it),
    /// each output pixel the mean of the source pixels it covers. Images already narrow enough are only
    /// cropped to even sides.
    public func downscaled(maxWidth: Int) -> Raster<UInt8> {
        let scale = width > maxWidth ? Double(maxWidth) / Double(width) : 1
        let ow = Swift.max(2, Int((Double(width) * scale).rounded(.down)) & ~1)
        let oh = Swift.max(2, Int((Double(height) * scale).rounded(.down)) & ~1)
        if ow == width && oh == height { return self }
        var out = [UInt8](repeating: 0, count: ow * oh * channels)
        // Source span [x0, x1) of each output column and row.
        let xs = (0...ow).map { Swift.min(width, $0 * width / ow) }
        let ys = (0...oh).map { Swift.min(height, $0 * height / oh) }
        samples.withUnsafeBufferPointer { src in
            var sums = [Int](repeating: 0, count: channels)
            for oy in 0..<oh {
                let y0 = ys[oy], y1 = Swift.max(ys[oy] + 1, ys[oy + 1])
                for ox in 0..<ow {
                    let x0 = xs[ox], x1 = Swift.max(xs[ox] + 1, xs[ox + 1])
                    for c in 0..<channels { sums[c] = 0 }
                    for y in y0..<Swift.min(y1, height) {
                        var i = (y * width + x0) * channels
                        for _ in x0..<Swift.min(x1, width) {
                            for c in 0..<channels { sums[c] += Int(src[i + c]) }
                            i += channels
                        }
                    }
                    let n = (Swift.min(y1, height) - y0) * (Swift.min(x1, width) - x0)
                    let o = (oy * ow + ox) * channels
                    for c in 0..<channels { out[o + c] = UInt8((sums[c] + n / 2) / Swift.max(1, n)) }
                }
            }
        }
        return Raster(width: ow, height: oh, channels: channels, samples: out)
    }
}
