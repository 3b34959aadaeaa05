import Anomaly
import Foundation
import Models
import VideoIO

/// `roadwatch calibrate`: a memory of normal road (`MemoryBank`) from clean footage. Every `every`-th frame of
/// each clip goes through the backbone and the decoder; the drivable-area cells the memory rule looks at (road
/// on both sides along the row and the column, the side columns left out) give their normalised features; a
/// greedy coreset of them is kept.
public enum Calibration {
    public struct Options: Sendable {
        public var size: FrameSize
        public var every: Int
        public var vectors: Int
        /// Candidate cells kept at most before the coreset (a uniform sample beyond), bounding time and memory.
        public var maxCandidates: Int
        public var seed: UInt64
        /// Every cell of the picture, not only the drivable area's: scenery that the class map sometimes calls
        /// road (a dry hillside) is then known too.
        public var everywhere = false

        public init(size: FrameSize, every: Int = 4, vectors: Int = 4096, maxCandidates: Int = 60_000, seed: UInt64 = 0) {
            self.size = size
            self.every = every
            self.vectors = vectors
            self.maxCandidates = maxCandidates
            self.seed = seed
        }
    }

    /// Reads the clips and returns the memory. `onFrame` is told each clip's name and frames read so far.
    public static func run(clips: [String], model: LoadedModel, options: Options,
                           onWarning: @escaping @Sendable (String) -> Void = { _ in },
                           onFrame: @escaping @Sendable (String, Int) -> Void = { _, _ in }) async throws -> MemoryBank {
        guard !clips.isEmpty else { throw JobError("calibrate needs at least one clean clip") }
        guard options.every >= 1, options.vectors >= 1 else { throw JobError("--every and --vectors must be at least 1") }
        try model.network.checkInputSize(width: options.size.width, height: options.size.height)
        guard let road = model.descriptor.classNames.firstIndex(of: "road") else {
            throw JobError("model \(model.descriptor.name) has no 'road' class: the memory needs the drivable area")
        }
        let preprocessor = Preprocessor(normalization: model.descriptor.normalization)
        let stride = model.network.featureStride
        let classes = model.descriptor.inDistributionClasses
        var reservoir = Reservoir(capacity: options.maxCandidates, seed: options.seed)
        for clip in clips {
            let source = try await VideoSource.open(clip, options: InputOptions(onWarning: onWarning))
            var read = 0
            for try await frame in source where frame.index % options.every == 0 {
                let image = frame.image
                let input = preprocessor.tensor(rgb: image.samples, sourceWidth: image.width, sourceHeight: image.height,
                                                width: options.size.width, height: options.size.height)
                let encoded = model.network.backbone(input, capture: nil)
                let scores = model.network.decoderScores(encoded)
                let summary = Confidence.summary(scores, classes: classes, cell: stride, classMap: false, cellClasses: true)
                let gw = scores.width / stride, gh = scores.height / stride
                guard let cellClasses = summary.cellClasses, encoded.features.width == gw, encoded.features.height == gh else {
                    throw JobError("model \(model.descriptor.name): its features and class grid differ in size")
                }
                let drivable = ChangeAlarm.drivable(classes: cellClasses, roadClass: UInt8(road), width: gw, height: gh,
                                                    enclosed: true)
                let points = FeatureVectors.normalized(encoded.features)
                let margin = RoadMemory.sideMargin(gridWidth: gw)
                for i in 0..<points.count where options.everywhere || (drivable[i] && i % gw >= margin && i % gw < gw - margin) {
                    reservoir.offer(Array(points.values[(i * points.dimension)..<((i + 1) * points.dimension)]))
                }
                read += 1
                onFrame(clip, read)
            }
            if read == 0 { throw JobError("'\(clip)' gave no frames") }
        }
        guard let dimension = reservoir.items.first?.count else {
            throw JobError("no drivable road found in \(clips.count == 1 ? "'\(clips[0])'" : "the \(clips.count) clips"): is it road footage?")
        }
        let flat = reservoir.items.flatMap { $0 }
        let chosen = MemoryBank.coreset(flat, count: reservoir.items.count, dimension: dimension, target: options.vectors,
                                        seed: options.seed)
        var vectors = [Float]()
        vectors.reserveCapacity(chosen.count * dimension)
        for i in chosen { vectors.append(contentsOf: reservoir.items[i]) }
        let header = MemoryBank.Header(model: model.descriptor.name, modelSHA256: model.descriptor.sha256,
                                       width: options.size.width, height: options.size.height, dimension: dimension,
                                       count: chosen.count, sources: clips.map { ($0 as NSString).lastPathComponent },
                                       candidates: reservoir.seen)
        return MemoryBank(header: header, vectors: vectors)
    }
}

/// A uniform sample of at most `capacity` items from a stream of unknown length (Algorithm R).
struct Reservoir {
    let capacity: Int
    private(set) var items: [[Float]] = []
    private(set) var seen = 0
    private var random: SeededGenerator

    init(capacity: Int, seed: UInt64) {
        self.capacity = capacity
        random = SeededGenerator(seed: seed)
    }

    mutating func offer(_ item: [Float]) {
        seen += 1
        if items.count < capacity {
            items.append(item)
        } else {
            let j = Int(random.next() % UInt64(seen))
            if j < capacity { items[j] = item }
        }
    }
}
