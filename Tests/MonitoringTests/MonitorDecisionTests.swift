import AsyncAlgorithms
import Foundation
import Models
import Monitoring
import Pipeline
import Synchronization
import Testing
import TestKit
import VideoIO

@Suite("The monitor's decisions")
struct MonitorDecisionTests {
    /// The first `count` frames of the fox clip (the fox appears at frame 50), decoded once.
    static func foxFrames(_ count: Int) async throws -> [VideoFrame] {
        let source = try await VideoSource.open(Shared.path("data/videos/synthetic_fox_solidWhiteRight/video.mp4"))
        var frames: [VideoFrame] = []
        for try await frame in source {
            frames.append(frame)
            if frames.count == count { break }
        }
        await source.close()
        return frames
    }

    /// Every event line with its timing field dropped.
    static func events(_ run: (@escaping @Sendable (MonitoredFrame) async throws -> Void) async throws -> RunSummary)
        async throws -> [FrameEvent] {
        let lines = Mutex<[FrameEvent]>([])
        _ = try await run { done in
            var event = FrameEvent(done)
            event.latency_ms = nil
            lines.withLock { $0.append(event) }
        }
        return lines.withLock { $0 }
    }

    @Test("stages overlapped and one frame at a time give the same events on the fox clip (timings aside)")
    func overlappedEqualsSequential() async throws {
        let frames = try await Self.foxFrames(90)
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        var configuration = Monitor.Configuration(size: FrameSize(width: 512, height: 256))
        // Random delays after each stage reorder when the stages run, never what they compute.
        configuration.afterStage = { _, _ in try? await Task.sleep(for: .milliseconds(Int.random(in: 0...4))) }
        let overlapped = try Monitor(model: model, configuration: configuration)
        let sequential = try Monitor(model: model, configuration: Monitor.Configuration(size: FrameSize(width: 512, height: 256)))
        let a = try await Self.events { try await overlapped.run(frames, sink: $0) }
        let b = try await Self.events { try await sequential.runSequentially(frames.async, sink: $0) }
        #expect(a.count == 90 && b.count == 90)
        #expect(a.map(\.frame) == Array(0..<90))
        #expect(a == b)
        // Warm starts after the first frame; the clusters and their decisions are in every line.
        #expect(!a[0].kmeans.warm && a.dropFirst().allSatisfy(\.kmeans.warm))
        #expect(a.allSatisfy { $0.clusters.count == 4 && $0.version == FrameEvent.schemaVersion })
    }
}
