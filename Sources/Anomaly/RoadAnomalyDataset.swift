import Foundation

/// A dataset that cannot be read as asked, told in one line naming the file.
public struct DatasetError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The original RoadAnomaly layout: `frames/<name>.jpg` with `frames/<name>.labels/labels_semantic.png`
/// (0 = in-distribution, 2 = anomaly, anything else ignored). Images are listed by `frame_list.json` when
/// present, else every `.jpg`/`.png` under `frames/`, sorted by name.
public struct RoadAnomalyDataset: Sendable {
    public struct Item: Sendable, Equatable {
        public var name: String
        public var image: String
        public var labels: String
    }

    public let folder: String
    public let items: [Item]

    public init(folder: String) throws(DatasetError) {
        self.folder = folder
        let frames = URL(fileURLWithPath: folder).appendingPathComponent("frames")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError("'\(folder)' is not a folder")
        }
        guard FileManager.default.fileExists(atPath: frames.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError("'\(folder)' has no frames/ folder (expected the RoadAnomaly layout frames/<name>.jpg)")
        }
        var names: [String]
        let list = URL(fileURLWithPath: folder).appendingPathComponent("frame_list.json")
        if let data = try? Data(contentsOf: list) {
            guard let parsed = try? JSONSerialization.jsonObject(with: data) as? [String] else {
                throw DatasetError("'\(list.path)' is not a JSON list of file names")
            }
            names = parsed
        } else {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: frames.path)) ?? []
            names = entries.filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".png") }.sorted()
        }
        guard !names.isEmpty else { throw DatasetError("'\(frames.path)' holds no images") }
        var items: [Item] = []
        for file in names {
            let image = frames.appendingPathComponent(file)
            let stem = (file as NSString).deletingPathExtension
            let labels = frames.appendingPathComponent("\(stem).labels/labels_semantic.png")
            guard FileManager.default.fileExists(atPath: image.path) else { throw DatasetError("image '\(image.path)' is missing") }
            guard FileManager.default.fileExists(atPath: labels.path) else { throw DatasetError("label file '\(labels.path)' is missing") }
            items.append(Item(name: stem, image: image.path, labels: labels.path))
        }
        self.items = items
    }
}
