import Foundation
import VideoIO

/// The annotated video: one file, or consecutive playable files of about `segmentSeconds` each
/// (`out.mp4` → `out-000.mp4`, `out-001.mp4`, ...; a name with `%d`/`%03d` sets the pattern). Each segment
/// starts at time 0 with a key frame.
public actor VideoOutput {
    private let path: String
    private let settings: H264Writer.Settings
    private let segmentSeconds: Double?
    private var writer: H264Writer?
    private var segmentStart: Int64 = 0
    public private(set) var files: [String] = []

    public init(path: String, settings: H264Writer.Settings, segmentSeconds: Double?) throws {
        self.path = path
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
}
