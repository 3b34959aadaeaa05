import Anomaly
import Foundation
import Models
import Synchronization
import Testing
import TestKit
import VideoIO
@testable import Pipeline
import Overlay

/// Numbered synthetic frames: a gradient whose offset is the frame index.
struct NumberedFrames: AsyncSequence, Sendable {
    let count: Int
    let width = 96, height = 64

    struct Iterator: AsyncIteratorProtocol {
        var index = 0
        let count: Int, width: Int, height: Int
        mutating func next() async -> VideoFrame? {
            guard index < count else { return nil }
            defer { index += 1 }
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            for i in 0..<pixels.count { pixels[i] = UInt8(truncatingIfNeeded: i / 7 + index * 13) }
            return VideoFrame(index: index, pts: Int64(index) * 2, timeBase: Rational(1, 50),
                              sourceSize: FrameSize(width: width, height: height),
                              image: RGBImage(width: width, height: height, channels: 3, samples: pixels))
        }
    }

    func makeAsyncIterator() -> Iterator { Iterator(count: count, width: width, height: height) }
}

@Suite("The monitor pipeline")
struct MonitorTests {
    @Test("every frame comes out once, in order, whatever each stage's delay")
    func orderAndCompleteness() async throws {
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        var configuration = Monitor.Configuration(size: FrameSize(width: 64, height: 64))
        configuration.afterStage = { _, _ in
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...15)))
        }
        let monitor = try Monitor(model: model, configuration: configuration)
        let seen = Mutex<[Int]>([])
        let summary = try await monitor.run(NumberedFrames(count: 40)) { work in
            #expect(work.annotated.width == 96 && work.annotated.height == 64)
            #expect(work.mask.count == 96 * 64)
            #expect(work.frame.pts == Int64(work.frame.index) * 2)
            seen.withLock { $0.append(work.frame.index) }
        }
        #expect(seen.withLock { $0 } == Array(0..<40))
        #expect(summary.frames == 40)
    }

    /// With a limit of one frame in flight the stages take the frames strictly one after another (without it
    /// they overlap: the same run with a limit of 3 has a stage of one frame before the last stage of the
    /// frame before, which the test also checks so it can fail).
    @Test("maxFramesInFlight bounds the frames between the source and the sink")
    func framesInFlight() async throws {
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        for limit in [1, 3] {
            var configuration = Monitor.Configuration(size: FrameSize(width: 64, height: 64))
            configuration.maxFramesInFlight = limit
            let order = Mutex<[(String, Int)]>([])
            configuration.afterStage = { stage, index in
                order.withLock { $0.append((stage, index)) }
                try? await Task.sleep(for: .milliseconds(Int.random(in: 0...5)))
            }
            let sunk = Mutex(0)
            let inside = Mutex((now: 0, most: 0))
            let monitor = try Monitor(model: model, configuration: configuration)
            _ = try await monitor.run(NumberedFrames(count: 20)) { _ in sunk.withLock { $0 += 1 } }
            let steps = order.withLock { $0 }
            // Frames inside = frames that ran their first stage minus frames that ran their last.
            let last = StageTimings.names.last!, first = StageTimings.names.first!
            for (stage, _) in steps {
                inside.withLock { s in
                    if stage == first { s.now += 1; s.most = max(s.most, s.now) }
                    if stage == last { s.now -= 1 }
                }
            }
            let most = inside.withLock { $0.most }
            #expect(sunk.withLock { $0 } == 20)
            if limit == 1 { #expect(most == 1, "at most one frame inside, saw \(most)") } else { #expect(most > 1 && most <= 3, "saw \(most)") }
        }
    }

    @Test("stop() ends the run after the frames already read, and they all come out")
    func stopDrains() async throws {
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        let monitor = try Monitor(model: model, configuration: Monitor.Configuration(size: FrameSize(width: 64, height: 64)))
        let seen = Mutex<[Int]>([])
        _ = try await monitor.run(NumberedFrames(count: 500)) { work in
            let count = seen.withLock { $0.append(work.frame.index); return $0.count }
            if count == 5 { monitor.stop() }
        }
        let indices = seen.withLock { $0 }
        #expect(indices.count >= 5 && indices.count < 500)
        #expect(indices == Array(0..<indices.count))
    }

    struct SinkFailure: Error, Equatable {}

    /// A write error in the sink (a full disk) must end the run with that error, not leave the stages
    /// waiting on each other. The limit only catches a hang: alone the run takes well under a second, but in
    /// the whole suite on 2 cores this test waits for the shared thread pool while blocking tests hold it, and
    /// one CI run went past a 1-minute limit that way (the model load counts too), so it is 10 minutes.
    @Test("a sink that throws ends the run with its error", .timeLimit(.minutes(10)))
    func sinkErrorEnds() async throws {
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        let monitor = try Monitor(model: model, configuration: Monitor.Configuration(size: FrameSize(width: 64, height: 64)))
        let seen = Mutex(0)
        await #expect(throws: SinkFailure()) {
            _ = try await monitor.run(NumberedFrames(count: 500)) { _ in
                if seen.withLock({ $0 += 1; return $0 }) == 3 { throw SinkFailure() }
            }
        }
        #expect(seen.withLock { $0 } == 3)
    }
}

@Suite("Overlay drawing")
struct OverlayTests {
    @Test("text, boxes and heat drawn partly or wholly outside the frame are clipped, not a crash")
    func clipping() {
        let image = RGBImage(width: 20, height: 10, channels: 3, repeating: 50)
        let annotation = FrameAnnotation(heat: Array(repeating: 1, count: 200), mask: Array(repeating: true, count: 200),
                                         regions: [RegionMark(box: [15, 5, 40, 40], score: 3, trackID: 7),
                                                   RegionMark(box: [100, 100, 5, 5], score: 1, trackID: 8)],
                                         hud: ["A LONG HUD LINE WIDER THAN THE FRAME"])
        let drawn = AnomalyOverlay.draw(annotation, on: image)
        #expect(drawn.width == 20 && drawn.height == 10 && drawn.samples.count == 20 * 10 * 3)
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(drawn.samples[(y * 20 + x) * 3..<(y * 20 + x) * 3 + 3]) }
        // The mask covers the frame: its outline runs along the frame's edge (bottom-left, clear of the HUD).
        #expect(pixel(0, 9) == [255, 40, 40])
        // The box that starts inside the frame and runs out of it is stroked amber where it is inside.
        #expect(pixel(15, 5) == [255, 200, 0])
        // Inside the mask, away from outline, box and HUD: the heat tint only (red up from 50, blue down).
        let inner = pixel(3, 3)
        #expect(inner[0] > 150 && inner[2] < 50)
    }

    @Test("heat turns pixels warm where it is high and leaves them alone where it is zero")
    func heat() {
        let image = RGBImage(width: 4, height: 1, channels: 3, repeating: 100)
        let drawn = AnomalyOverlay.draw(FrameAnnotation(heat: [0, 0, 1, 1]), on: image)
        #expect(Array(drawn.samples[0..<6]) == [100, 100, 100, 100, 100, 100])
        #expect(drawn.samples[6] > 150 && drawn.samples[8] < 100)  // red up, blue down
    }
}

@Suite("One model, several monitors")
struct SharedModelTests {
    /// The masks of `frames` through a monitor of its own on `model`.
    static func masks(_ model: LoadedModel, _ frames: Int) async throws -> [[Bool]] {
        let monitor = try Monitor(model: model, configuration: Monitor.Configuration(size: FrameSize(width: 64, height: 64)))
        let masks = Mutex<[[Bool]]>([])
        _ = try await monitor.run(NumberedFrames(count: frames)) { done in masks.withLock { $0.append(done.mask) } }
        return masks.withLock { $0 }
    }

    /// Before, the model's scratch memory was one per model: monitors sharing it (cameras of one service)
    /// wrote into each other's activations and crashed.
    @Test("four monitors on one loaded model at once give what one alone gives")
    func concurrentMonitors() async throws {
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        let alone = try await Self.masks(model, 12)
        let together = try await withThrowingTaskGroup(of: [[Bool]].self) { group in
            for _ in 0..<4 { group.addTask { try await Self.masks(model, 12) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(together.count == 4)
        for masks in together { #expect(masks == alone) }
    }
}
