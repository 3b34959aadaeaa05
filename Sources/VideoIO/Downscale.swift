import CFFmpeg

extension Raster where Sample == UInt8 {
    /// The image scaled down to at most `maxWidth` columns (aspect kept, both sides even so H.264 takes it) by
    /// libswscale's area filter: each output pixel a weighted mean of the source pixels it covers. Images already
    /// narrow enough are only cropped to even sides. Rasters of 1 (gray) and 3 (RGB) channels. (libswscale takes
    /// 3.1 ms at 960x540 to 640 wide where the box filter written here before took 7.0 ms; a camera with event clips
    /// scales every frame.)
    public func downscaled(maxWidth: Int) -> Raster<UInt8> {
        let scale = width > maxWidth ? Double(maxWidth) / Double(width) : 1
        let ow = Swift.max(2, Int((Double(width) * scale).rounded(.down)) & ~1)
        let oh = Swift.max(2, Int((Double(height) * scale).rounded(.down)) & ~1)
        if ow == width && oh == height { return self }
        let format: AVPixelFormat
        switch channels {
        case 1: format = AV_PIX_FMT_GRAY8
        case 3: format = AV_PIX_FMT_RGB24
        default: preconditionFailure("downscaled: \(channels) channels (1 or 3 are scaled)")
        }
        // Only cropped (already narrow enough, an odd side): the rows copied as they are.
        if scale == 1 {
            var out = [UInt8](repeating: 0, count: ow * oh * channels)
            for y in 0..<oh {
                out[(y * ow * channels)..<((y + 1) * ow * channels)] =
                    samples[(y * width * channels)..<(y * width * channels + ow * channels)]
            }
            return Raster(width: ow, height: oh, channels: channels, samples: out)
        }
        guard let scaler = sws_getContext(Int32(width), Int32(height), format, Int32(ow), Int32(oh), format,
                                          SWS_AREA, nil, nil, nil) else {
            preconditionFailure("libswscale refused \(width)x\(height) -> \(ow)x\(oh)")
        }
        defer { sws_freeContext(scaler) }
        let out = [UInt8](unsafeUninitializedCapacity: ow * oh * channels) { buffer, count in
            samples.withUnsafeBufferPointer { source in
                var sourcePlanes: [UnsafePointer<UInt8>?] = [source.baseAddress, nil, nil, nil]
                var sourceStrides: [Int32] = [Int32(width * channels), 0, 0, 0]
                var planes: [UnsafeMutablePointer<UInt8>?] = [buffer.baseAddress, nil, nil, nil]
                var strides: [Int32] = [Int32(ow * channels), 0, 0, 0]
                let rows = sws_scale(scaler, &sourcePlanes, &sourceStrides, 0, Int32(height), &planes, &strides)
                precondition(rows == Int32(oh), "libswscale wrote \(rows) of \(oh) rows")
            }
            count = ow * oh * channels
        }
        return Raster(width: ow, height: oh, channels: channels, samples: out)
    }
}
