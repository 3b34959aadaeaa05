import Anomaly
import Foundation
import Models
import Monitoring
import Testing
import TestKit
import VideoIO

/// The memory rule on a development clip, end to end through the monitor's stages, with the event-level
/// figures `eval videos` reports: the object flagged soon after it is 32 px tall and an event open over it for
/// most of its visible time. Fails when the alarm goes deaf (the `change` rule, the default, hits this fox on
/// about one frame in five and keeps no event open for long).
@Suite("The memory alarm on the fox clip")
struct MemoryAlarmTests {
    @Test("flagged within 1 s of being 32 px tall, in an event for at least half of its visible time")
    func foxIsFlaggedAndFollowed() async throws {
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        var settings = MethodSettings.default
        settings.alarm = .memory
        let clip = Shared.path("data/videos/synthetic_fox_solidWhiteRight")
        let r = try await VideoEvaluation.run(video: clip + "/video.mp4", masks: clip + "/masks", every: 1, model: model,
                                              size: FrameSize(width: 512, height: 256), settings: settings, poolsPixels: false)
        let delay = try #require(r.events.delay, "the fox was never flagged after it was 32 px tall")
        #expect(delay <= 1, "flagged \(delay) s after it was 32 px tall")
        #expect(r.events.coverage >= 0.5, "in an event for \(r.events.coverage) of its time")
        #expect(r.alarms.cleanAlarmRate == 0, "alarms on the clean frames before the fox: \(r.alarms.cleanAlarmRate)")
    }
}
