import Anomaly
import Foundation
import Models
import Monitoring
import Pipeline
import Synchronization
import Testing
import TestKit
import VideoIO

/// An event that stays open on a looped file (the service's soak case): what the sink holds stays bounded,
/// the clip goes to disk in parts, and only finished parts are ever named.
@Suite("Evidence of an event that never ends")
struct EvidenceBoundsTests {
    /// `laps` passes over the first `count` frames of the highway clip, stamped as a looped file is: media
    /// time starts again at 0 each lap, indices go on, and the frame after the jump starts afresh.
    static func loopedFrames(count: Int, laps: Int) async throws -> [VideoFrame] {
        let source = try await VideoSource.open(Shared.path("data/videos/solidWhiteRight.mp4"))
        var lap: [VideoFrame] = []
        for try await frame in source {
            lap.append(frame)
            if lap.count == count { break }
        }
        await source.close()
        var frames: [VideoFrame] = []
        for l in 0..<laps {
            for (i, var frame) in lap.enumerated() {
                frame.index = l * count + i
                frame.gapBefore = l > 0 && i == 0 ? 0 : nil
                frames.append(frame)
            }
        }
        return frames
    }

    @Test("tau 100 on 4 laps of a 2 s loop: one event open throughout, the ring within pre_capture, the clip in 2 s parts each listed once finished and playable, no hidden file left")
    func openEventOnALoop() async throws {
        let scratch = try ScratchDirectory("evidencebounds")
        let frames = try await Self.loopedFrames(count: 50, laps: 4)
        let model = try await ModelLoader.load(ModelRegistry.defaultName)
        var settings = MethodSettings.default
        settings.alarm = .clusters
        settings.tau = 100  // every cluster is out of distribution: a region over the whole road, always
        let monitor = try Monitor(model: model, configuration: Monitor.Configuration(size: FrameSize(width: 256, height: 128),
                                                                                     settings: settings))
        var rules = EventRules()
        rules.minFrames = 2
        rules.preCapture = 1
        rules.maxClipSeconds = 2
        let finished = Mutex<[(id: String, clip: String, part: Int)]>([])
        let listedEarly = Mutex<[String]>([])
        let folder = scratch.path("evidence")
        let sink = try EventSink(outputs: EventOutputs(list: scratch.path("events.jsonl"), evidenceFolder: folder, camera: "cam",
                                                       rules: rules, epochTimes: false),
                                 tau: settings.tau, frameRate: Rational(25, 1),
                                 onClip: { id, clip, part in
                                     // Called after the rename: the file must be there, whole, under its final name.
                                     if !FileManager.default.fileExists(atPath: folder + "/" + clip) {
                                         listedEarly.withLock { $0.append(clip) }
                                     }
                                     finished.withLock { $0.append((id, clip, part)) }
                                 })
        let ringMax = Mutex(0)
        _ = try await monitor.run(frames) { done in
            try await sink.observe(done)
            let count = await sink.ringCount
            ringMax.withLock { $0 = max($0, count) }
        }
        #expect(await sink.openEvents.count == 1, "the event ended across the loop")
        // Before the fix the ring kept every frame after the first jump back (150 of 200 here; ~26 MB/s live).
        #expect(ringMax.withLock { $0 } <= 2 * 25 + 1, "ring \(ringMax.withLock { $0 }) frames for 1 s of pre-capture")
        let partsWhileOpen = finished.withLock { $0 }
        #expect(partsWhileOpen.count >= 2, "parts finished while the event was open: \(partsWhileOpen.map(\.clip))")
        try await sink.finish()
        #expect(await sink.eventsStarted == 1)
        let parts = finished.withLock { $0 }
        #expect(listedEarly.withLock { $0 }.isEmpty)
        let id = try #require(parts.first?.id)
        #expect(parts.map(\.part) == Array(1...parts.count))
        #expect(parts.map(\.clip) == (1...parts.count).map { EventSink.clipName(id: id, part: $0) })
        #expect(parts.first?.clip == "clips/\(id).mp4")
        for part in parts {
            let source = try await VideoSource.open(folder + "/" + part.clip)
            let count = try await source.countRemainingFrames()
            await source.close()
            // 2 s at 25 fps, plus the 1 s of pre-capture in part 1 (the last part is what is left).
            #expect(count >= 1 && count <= 3 * 25 + 1, "\(part.clip): \(count) frames")
        }
        let hidden = try FileManager.default.contentsOfDirectory(atPath: folder + "/clips").filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty, "\(hidden)")
        let lines = try String(contentsOfFile: scratch.path("events.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.filter { $0.contains("\"type\":\"new\"") }.count == 1 && lines.filter { $0.contains("\"type\":\"end\"") }.count == 1)
    }

    @Test("max_clip_seconds is checked like the other event settings")
    func validation() {
        var rules = EventRules()
        #expect(rules.maxClipSeconds == 300)
        rules.maxClipSeconds = 0.5
        #expect(throws: JobError.self) { try rules.validate() }
        rules.maxClipSeconds = 600
        #expect(throws: Never.self) { try rules.validate() }
    }

    @Test("hidden clips and snapshots a killed process was writing are removed at start; this process's and foreign names stay")
    func abandonedClips() throws {
        let scratch = try ScratchDirectory("abandoned")
        let clips = scratch.path("evidence/clips")
        try FileManager.default.createDirectory(atPath: clips, withIntermediateDirectories: true)
        // A pid above the kernel's pid_max (4194304 at most) names no process.
        let snapshots = scratch.path("evidence/snapshots")
        try FileManager.default.createDirectory(atPath: snapshots, withIntermediateDirectories: true)
        let names = [".candidate-3-99999999.mp4", ".candidate-4-99999999-part2.mp4", "..candidate-6-99999999.mp4.faststart",
                     ".candidate-5-\(getpid()).mp4", ".candidate-1.mp4", "a.mp4"]
        for name in names { _ = FileManager.default.createFile(atPath: clips + "/" + name, contents: Data([1])) }
        for name in [".e1.jpg.partial", "e1.jpg"] { _ = FileManager.default.createFile(atPath: snapshots + "/" + name, contents: Data([1])) }
        _ = try EventSink(outputs: EventOutputs(list: scratch.path("e.jsonl"), evidenceFolder: scratch.path("evidence"), camera: "c",
                                                epochTimes: false), tau: 6, frameRate: nil)
        let left = try FileManager.default.contentsOfDirectory(atPath: clips).sorted()
        #expect(left == [".candidate-1.mp4", ".candidate-5-\(getpid()).mp4", "a.mp4"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: snapshots) == ["e1.jpg"])
    }
}

@Suite("The event tracker over months")
struct TrackerBoundsTests {
    @Test("an event whose region changes track id every frame stays one event and keeps at most 64 ids")
    func trackIDsBounded() {
        var tracker = EventTracker(rules: .default, camera: "cam", tau: 6)
        var starts = 0, ends = 0
        for frame in 0..<5_000 {
            // The same place, a new id each frame (a tracker reset every frame: the worst case).
            let region = TemporalThreshold.TrackedRegion(id: frame + 1, region: AnomalyRegion(box: [100, 100, 40, 30], area: 1200,
                                                                                              score: -3, cluster: 0, cells: [0]))
            for change in tracker.observe([region], time: Double(frame) / 25) {
                if case .new = change { starts += 1 }
                if case .end = change { ends += 1 }
            }
            #expect(tracker.largestTrackIDSet <= 64)
        }
        #expect(starts == 1 && ends == 0 && tracker.openEvents.count == 1)
    }
}
