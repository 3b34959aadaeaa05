import Foundation

/// One sample of an MP4/MOV track: where its bytes are and when it is presented.
public struct MP4Sample: Sendable, Equatable {
    /// Byte offset of the sample in the file.
    public var offset: UInt64
    /// Size in bytes.
    public var size: Int
    /// Presentation time in seconds on the movie's clock (edit list applied when it is a simple shift).
    public var time: Double
    /// Duration in seconds (from the time-to-sample table).
    public var duration: Double

    public init(offset: UInt64, size: Int, time: Double, duration: Double) {
        self.offset = offset
        self.size = size
        self.time = time
        self.duration = duration
    }
}

/// A track of an MP4/MOV file with its sample table resolved into file ranges and times.
public struct MP4Track: Sendable {
    /// `tkhd` track ID.
    public let id: UInt32
    /// `hdlr` handler type, e.g. `vide`, `soun`, `meta`, `sbtl`, `text`, `camm`.
    public let handler: String
    /// The first sample description's format, e.g. `gpmd`, `camm`, `tx3g`, `text`, `avc1`.
    public let format: String
    /// `mdhd` timescale (ticks per second).
    public let timescale: UInt32
    /// Samples whose bytes lie inside the file, in decode order.
    public let samples: [MP4Sample]
    /// Samples the table lists whose bytes lie past the end of the file (a truncated recording).
    public let samplesPastEnd: Int
    /// Seconds added to every sample's decode time by the edit list (`elst`), 0 without one.
    public let editShift: Double
}

/// A box kept for the telemetry readers because its layout is device-specific (Novatek/BlackVue `gps `,
/// Pittasoft `sttm`).
public struct MP4Box: Sendable {
    /// Where it was found, e.g. `moov/gps `, `moov/udta/gps `, `free/gps `.
    public let path: String
    /// The four-character type.
    public let type: String
    /// File offset of the box header.
    public let offset: UInt64
    /// The bytes after the header.
    public let payload: Data
}

/// Where a file's bytes come from: a path read on demand, or bytes already in memory (tests, network buffers).
enum MediaBytes: Sendable {
    case file(String)
    case memory(Data)
}

/// Reads byte ranges from a file or from memory, refusing ranges that lie past the end.
///
/// A class because it owns an open file handle; it lives inside one call and is never shared between tasks.
final class ByteWindow {
    private let handle: FileHandle?
    private let memory: Data
    let size: UInt64

    init(_ bytes: MediaBytes) throws {
        switch bytes {
        case .memory(let data):
            handle = nil
            memory = data
            size = UInt64(data.count)
        case .file(let path):
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw Malformed("no such file")
            }
            guard !isDirectory.boolValue else { throw Malformed("is a directory, not a file") }
            guard let handle = FileHandle(forReadingAtPath: path) else { throw Malformed("cannot be opened for reading") }
            self.handle = handle
            memory = Data()
            size = try handle.seekToEnd()
        }
    }

    deinit { try? handle?.close() }

    /// Exactly `count` bytes at `offset`; throws when the range does not lie inside the file.
    func read(at offset: UInt64, count: Int) throws -> Data {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw Malformed("\(count) bytes at offset \(offset) lie past the end of the file (\(size) bytes; truncated?)")
        }
        guard let handle else {
            let start = memory.startIndex + Int(offset)
            return Data(memory[start..<(start + count)])
        }
        try handle.seek(toOffset: offset)
        let data = try handle.read(upToCount: count) ?? Data()
        guard data.count == count else {
            throw Malformed("file ended at offset \(offset + UInt64(data.count)) while reading \(count) bytes")
        }
        return data
    }
}

/// The structure of an MP4/MOV (ISO BMFF / QuickTime) file as far as telemetry needs it: tracks with their
/// samples' places and times, the movie clock, and the device-specific boxes that carry GPS.
///
/// Only `moov` is read into memory; sample bytes are read on demand, so multi-gigabyte recordings are fine.
public struct MP4File: Sendable {
    /// The path, or the name given for bytes in memory; used in error messages.
    public let name: String
    /// File size in bytes.
    public let size: UInt64
    /// `mvhd` timescale.
    public let movieTimescale: UInt32
    /// `mvhd` creation time, when set (many cameras write local time here, not UTC).
    public let creationTime: Date?
    /// Tracks whose tables could be read.
    public let tracks: [MP4Track]
    /// One line for each track whose tables are corrupt (the track is left out of `tracks`).
    public let trackProblems: [TelemetryError]
    /// Device-specific boxes telemetry readers use (`gps `, `sttm`).
    public let extraBoxes: [MP4Box]
    /// Whether the file has movie fragments (`moof`), whose samples this reader does not list.
    public let isFragmented: Bool

    private let bytes: MediaBytes

    /// Reads the box structure of the file at `path`; throws when it is not a readable MP4/MOV.
    public init(path: String) throws {
        try self.init(bytes: .file(path), name: path)
    }

    /// Reads the box structure of bytes in memory; `name` is used in error messages.
    public init(data: Data, name: String) throws {
        try self.init(bytes: .memory(data), name: name)
    }

    private init(bytes: MediaBytes, name: String) throws {
        self.bytes = bytes
        self.name = name
        let parsed = try TelemetryError.naming(name) { () throws -> Structure in
            let window = try ByteWindow(bytes)
            return try Structure.read(window, name: name)
        }
        size = parsed.size
        movieTimescale = parsed.movieTimescale
        creationTime = parsed.creationTime
        tracks = parsed.tracks
        trackProblems = parsed.trackProblems
        extraBoxes = parsed.extraBoxes
        isFragmented = parsed.isFragmented
    }

    /// The bytes of one sample.
    public func data(of sample: MP4Sample) throws -> Data {
        try read(offset: sample.offset, count: sample.size)
    }

    /// `count` bytes at `offset` of the file; throws past the end.
    public func read(offset: UInt64, count: Int) throws -> Data {
        try TelemetryError.naming(name) {
            try ByteWindow(bytes).read(at: offset, count: count)
        }
    }

    /// Runs `body` with the file opened once, for readers that fetch many ranges.
    func withWindow<T>(_ body: (ByteWindow) throws -> T) throws -> T {
        let window = try TelemetryError.naming(name) { try ByteWindow(bytes) }
        return try body(window)
    }

    /// Calls `body` with each sample of `track` and its bytes, opening the file once.
    ///
    /// An error thrown by `body` stops the walk and is rethrown; a sample that cannot be read is an error too.
    public func forEachSample(in track: MP4Track, _ body: (Int, MP4Sample, Data) throws -> Void) throws {
        let window = try TelemetryError.naming(name) { try ByteWindow(bytes) }
        for (index, sample) in track.samples.enumerated() {
            let data = try TelemetryError.naming(name) { try window.read(at: sample.offset, count: sample.size) }
            try body(index, sample, data)
        }
    }
}

// MARK: - Reading the structure

/// Limits that keep a corrupt size field from turning into a huge allocation or a long loop.
private enum Limits {
    static let moovBytes = 512 << 20
    static let extraBoxBytes = 64 << 20
    static let samplesPerTrack = 20_000_000
    static let sampleBytes = 256 << 20
    static let nesting = 16
}

/// A box header: its type, where it starts, how long its header is and its total size.
private struct BoxHeader {
    var type: String
    var start: UInt64
    var headerSize: Int
    var size: UInt64
    var payloadStart: UInt64 { start + UInt64(headerSize) }
    var payloadSize: UInt64 { size - UInt64(headerSize) }
}

/// Reads one box header from `reader` at its position; `available` is how many bytes the enclosing box (or file)
/// has left from there, which is what a size of 0 ("to the end") means.
private func readHeader(_ reader: inout ByteReader, start: UInt64, available: UInt64) throws -> BoxHeader {
    let size32 = try reader.u32()
    let type = try reader.fourCC()
    var headerSize = 8
    var size: UInt64
    switch size32 {
    case 0: size = available
    case 1:
        size = try reader.u64()
        headerSize = 16
    default: size = UInt64(size32)
    }
    if type == "uuid" {
        try reader.skip(16)
        headerSize += 16
    }
    guard size >= UInt64(headerSize) else {
        throw Malformed("box '\(type)' at offset \(start) has size \(size), smaller than its \(headerSize)-byte header")
    }
    return BoxHeader(type: type, start: start, headerSize: headerSize, size: size)
}

/// The boxes directly inside `payload` (whose first byte is at file offset `base`); a child that runs past the
/// end of its parent is an error.
private func children(of payload: Data, base: UInt64, parent: String) throws -> [(BoxHeader, Data)] {
    var reader = ByteReader(payload)
    var result: [(BoxHeader, Data)] = []
    while reader.remaining >= 8 {
        let at = reader.position
        let header = try readHeader(&reader, start: base + UInt64(at), available: UInt64(reader.remaining))
        guard header.size <= UInt64(payload.count - at) else {
            throw Malformed("box '\(header.type)' in '\(parent)' at offset \(header.start) runs \(header.size) bytes, past the end of '\(parent)'")
        }
        let body = try reader.slice(at: at + header.headerSize, count: Int(header.size) - header.headerSize)
        result.append((header, body))
        try reader.seek(to: at + Int(header.size))
    }
    return result
}

private struct Structure {
    var size: UInt64 = 0
    var movieTimescale: UInt32 = 0
    var creationTime: Date?
    var tracks: [MP4Track] = []
    var trackProblems: [TelemetryError] = []
    var extraBoxes: [MP4Box] = []
    var isFragmented = false

    /// Boxes an MP4 or QuickTime file can start with; anything else is some other kind of file.
    private static let firstTypes: Set<String> = ["ftyp", "moov", "mdat", "free", "skip", "wide", "pnot", "uuid",
                                                  "junk", "pdin", "styp", "sidx", "moof", "meta"]

    /// Pittasoft (BlackVue) keeps its boxes inside a top-level `free`; these are the types it starts with.
    private static let pittasoftTypes: Set<String> = ["cprt", "sttm", "ptnm", "ptrh", "thum", "gps ", "3gf "]

    static func read(_ window: ByteWindow, name: String) throws -> Structure {
        var structure = Structure()
        structure.size = window.size
        var moov: (BoxHeader, Data)?
        var position: UInt64 = 0
        var first = true
        var cutShort: BoxHeader?
        while window.size - position >= 8 {
            let headBytes = try window.read(at: position, count: Int(min(32, window.size - position)))
            var reader = ByteReader(headBytes)
            let header: BoxHeader
            do {
                header = try readHeader(&reader, start: position, available: window.size - position)
            } catch let error as Malformed {
                if first { throw Malformed("not an MP4/MOV file (\(error.problem))") }
                // Garbage after the movie (a corrupt trailer) does not spoil what was already found.
                if moov != nil { break }
                throw error
            }
            if first {
                guard Structure.firstTypes.contains(header.type) else {
                    throw Malformed("not an MP4/MOV file (it starts with '\(header.type)', not a box MP4/MOV files start with)")
                }
                first = false
            }
            let fitsInFile = header.size <= window.size - position
            switch header.type {
            case "moov":
                guard fitsInFile else {
                    throw Malformed("'moov' box at offset \(position) runs past the end of the file (truncated?)")
                }
                guard header.payloadSize <= UInt64(Limits.moovBytes) else {
                    throw Malformed("'moov' box of \(header.size) bytes is larger than this reader accepts")
                }
                if moov == nil {
                    moov = (header, try window.read(at: header.payloadStart, count: Int(header.payloadSize)))
                }
            case "moof":
                structure.isFragmented = true
            case "free", "skip", "gps ":
                // Small device boxes only; a huge 'free' is padding, not telemetry. Novatek cameras may write
                // thousands of 'free' boxes, so only a 'free' that starts like Pittasoft's is read whole.
                if fitsInFile, header.payloadSize >= 8, header.payloadSize <= UInt64(Limits.extraBoxBytes) {
                    let head = try window.read(at: header.payloadStart, count: 8)
                    let innerType = ByteReader.fourCCString(head.suffix(4))
                    if header.type == "gps " || Structure.pittasoftTypes.contains(innerType) {
                        let payload = try window.read(at: header.payloadStart, count: Int(header.payloadSize))
                        structure.collectTopLevel(header, payload)
                    }
                }
            default:
                break
            }
            // A truncated 'mdat' (or anything else) at the end: nothing after it can be read.
            guard fitsInFile else {
                cutShort = header
                break
            }
            position += header.size
        }
        guard let (moovHeader, moovPayload) = moov else {
            if first { throw Malformed("not an MP4/MOV file (too short)") }
            if let cutShort {
                throw Malformed("no 'moov' box: '\(cutShort.type)' at offset \(cutShort.start) runs past the end of the file (truncated recording?)")
            }
            throw Malformed("no 'moov' box (not a finished MP4/MOV recording?)")
        }
        try structure.readMovie(moovPayload, base: moovHeader.payloadStart, name: name)
        return structure
    }

    private mutating func collectTopLevel(_ header: BoxHeader, _ payload: Data) {
        if header.type == "gps " {
            extraBoxes.append(MP4Box(path: "gps ", type: "gps ", offset: header.start, payload: payload))
            return
        }
        let innerType = ByteReader.fourCCString(payload.prefix(8).suffix(4))
        guard Structure.pittasoftTypes.contains(innerType),
              let inner = try? children(of: payload, base: header.payloadStart, parent: header.type) else { return }
        for (child, body) in inner where child.type == "gps " || child.type == "sttm" {
            extraBoxes.append(MP4Box(path: "\(header.type)/\(child.type)", type: child.type, offset: child.start,
                                     payload: body))
        }
    }

    private mutating func readMovie(_ payload: Data, base: UInt64, name: String) throws {
        let boxes = try children(of: payload, base: base, parent: "moov")
        for (header, body) in boxes where header.type == "mvhd" {
            var r = ByteReader(body)
            let version = try r.u8()
            try r.skip(3)
            let created = version == 1 ? try r.u64() : UInt64(try r.u32())
            try r.skip(version == 1 ? 8 : 4)
            movieTimescale = try r.u32()
            // 2,082,844,800 s lie between 1904 (QuickTime's epoch) and 1970.
            if created > 2_082_844_800, created < 2_082_844_800 + 8_000_000_000 {
                creationTime = Date(timeIntervalSince1970: TimeInterval(created - 2_082_844_800))
            }
        }
        var trackNumber = 0
        for (header, body) in boxes {
            switch header.type {
            case "trak":
                trackNumber += 1
                do {
                    tracks.append(try readTrack(body, base: header.payloadStart))
                } catch let error as Malformed {
                    trackProblems.append(TelemetryError(file: name, problem: "track \(trackNumber): \(error.problem)"))
                }
            case "gps ":
                extraBoxes.append(MP4Box(path: "moov/gps ", type: "gps ", offset: header.start, payload: body))
            case "udta":
                if let inner = try? children(of: body, base: header.payloadStart, parent: "udta") {
                    for (child, childBody) in inner where child.type == "gps " {
                        extraBoxes.append(MP4Box(path: "moov/udta/gps ", type: "gps ", offset: child.start,
                                                 payload: childBody))
                    }
                }
            case "mvex":
                isFragmented = true
            default:
                break
            }
        }
    }

    /// Finds the first box of `type` among `boxes`.
    private func find(_ type: String, in boxes: [(BoxHeader, Data)]) -> (BoxHeader, Data)? {
        boxes.first { $0.0.type == type }
    }

    private func readTrack(_ payload: Data, base: UInt64) throws -> MP4Track {
        let trak = try children(of: payload, base: base, parent: "trak")
        var trackID: UInt32 = 0
        if let (_, tkhd) = find("tkhd", in: trak) {
            var r = ByteReader(tkhd)
            let version = try r.u8()
            try r.skip(3 + (version == 1 ? 16 : 8))
            trackID = try r.u32()
        }
        guard let (mdiaHeader, mdiaBody) = find("mdia", in: trak) else { throw Malformed("no 'mdia' box") }
        let mdia = try children(of: mdiaBody, base: mdiaHeader.payloadStart, parent: "mdia")
        guard let (_, mdhd) = find("mdhd", in: mdia) else { throw Malformed("no 'mdhd' box") }
        var r = ByteReader(mdhd)
        let version = try r.u8()
        try r.skip(3 + (version == 1 ? 16 : 8))
        let timescale = try r.u32()
        guard timescale > 0 else { throw Malformed("'mdhd' timescale is 0") }

        var handler = ""
        if let (_, hdlr) = find("hdlr", in: mdia) {
            var h = ByteReader(hdlr)
            try h.skip(8)
            handler = try h.fourCC()
        }
        guard let (minfHeader, minfBody) = find("minf", in: mdia) else { throw Malformed("no 'minf' box") }
        let minf = try children(of: minfBody, base: minfHeader.payloadStart, parent: "minf")
        guard let (stblHeader, stblBody) = find("stbl", in: minf) else { throw Malformed("no 'stbl' box") }
        let stbl = try children(of: stblBody, base: stblHeader.payloadStart, parent: "stbl")

        var format = ""
        if let (_, stsd) = find("stsd", in: stbl) {
            var s = ByteReader(stsd)
            try s.skip(4)
            if try s.u32() > 0 {
                try s.skip(4)
                format = try s.fourCC()
            }
        }
        let editShift = try editListShift(trak, mediaTimescale: timescale)
        let (samples, pastEnd) = try sampleTable(stbl, timescale: timescale, editShift: editShift)
        return MP4Track(id: trackID, handler: handler, format: format, timescale: timescale, samples: samples,
                        samplesPastEnd: pastEnd, editShift: editShift)
    }

    /// The shift an edit list applies when it is simple: optional empty edits (a delayed start), then one edit
    /// that plays the media from `media_time` at normal rate. Anything else is read as its first media edit.
    private func editListShift(_ trak: [(BoxHeader, Data)], mediaTimescale: UInt32) throws -> Double {
        guard let (edtsHeader, edtsBody) = find("edts", in: trak) else { return 0 }
        let edts = try children(of: edtsBody, base: edtsHeader.payloadStart, parent: "edts")
        guard let (_, elst) = find("elst", in: edts) else { return 0 }
        var r = ByteReader(elst)
        let version = try r.u8()
        try r.skip(3)
        let count = Int(try r.u32())
        let entrySize = version == 1 ? 20 : 12
        guard count <= r.remaining / entrySize else {
            throw Malformed("'elst' lists \(count) edits but holds bytes for \(r.remaining / entrySize)")
        }
        var empty = 0.0
        for _ in 0..<count {
            let duration = version == 1 ? try r.u64() : UInt64(try r.u32())
            let mediaTime = version == 1 ? try r.i64() : Int64(try r.i32())
            try r.skip(4)
            if mediaTime == -1 {
                if movieTimescale > 0 { empty += Double(duration) / Double(movieTimescale) }
                continue
            }
            return empty - Double(mediaTime) / Double(mediaTimescale)
        }
        return empty
    }

    private func sampleTable(_ stbl: [(BoxHeader, Data)], timescale: UInt32,
                             editShift: Double) throws -> ([MP4Sample], Int) {
        // Sizes: stsz (uniform or one per sample) or the compact stz2.
        var sizes: [UInt32] = []
        if let (_, stsz) = find("stsz", in: stbl) {
            var r = ByteReader(stsz)
            try r.skip(4)
            let uniform = try r.u32()
            let count = Int(try r.u32())
            guard count <= Limits.samplesPerTrack else {
                throw Malformed("'stsz' lists \(count) samples, more than this reader accepts")
            }
            if uniform != 0 {
                // A uniform size cannot describe more samples than the file could hold.
                guard UInt64(count) * UInt64(uniform) <= size else {
                    throw Malformed("'stsz' lists \(count) samples of \(uniform) bytes, more than the file holds")
                }
                sizes = Array(repeating: uniform, count: count)
            } else {
                guard count <= r.remaining / 4 else {
                    throw Malformed("'stsz' lists \(count) samples but holds sizes for \(r.remaining / 4) (truncated?)")
                }
                sizes.reserveCapacity(count)
                for _ in 0..<count { sizes.append(try r.u32()) }
            }
        } else if let (_, stz2) = find("stz2", in: stbl) {
            var r = ByteReader(stz2)
            try r.skip(7)
            let fieldBits = Int(try r.u8())
            let count = Int(try r.u32())
            guard [4, 8, 16].contains(fieldBits) else { throw Malformed("'stz2' field size \(fieldBits) is not 4, 8 or 16") }
            guard count <= Limits.samplesPerTrack, count <= r.remaining * 8 / fieldBits else {
                throw Malformed("'stz2' lists \(count) samples but holds sizes for \(r.remaining * 8 / fieldBits)")
            }
            sizes.reserveCapacity(count)
            var i = 0
            while i < count {
                switch fieldBits {
                case 4:
                    let byte = try r.u8()
                    sizes.append(UInt32(byte >> 4))
                    if i + 1 < count { sizes.append(UInt32(byte & 0x0f)) }
                    i += 2
                case 8:
                    sizes.append(UInt32(try r.u8())); i += 1
                default:
                    sizes.append(UInt32(try r.u16())); i += 1
                }
            }
        } else {
            throw Malformed("no sample size box ('stsz' or 'stz2')")
        }
        let count = sizes.count
        if count == 0 { return ([], 0) }

        // Decode times: stts runs of (count, delta).
        guard let (_, stts) = find("stts", in: stbl) else { throw Malformed("no 'stts' box") }
        var times = [UInt64](), durations = [UInt32]()
        times.reserveCapacity(count)
        durations.reserveCapacity(count)
        do {
            var r = ByteReader(stts)
            try r.skip(4)
            let entries = Int(try r.u32())
            guard entries <= r.remaining / 8 else {
                throw Malformed("'stts' lists \(entries) entries but holds \(r.remaining / 8) (truncated?)")
            }
            var clock: UInt64 = 0
            outer: for _ in 0..<entries {
                let run = try r.u32()
                let delta = try r.u32()
                for _ in 0..<run {
                    if times.count == count { break outer }
                    times.append(clock)
                    durations.append(delta)
                    clock &+= UInt64(delta)
                }
            }
            guard times.count == count else {
                throw Malformed("'stts' gives times for \(times.count) of \(count) samples")
            }
        }

        // Chunk offsets: stco (32-bit) or co64.
        var chunkOffsets: [UInt64] = []
        if let (_, stco) = find("stco", in: stbl) {
            var r = ByteReader(stco)
            try r.skip(4)
            let n = Int(try r.u32())
            guard n <= r.remaining / 4 else { throw Malformed("'stco' lists \(n) chunks but holds \(r.remaining / 4) (truncated?)") }
            chunkOffsets.reserveCapacity(n)
            for _ in 0..<n { chunkOffsets.append(UInt64(try r.u32())) }
        } else if let (_, co64) = find("co64", in: stbl) {
            var r = ByteReader(co64)
            try r.skip(4)
            let n = Int(try r.u32())
            guard n <= r.remaining / 8 else { throw Malformed("'co64' lists \(n) chunks but holds \(r.remaining / 8) (truncated?)") }
            chunkOffsets.reserveCapacity(n)
            for _ in 0..<n { chunkOffsets.append(try r.u64()) }
        } else {
            throw Malformed("no chunk offset box ('stco' or 'co64')")
        }

        // Samples per chunk: stsc runs of (first chunk, samples per chunk, description index).
        guard let (_, stsc) = find("stsc", in: stbl) else { throw Malformed("no 'stsc' box") }
        var runs: [(firstChunk: Int, samplesPerChunk: Int)] = []
        do {
            var r = ByteReader(stsc)
            try r.skip(4)
            let n = Int(try r.u32())
            guard n <= r.remaining / 12 else { throw Malformed("'stsc' lists \(n) entries but holds \(r.remaining / 12) (truncated?)") }
            for _ in 0..<n {
                let firstChunk = Int(try r.u32())
                let perChunk = Int(try r.u32())
                try r.skip(4)
                guard firstChunk >= 1, firstChunk > (runs.last?.firstChunk ?? 0) else {
                    throw Malformed("'stsc' first chunks are not increasing from 1")
                }
                runs.append((firstChunk, perChunk))
            }
        }

        var samples: [MP4Sample] = []
        samples.reserveCapacity(count)
        var pastEnd = 0
        var index = 0
        let scale = Double(timescale)
        placing: for (runIndex, run) in runs.enumerated() {
            let lastChunk = runIndex + 1 < runs.count ? runs[runIndex + 1].firstChunk - 1 : chunkOffsets.count
            guard run.firstChunk <= lastChunk else { continue }
            guard lastChunk <= chunkOffsets.count else {
                throw Malformed("'stsc' refers to chunk \(lastChunk) but 'stco' lists \(chunkOffsets.count)")
            }
            for chunk in run.firstChunk...lastChunk {
                var offset = chunkOffsets[chunk - 1]
                for _ in 0..<run.samplesPerChunk {
                    if index == count { break placing }
                    let size = sizes[index]
                    let (end, overflow) = offset.addingReportingOverflow(UInt64(size))
                    if overflow || end > self.size || Int(size) > Limits.sampleBytes {
                        pastEnd += 1
                    } else {
                        samples.append(MP4Sample(offset: offset, size: Int(size),
                                                 time: Double(times[index]) / scale + editShift,
                                                 duration: Double(durations[index]) / scale))
                    }
                    offset = overflow ? UInt64.max : end
                    index += 1
                }
            }
        }
        guard index == count else {
            throw Malformed("the chunk tables place \(index) of the \(count) samples")
        }
        return (samples, pastEnd)
    }
}
