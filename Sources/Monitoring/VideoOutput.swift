import Foundation
import VideoIO

/// The annotated video: one file, or consecutive playable files of about `segmentSeconds` each
/// (`out.mp4` → `out-000.mp4`, `out-001.mp4`, ...; a name with `%d`/`%03d` sets the pattern). Each segment
/// starts at time 0 with a key frame. H.264 in yuv420p needs an even width and height: frames of an odd size
/// lose their last column or row (`encodedSize`).
public actor VideoOutput {
    private let path: String
    private let settings: H264Writer.Settings
    private let segmentSeconds: Double?
    private var writer: H264Writer?
    private var segmentStart: Int64 = 0
    public private(set) var files: [String] = []

    /// The size frames of `width` x `height` are written at: odd sides cropped by one pixel.
    public nonisolated static func encodedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        (width - width % 2, height - height % 2)
    }

    /// `settings` give the frames' size; the video is written at `encodedSize` of it.
    public init(path: String, settings: H264Writer.Settings, segmentSeconds: Double?) throws {
        self.path = path
        var settings = settings
        let given = (settings.width, settings.height)
        (settings.width, settings.height) = Self.encodedSize(width: given.0, height: given.1)
        guard settings.width >= 2 && settings.height >= 2 else {
            throw JobError("cannot write '\(path)': H.264 needs frames of at least 2x2, these are \(given.0)x\(given.1)")
        }
        self.settings = settings
        self.segmentSeconds = segmentSeconds
        if segmentSeconds == nil {  // a single file exists (and fails) from the start
            writer = try H264Writer(path: path, settings: settings)
            files = [path]
        }
    }

    /// The file name of segment `index`.
    public nonisolated static func segmentName(_ path: String, index: Int) -> String {
        if path.contains("%") { return String(format: path, index) }
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension.isEmpty ? "mp4" : url.pathExtension
        let stem = url.pathExtension.isEmpty ? path : String(path.dropLast(ext.count + 1))
        return stem + String(format: "-%03d.", index) + ext
    }

    private func open(_ file: String) throws {
        writer = try H264Writer(path: file, settings: settings)
        files.append(file)
    }

    /// Appends a frame at `pts` (in the settings' time base), starting a new segment when one is full.
    public func append(_ image: RGBImage, pts: Int64, audio: [AudioPacket]) async throws {
        let image = Self.cropped(image, width: settings.width, height: settings.height)
        if let segmentSeconds {
            let elapsed = Double(pts - segmentStart) * settings.timeBase.value
            if writer == nil || elapsed >= segmentSeconds {
                if let writer { try await writer.finish() }
                writer = nil
                segmentStart = pts
                try open(Self.segmentName(path, index: files.count))
            }
        }
        guard let writer else { return }
        try await writer.append(image, pts: pts - segmentStart)
        if segmentSeconds == nil { try await writer.appendAudio(audio) }
    }

    public func finish() async throws {
        try await writer?.finish()
        writer = nil
    }

    /// Closes what was written so it plays; for error paths.
    public func abort() async {
        await writer?.abort()
        writer = nil
    }

    /// `image` without its columns and rows beyond `width` x `height`.
    static func cropped(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        guard image.width != width || image.height != height else { return image }
        precondition(width <= image.width && height <= image.height)
        var samples = [UInt8]()
        samples.reserveCapacity(width * height * 3)
        for y in 0..<height {
            let start = y * image.width * 3
            samples.append(contentsOf: image.samples[start..<(start + width * 3)])
        }
        return RGBImage(width: width, height: height, channels: 3, samples: samples)
    }
}
