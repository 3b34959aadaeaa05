import Foundation
import Overlay
import Pipeline
import Synchronization
import VideoIO

/// Where a stream's events go: the event list (JSON lines of `EventRecord`), and a folder for each event's
/// snapshot (`snapshots/ID.jpg`) and clip (`clips/ID.mp4`).
public struct EventOutputs: Sendable {
    public var list: String
    /// The folder `snapshots/` and `clips/` are made in; nil: no evidence files.
    public var evidenceFolder: String?
    public var camera: String
    public var rules: EventRules
    /// Event times in epoch seconds (live sources) rather than media seconds (files).
    public var epochTimes: Bool
    /// A failed write of the event list is a warning and the next line is tried again (the service);
    /// otherwise it ends the run like any output error.
    public var keepGoingOnWriteErrors = false
    /// Add to an existing event list rather than start it afresh (a service's list outlives restarts).
    public var appendsToList = false
    /// Places each event (the input's GPS track, a camera's fixed position); nil: events carry no location.
    public var locator: EventLocator?

    public init(list: String, evidenceFolder: String?, camera: String, rules: EventRules = .default, epochTimes: Bool) {
        self.list = list
        self.evidenceFolder = evidenceFolder
        self.camera = camera
        self.rules = rules
        self.epochTimes = epochTimes
    }

    /// The event list next to an annotated video: `out.mp4` → `out.event-list.jsonl`.
    public static func listPath(besideVideo video: String) -> String {
        let url = URL(fileURLWithPath: video)
        let stem = url.pathExtension.isEmpty ? url.path : url.deletingPathExtension().path
        return stem.replacingOccurrences(of: "%03d", with: "").replacingOccurrences(of: "%d", with: "") + ".event-list.jsonl"
    }
}

/// The events of one stream, written as they happen: the tracker's changes become lines of the event list,
/// a snapshot at the event's best score, and a clip from `preCapture` seconds before its start to
/// `postCapture` after its end, encoded from a ring of the annotated frames already made (nothing is
/// decoded twice). A clip starts recording as soon as a region is watched, so its first seconds are there;
/// a region that fades before it becomes an event takes its clip with it. Evidence that cannot be written
/// (a full disk) is a warning, said once until a write succeeds again, and the events go on.
public actor EventSink {
    private struct Clip {
        var writer: H264Writer
        var partial: String
        var final: String?
        var start: Double
        var lastPTS: Int64 = -1
        var stopAt: Double?
    }

    public nonisolated let outputs: EventOutputs
    private var tracker: EventTracker
    private let log: EventLog
    private var ring: [(image: RGBImage, time: Double)] = []
    private var clips: [Int: Clip] = [:]
    private let onWarning: @Sendable (String) -> Void
    private var warned = false
    private let frameRate: Rational
    public private(set) var written: [EventRecord] = []
    /// Called with each line as it is written (the service's store and webhooks).
    private let onRecord: @Sendable (EventRecord) -> Void

    public init(outputs: EventOutputs, tau: Double, frameRate: Rational?,
                onWarning: @escaping @Sendable (String) -> Void = { _ in },
                onRecord: @escaping @Sendable (EventRecord) -> Void = { _ in }) throws(JobError) {
        try outputs.rules.validate()
        self.outputs = outputs
        tracker = EventTracker(rules: outputs.rules, camera: outputs.camera, tau: tau)
        log = try EventLog(path: outputs.list, appending: outputs.appendsToList)
        self.onWarning = onWarning
        self.onRecord = onRecord
        self.frameRate = frameRate.flatMap { $0.isValid ? $0 : nil } ?? Rational(25, 1)
        if let folder = outputs.evidenceFolder {
            for sub in ["snapshots", "clips"] {
                try OutputChecks.makeFolder(URL(fileURLWithPath: folder).appendingPathComponent(sub).path, what: "evidence folder")
            }
        }
    }

    /// The event clock's time of a frame: when it was decoded (epoch) for live sources, its media time for files.
    public nonisolated func time(of done: MonitoredFrame) -> Double {
        outputs.epochTimes ? Date().timeIntervalSince1970 - done.arrival.secondsSince : done.frame.time
    }

    /// One written frame: its regions through the tracker, its image into the ring and the open clips.
    public func observe(_ done: MonitoredFrame) async throws {
        let t = time(of: done)
        let rules = outputs.rules
        let changes = tracker.observe(done.regions, alarmScores: done.alarmScores, time: t)
        // Clips need every frame (the ring); snapshots only the frames that start or improve an event.
        let startsOrImproves = changes.contains { change in
            switch change {
            case .new, .update: return true
            default: return false
            }
        }
        let wantsImage = outputs.evidenceFolder != nil && (rules.clips || (rules.snapshots && startsOrImproves))
        let image = wantsImage ? done.annotated.downscaled(maxWidth: rules.evidenceWidth) : nil
        for change in changes { try await apply(change, image: image, time: t) }
        if let image, rules.clips {
            await appendToClips(image, time: t)
            ring.append((image, t))
            let keepFrom = t - rules.preCapture
            if let firstKept = ring.firstIndex(where: { $0.time >= keepFrom }), firstKept > 0 { ring.removeFirst(firstKept) }
        }
    }

    /// Ends the open events and closes every clip so it plays.
    public func finish() async throws {
        for change in tracker.finish() { try await apply(change, image: nil, time: nil) }
        for key in clips.keys.sorted() { await closeClip(key) }
        do {
            try await log.close()
        } catch {
            if !outputs.keepGoingOnWriteErrors { throw error }
            warn(error.description)
        }
    }

    private func apply(_ change: EventTracker.Change, image: RGBImage?, time: Double?) async throws {
        switch change {
        case let .candidate(key, start):
            guard let image, outputs.rules.clips, let folder = outputs.evidenceFolder else { return }
            await openClip(key: key, start: start - outputs.rules.preCapture, like: image, folder: folder)
        case let .dropped(key):
            if let clip = clips.removeValue(forKey: key) {
                await clip.writer.abort()
                unlink(clip.partial)
            }
        case let .new(key, record), let .update(key, record):
            var record = record
            if let folder = outputs.evidenceFolder {
                if outputs.rules.snapshots, let image {
                    let name = "snapshots/\(record.id).jpg"
                    do {
                        try StillImage.writeJPEG(image, to: folder + "/" + name)
                        record.snapshot = name
                        cleared()
                    } catch {
                        warn(error.description)
                    }
                }
                if clips[key] != nil {
                    record.clip = "clips/\(record.id).mp4"
                    clips[key]?.final = folder + "/" + record.clip!
                }
                tracker.attach(key: key, snapshot: record.snapshot, clip: record.clip)
            }
            try await append(record)
        case let .end(key, record):
            try await append(record)
            if var clip = clips[key] {
                clip.stopAt = (record.end ?? time ?? 0) + outputs.rules.postCapture
                clips[key] = clip
                if time == nil { await closeClip(key) }
            }
        }
    }

    private func append(_ record: EventRecord) async throws {
        var record = record
        record.location = outputs.locator?.location(at: record.bestTime ?? record.start)
        do {
            try await log.append(record)
        } catch {
            if !outputs.keepGoingOnWriteErrors { throw error }
            warn(error.description)
        }
        written.append(record)
        onRecord(record)
    }

    private func openClip(key: Int, start: Double, like image: RGBImage, folder: String) async {
        let partial = folder + "/clips/.candidate-\(key)-\(getpid()).mp4"
        let settings = H264Writer.Settings(width: image.width, height: image.height, frameRate: frameRate,
                                           timeBase: Rational(1, 1000), crf: 23, preset: "veryfast", threads: 1)
        do {
            let writer = try H264Writer(path: partial, settings: settings)
            var clip = Clip(writer: writer, partial: partial, start: start)
            for (frame, t) in ring where t >= start {
                let pts = Int64(((t - start) * 1000).rounded())
                guard pts > clip.lastPTS else { continue }
                try await writer.append(frame, pts: pts)
                clip.lastPTS = pts
            }
            clips[key] = clip
            cleared()
        } catch {
            warn("cannot record an event clip: \(error)")
            unlink(partial)
        }
    }

    private func appendToClips(_ image: RGBImage, time t: Double) async {
        for key in clips.keys.sorted() {
            guard var clip = clips[key] else { continue }
            let pts = Int64(((t - clip.start) * 1000).rounded())
            if pts > clip.lastPTS && image.width == clip.writer.settings.width && image.height == clip.writer.settings.height {
                do {
                    try await clip.writer.append(image, pts: pts)
                    clip.lastPTS = pts
                    clips[key] = clip
                } catch {
                    warn("cannot record the event clip \(clip.final ?? clip.partial): \(error)")
                    clips[key] = nil
                    await clip.writer.abort()
                    unlink(clip.partial)
                    continue
                }
            }
            if let stopAt = clip.stopAt, t >= stopAt { await closeClip(key) }
        }
    }

    private func closeClip(_ key: Int) async {
        guard let clip = clips.removeValue(forKey: key) else { return }
        do {
            try await clip.writer.finish()
            if let final = clip.final {
                if rename(clip.partial, final) != 0 {
                    let number = errno
                    throw JobError("cannot move the event clip to '\(final)': \(describeErrno(number))", errno: number)
                }
            } else {
                unlink(clip.partial)
            }
        } catch {
            warn("cannot finish the event clip \(clip.final ?? clip.partial): \(error)")
            unlink(clip.partial)
        }
    }

    private func warn(_ message: String) {
        guard !warned else { return }
        warned = true
        onWarning("\(outputs.camera): \(message) (events go on; evidence resumes when it can be written)")
    }

    private func cleared() { warned = false }
}
