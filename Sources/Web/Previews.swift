import Foundation
import Overlay
import Synchronization
import VideoIO

/// The newest annotated frame of each camera, for `latest.jpg` and the MJPEG stream. Keeping it costs a
/// reference per frame; it is scaled and encoded only when someone asks, once per frame however many ask.
public final class Previews: Sendable {
    private struct Latest {
        var image: RGBImage
        var sequence: Int
        var jpeg: (sequence: Int, data: Data)?
    }

    private let latest = Mutex<[String: Latest]>([:])
    public let width: Int

    public init(width: Int) { self.width = width }

    public func update(camera: String, image: RGBImage) {
        latest.withLock { all in
            let next = (all[camera]?.sequence ?? 0) + 1
            all[camera] = Latest(image: image, sequence: next, jpeg: all[camera]?.jpeg)
        }
    }

    /// The newest frame's JPEG and its sequence number (nil before the camera's first frame).
    public func jpeg(camera: String) -> (sequence: Int, data: Data)? {
        guard let current = latest.withLock({ $0[camera] }) else { return nil }
        if let cached = current.jpeg, cached.sequence == current.sequence { return cached }
        guard let data = try? StillImage.jpeg(current.image.downscaled(maxWidth: width), quality: 6, name: camera) else { return nil }
        latest.withLock { all in
            if all[camera]?.sequence == current.sequence { all[camera]?.jpeg = (current.sequence, data) }
        }
        return (current.sequence, data)
    }
}
