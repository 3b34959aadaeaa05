import Foundation

/// Byte writing for fixtures: the tests build their own files, box by box, so they know every byte.
extension Data {
    mutating func u8(_ v: UInt8) { append(v) }
    mutating func be16(_ v: UInt16) { Swift.withUnsafeBytes(of: v.bigEndian) { append(contentsOf: $0) } }
    mutating func be32(_ v: UInt32) { Swift.withUnsafeBytes(of: v.bigEndian) { append(contentsOf: $0) } }
    mutating func be64(_ v: UInt64) { Swift.withUnsafeBytes(of: v.bigEndian) { append(contentsOf: $0) } }
    mutating func bei32(_ v: Int32) { be32(UInt32(bitPattern: v)) }
    mutating func le16(_ v: UInt16) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
    mutating func le32(_ v: UInt32) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
    mutating func lef32(_ v: Float) { le32(v.bitPattern) }
    mutating func lef64(_ v: Double) { Swift.withUnsafeBytes(of: v.bitPattern.littleEndian) { append(contentsOf: $0) } }
    mutating func ascii(_ s: String) { append(contentsOf: Array(s.utf8)) }
    mutating func zeros(_ n: Int) { append(contentsOf: [UInt8](repeating: 0, count: n)) }
}

/// ISO BMFF boxes.
enum Box {
    static func make(_ type: String, _ payload: Data) -> Data {
        var d = Data()
        d.be32(UInt32(8 + payload.count))
        d.ascii(type)
        d.append(payload)
        return d
    }

    /// A box whose size is in the 64-bit field (size field 1).
    static func large(_ type: String, _ payload: Data) -> Data {
        var d = Data()
        d.be32(1)
        d.ascii(type)
        d.be64(UInt64(16 + payload.count))
        d.append(payload)
        return d
    }

    static func full(_ type: String, version: UInt8 = 0, flags: UInt32 = 0, _ payload: Data) -> Data {
        var d = Data()
        d.be32(UInt32(version) << 24 | flags)
        d.append(payload)
        return make(type, d)
    }

    static func container(_ type: String, _ children: [Data]) -> Data {
        make(type, children.reduce(Data(), +))
    }
}

/// One track for `MovieBuilder`.
struct TrackSpec {
    var handler = "meta"
    var format = "gpmd"
    var timescale: UInt32 = 1000
    var samples: [Data] = []
    /// Per-sample durations in `timescale` ticks.
    var durations: [UInt32] = []
    var samplesPerChunk = 1
    /// An empty edit of this many movie ticks before the media (a delayed track).
    var emptyEdit: UInt32?
    /// The media time the (first) media edit starts at.
    var mediaTimeEdit: Int32?
    var use64BitOffsets = false
    var compactSizes = false
}

/// Builds a QuickTime/MP4 file from track specs, with every sample where the tables say it is.
struct MovieBuilder {
    enum Layout { case mdatFirst, moovFirst }

    var tracks: [TrackSpec] = []
    var movieTimescale: UInt32 = 1000
    var layout = Layout.mdatFirst
    /// In `.moovFirst` only: write the final 'mdat' with size 0 ("to the end of the file").
    var mdatSizeZero = false
    /// A 64-bit 'mdat' header.
    var largeMdat = false
    /// Top-level boxes placed after 'mdat' (before 'moov' in `.mdatFirst`); `moovExtras` gets their offsets.
    var topLevelExtras: [Data] = []
    /// Extra 'moov' children, made once the offsets of `topLevelExtras` are known.
    var moovExtras: ([UInt64]) -> [Data] = { _ in [] }

    func build() -> Data {
        let ftyp = Box.make("ftyp", { var d = Data(); d.ascii("qt  "); d.be32(0); d.ascii("qt  "); return d }())
        // Interleave chunks of the tracks round-robin, as cameras do.
        var chunks: [(track: Int, samples: Range<Int>)] = []
        var next = Array(repeating: 0, count: tracks.count)
        while zip(next, tracks).contains(where: { $0 < $1.samples.count }) {
            for (t, spec) in tracks.enumerated() where next[t] < spec.samples.count {
                let end = min(next[t] + spec.samplesPerChunk, spec.samples.count)
                chunks.append((t, next[t]..<end))
                next[t] = end
            }
        }
        let mdatPayload = chunks.reduce(Data()) { acc, c in acc + tracks[c.track].samples[c.samples].reduce(Data(), +) }
        let mdatHeader = largeMdat ? 16 : 8

        func moov(mdatPayloadStart: UInt64, extraOffsets: [UInt64]) -> Data {
            var chunkOffsets = Array(repeating: [UInt64](), count: tracks.count)
            var position = mdatPayloadStart
            for c in chunks {
                chunkOffsets[c.track].append(position)
                position += UInt64(tracks[c.track].samples[c.samples].reduce(0) { $0 + $1.count })
            }
            var children = [mvhd()]
            for (t, spec) in tracks.enumerated() { children.append(trak(spec, id: UInt32(t + 1), chunkOffsets: chunkOffsets[t])) }
            children += moovExtras(extraOffsets)
            return Box.container("moov", children)
        }

        let extrasSize = topLevelExtras.reduce(0) { $0 + $1.count }
        switch layout {
        case .mdatFirst:
            let mdatStart = UInt64(ftyp.count)
            let extrasStart = mdatStart + UInt64(mdatHeader + mdatPayload.count)
            let offsets = extraOffsets(from: extrasStart)
            let mdat = largeMdat ? Box.large("mdat", mdatPayload) : Box.make("mdat", mdatPayload)
            return ftyp + mdat + topLevelExtras.reduce(Data(), +)
                + moov(mdatPayloadStart: mdatStart + UInt64(mdatHeader), extraOffsets: offsets)
        case .moovFirst:
            // The moov's size does not depend on the offsets in it, so measure it once with placeholders.
            let moovSize = moov(mdatPayloadStart: 0, extraOffsets: extraOffsets(from: 0)).count
            let extrasStart = UInt64(ftyp.count + moovSize)
            let mdatStart = extrasStart + UInt64(extrasSize)
            let built = moov(mdatPayloadStart: mdatStart + UInt64(mdatHeader), extraOffsets: extraOffsets(from: extrasStart))
            var mdat = largeMdat ? Box.large("mdat", mdatPayload) : Box.make("mdat", mdatPayload)
            if mdatSizeZero, !largeMdat { mdat.replaceSubrange(0..<4, with: [0, 0, 0, 0]) }
            return ftyp + built + topLevelExtras.reduce(Data(), +) + mdat
        }
    }

    private func extraOffsets(from start: UInt64) -> [UInt64] {
        var offsets: [UInt64] = []
        var position = start
        for box in topLevelExtras {
            offsets.append(position)
            position += UInt64(box.count)
        }
        return offsets
    }

    private func mvhd() -> Data {
        var d = Data()
        d.be32(0); d.be32(0) // creation, modification
        d.be32(movieTimescale)
        let longest = tracks.map { Double($0.durations.reduce(0) { $0 + UInt64($1) }) / Double($0.timescale) }.max() ?? 0
        d.be32(UInt32(longest * Double(movieTimescale)))
        d.be32(0x0001_0000); d.be16(0x0100); d.zeros(10)
        for v: UInt32 in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] { d.be32(v) }
        d.zeros(24)
        d.be32(UInt32(tracks.count + 1))
        return Box.full("mvhd", d)
    }

    private func trak(_ spec: TrackSpec, id: UInt32, chunkOffsets: [UInt64]) -> Data {
        let mediaDuration = spec.durations.reduce(0) { $0 + UInt64($1) }
        var tkhd = Data()
        tkhd.be32(0); tkhd.be32(0); tkhd.be32(id); tkhd.be32(0)
        tkhd.be32(UInt32(Double(mediaDuration) / Double(spec.timescale) * Double(movieTimescale)))
        tkhd.zeros(8); tkhd.be16(0); tkhd.be16(0); tkhd.be16(0); tkhd.be16(0)
        for v: UInt32 in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] { tkhd.be32(v) }
        tkhd.be32(0); tkhd.be32(0)
        var children = [Box.full("tkhd", flags: 7, tkhd)]

        if spec.emptyEdit != nil || spec.mediaTimeEdit != nil {
            var elst = Data()
            let entries = (spec.emptyEdit != nil ? 1 : 0) + 1
            elst.be32(UInt32(entries))
            if let empty = spec.emptyEdit { elst.be32(empty); elst.bei32(-1); elst.be32(0x0001_0000) }
            elst.be32(UInt32(Double(mediaDuration) / Double(spec.timescale) * Double(movieTimescale)))
            elst.bei32(spec.mediaTimeEdit ?? 0)
            elst.be32(0x0001_0000)
            children.append(Box.container("edts", [Box.full("elst", elst)]))
        }

        var mdhd = Data()
        mdhd.be32(0); mdhd.be32(0); mdhd.be32(spec.timescale); mdhd.be32(UInt32(mediaDuration))
        mdhd.be16(0x55c4); mdhd.be16(0)
        var hdlr = Data()
        hdlr.ascii("mhlr"); hdlr.ascii(spec.handler); hdlr.zeros(12); hdlr.ascii("roadwatch test\0")

        var entry = Data()
        entry.zeros(6); entry.be16(1); entry.be32(0)
        let stsd = Box.full("stsd", { var d = Data(); d.be32(1); d.append(Box.make(spec.format, entry)); return d }())

        // Runs of equal durations.
        var stts = Data(), runs: [(UInt32, UInt32)] = []
        for d in spec.durations {
            if let last = runs.last, last.1 == d { runs[runs.count - 1].0 += 1 } else { runs.append((1, d)) }
        }
        stts.be32(UInt32(runs.count))
        for (n, d) in runs { stts.be32(n); stts.be32(d) }

        var stsc = Data()
        let full = spec.samples.count / spec.samplesPerChunk
        let rest = spec.samples.count % spec.samplesPerChunk
        let stscEntries = (full > 0 ? 1 : 0) + (rest > 0 ? 1 : 0)
        stsc.be32(UInt32(stscEntries))
        if full > 0 { stsc.be32(1); stsc.be32(UInt32(spec.samplesPerChunk)); stsc.be32(1) }
        if rest > 0 { stsc.be32(UInt32(full + 1)); stsc.be32(UInt32(rest)); stsc.be32(1) }

        let sizes: Data
        if spec.compactSizes {
            var d = Data()
            d.zeros(3); d.u8(16); d.be32(UInt32(spec.samples.count))
            for s in spec.samples { d.be16(UInt16(s.count)) }
            sizes = Box.full("stz2", d)
        } else {
            var d = Data()
            d.be32(0); d.be32(UInt32(spec.samples.count))
            for s in spec.samples { d.be32(UInt32(s.count)) }
            sizes = Box.full("stsz", d)
        }
        var offsets = Data()
        offsets.be32(UInt32(chunkOffsets.count))
        for o in chunkOffsets { if spec.use64BitOffsets { offsets.be64(o) } else { offsets.be32(UInt32(o)) } }

        let stbl = Box.container("stbl", [stsd, Box.full("stts", stts), Box.full("stsc", stsc), sizes,
                                          Box.full(spec.use64BitOffsets ? "co64" : "stco", offsets)])
        let dref = Box.full("dref", { var d = Data(); d.be32(1); d.append(Box.full("url ", flags: 1, Data())); return d }())
        let minf = Box.container("minf", [Box.full("nmhd", Data()), Box.container("dinf", [dref]), stbl])
        let mdia = Box.container("mdia", [Box.full("mdhd", mdhd), Box.full("hdlr", hdlr), minf])
        children.append(mdia)
        return Box.container("trak", children)
    }
}

/// GoPro GPMF payloads, written key by key.
enum GPMFWriter {
    /// One KLV item: key, type, structure size, repeat, then the values padded to 32 bits.
    static func klv(_ key: String, _ type: Character, structSize: Int, repeatCount: Int, _ payload: Data) -> Data {
        var d = Data()
        d.ascii(key)
        d.u8(type.asciiValue ?? 0)
        d.u8(UInt8(structSize))
        d.be16(UInt16(repeatCount))
        d.append(payload)
        d.zeros((4 - payload.count % 4) % 4)
        return d
    }

    static func nested(_ key: String, _ children: [Data]) -> Data {
        let payload = children.reduce(Data(), +)
        var d = Data()
        d.ascii(key)
        d.u8(0)
        d.u8(1)
        d.be16(UInt16(payload.count))
        d.append(payload)
        return d
    }

    static func string(_ key: String, _ text: String, type: Character = "c") -> Data {
        var p = Data()
        p.ascii(text)
        return type == "U" ? klv(key, "U", structSize: 16, repeatCount: 1, p)
            : klv(key, type, structSize: 1, repeatCount: p.count, p)
    }

    static func int32s(_ key: String, _ values: [Int32], perStruct: Int) -> Data {
        var p = Data()
        for v in values { p.bei32(v) }
        return klv(key, "l", structSize: 4 * perStruct, repeatCount: values.count / perStruct, p)
    }

    /// A GPS5 fix in real units.
    struct Fix {
        var lat: Double, lon: Double, alt: Double, speed2D: Double, speed3D: Double
    }

    static let gps5Scale: [Int32] = [10_000_000, 10_000_000, 1000, 1000, 100]

    /// The raw integers a camera stores for `fix`, and the values a reader must get back (raw / scale).
    static func raw(_ fix: Fix) -> [Int32] {
        zip([fix.lat, fix.lon, fix.alt, fix.speed2D, fix.speed3D], gps5Scale).map { Int32(($0 * Double($1)).rounded()) }
    }

    static func expected(_ fix: Fix) -> [Double] {
        zip(raw(fix), gps5Scale).map { Double($0) / Double($1) }
    }

    /// A GPS stream as a HERO camera writes it: STNM, GPSF, GPSU, GPSP, SCAL, GPS5.
    static func gps5Stream(_ fixes: [Fix], gpsu: String, gpsf: UInt32 = 3, gpsp: UInt16 = 154) -> Data {
        var f = Data(); f.be32(gpsf)
        var p = Data(); p.be16(gpsp)
        return nested("STRM", [
            string("STNM", "GPS (Lat., Long., Alt., 2D speed, 3D speed)"),
            klv("GPSF", "L", structSize: 4, repeatCount: 1, f),
            string("GPSU", gpsu, type: "U"),
            klv("GPSP", "S", structSize: 2, repeatCount: 1, p),
            int32s("SCAL", gps5Scale, perStruct: 1),
            int32s("GPS5", fixes.flatMap(raw), perStruct: 5),
        ])
    }

    /// An accelerometer stream, so the GPS reader must skip other streams (and their different SCAL).
    static func accelStream(count: Int) -> Data {
        var values = Data()
        for i in 0..<(count * 3) { values.be16(UInt16(truncatingIfNeeded: i * 37)) }
        var scale = Data(); scale.be16(418)
        return nested("STRM", [
            string("STNM", "Accelerometer"),
            klv("SCAL", "s", structSize: 2, repeatCount: 1, scale),
            klv("ACCL", "s", structSize: 6, repeatCount: count, values),
        ])
    }

    /// One gpmd sample: a DEVC with a device name, an accelerometer stream and a GPS5 stream.
    static func sample(_ fixes: [Fix], gpsu: String, gpsf: UInt32 = 3, gpsp: UInt16 = 154) -> Data {
        var id = Data(); id.be32(1)
        return nested("DEVC", [
            klv("DVID", "L", structSize: 4, repeatCount: 1, id),
            string("DVNM", "Roadwatch Test Camera"),
            accelStream(count: 20),
            gps5Stream(fixes, gpsu: gpsu, gpsf: gpsf, gpsp: gpsp),
        ])
    }
}
