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
    /// Put in every event id (the service sets the run's start, epoch milliseconds, for a file camera): a
    /// file's media time starts at 0 on every run, and without it a restarted camera would reuse the ids of
    /// the events before, merging new events into old ones (an interrupted one among them) in the store.
    public var idStamp: Int64?
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
///
/// Bounded for a service that runs for months: the ring holds `preCapture` seconds (and never more frames
/// than that at twice the nominal rate); a clip goes to disk as it grows, a fragmented MP4 under a hidden
/// name that plays at any moment, and is renamed to its listed name only when finished; an event open
/// longer than `maxClipSeconds` goes on in a new part (`ID.part2.mp4`, ...); only open events are held
/// (the event list and the service's store have the history).
public actor EventSink {
    private struct Clip {
        var writer: H264Writer
        /// The hidden file being written; renamed to `finalPath(part)` when the part is finished.
        var partial: String
        /// The event's id once the candidate became an event; without it the clip is thrown away.
        var id: String?
        var part = 1
        /// Event-clock time of the part's first timestamp.
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
    /// Events started so far (the lines themselves are in the event list, not kept here).
    public private(set) var eventsStarted = 0
    /// The event clock made monotonic: a looped file's media time starts again at 0, and a clock that runs
    /// backwards would keep old frames in the ring and events open for ever.
    private var lastRawTime: Double?
    private var clockOffset = 0.0
    /// Called with each line as it is written (the service's store and webhooks).
    private let onRecord: @Sendable (EventRecord) -> Void
    /// Called when a clip part is finished and renamed into place: the event's id, the file relative to the
    /// evidence folder, the part number.
    private let onClip: @Sendable (_ id: String, _ clip: String, _ part: Int) -> Void

    public init(outputs: EventOutputs, tau: Double, frameRate: Rational?,
                onWarning: @escaping @Sendable (String) -> Void = { _ in },
                onRecord: @escaping @Sendable (EventRecord) -> Void = { _ in },
                onClip: @escaping @Sendable (_ id: String, _ clip: String, _ part: Int) -> Void = { _, _, _ in }) throws(JobError) {
        try outputs.rules.validate()
        self.outputs = outputs
        tracker = EventTracker(rules: outputs.rules, camera: outputs.camera, tau: tau, idStamp: outputs.idStamp)
        log = try EventLog(path: outputs.list, appending: outputs.appendsToList)
        self.onWarning = onWarning
        self.onRecord = onRecord
        self.onClip = onClip
        self.frameRate = frameRate.flatMap { $0.isValid ? $0 : nil } ?? Rational(25, 1)
        if let folder = outputs.evidenceFolder {
            for sub in ["snapshots", "clips"] {
                try OutputChecks.makeFolder(URL(fileURLWithPath: folder).appendingPathComponent(sub).path, what: "evidence folder")
            }
            Self.removeAbandonedEvidence(in: folder)
        }
    }

    /// The events open now (started, not ended).
    public var openEvents: [EventRecord] { tracker.openEvents }

    /// The event clock's time of a frame: when it was decoded (epoch) for live sources, its media time for files.
    public nonisolated func time(of done: MonitoredFrame) -> Double {
        outputs.epochTimes ? Date().timeIntervalSince1970 - done.arrival.secondsSince : done.frame.time
    }

    /// `time(of:)`, shifted so it never goes back: after a jump back (a looped file) it goes on one frame later.
    private func clockTime(of done: MonitoredFrame) -> Double {
        let raw = time(of: done)
        if let last = lastRawTime, raw < last {
            clockOffset += last - raw + 1 / max(1, frameRate.value)
        }
        lastRawTime = raw
        return raw + clockOffset
    }

    /// One written frame: its regions through the tracker, its image into the ring and the open clips.
    public func observe(_ done: MonitoredFrame) async throws {
        let t = clockTime(of: done)
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
            let firstKept = ring.firstIndex { $0.time >= keepFrom } ?? ring.count
            let overCount = ring.count - ringLimit
            if max(firstKept, overCount) > 0 { ring.removeFirst(max(firstKept, overCount)) }
        }
    }

    /// The most frames the ring holds: `preCapture` seconds at twice the nominal rate (a live source that
    /// sends faster than it says must not grow it).
    private var ringLimit: Int {
        max(1, Int((outputs.rules.preCapture * 2 * max(1, frameRate.value)).rounded(.up)) + 1)
    }

    /// Frames held for the next clip's pre-capture (tests check the bound).
    public var ringCount: Int { ring.count }

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

    /// The clip file of `id`'s part `part`, relative to the evidence folder: part 1 keeps the name events
    /// have always listed.
    public static func clipName(id: String, part: Int) -> String {
        part <= 1 ? "clips/\(id).mp4" : "clips/\(id).part\(part).mp4"
    }

    private func apply(_ change: EventTracker.Change, image: RGBImage?, time: Double?) async throws {
        switch change {
        case let .candidate(key, start):
            guard let image, outputs.rules.clips, let folder = outputs.evidenceFolder else { return }
            await openClip(key: key, start: start - outputs.rules.preCapture, like: image, folder: folder, part: 1, fromRing: true)
        case let .dropped(key):
            if let clip = clips.removeValue(forKey: key) {
                await clip.writer.abort()
                unlink(clip.partial)
            }
        case let .new(key, record), let .update(key, record):
            var record = record
            if let folder = outputs.evidenceFolder {
                if outputs.rules.snapshots, let image {
                    // Written to a hidden name and renamed over the last one (StillImage.writeJPEG): one file an
                    // event, never half-written.
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
                    record.clip = Self.clipName(id: record.id, part: 1)
                    clips[key]?.id = record.id
                }
                tracker.attach(key: key, snapshot: record.snapshot, clip: record.clip)
            }
            if case .new = change { eventsStarted += 1 }
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
        onRecord(record)
    }

    /// The hidden name a clip part is written under: the process id tells a later start which are abandoned.
    private func partialPath(folder: String, key: Int, part: Int) -> String {
        folder + "/clips/.candidate-\(key)-\(getpid())" + (part > 1 ? "-part\(part)" : "") + ".mp4"
    }

    private func openClip(key: Int, start: Double, like image: RGBImage, folder: String, part: Int, fromRing: Bool,
                          id: String? = nil) async {
        let partial = partialPath(folder: folder, key: key, part: part)
        let settings = H264Writer.Settings(width: image.width, height: image.height, frameRate: frameRate,
                                           timeBase: Rational(1, 1000), crf: 23, preset: "veryfast", threads: 1)
        do {
            let writer = try H264Writer(path: partial, settings: settings)
            var clip = Clip(writer: writer, partial: partial, id: id, part: part, start: start)
            if fromRing {
                for (frame, t) in ring where t >= start {
                    let pts = Int64(((t - start) * 1000).rounded())
                    guard pts > clip.lastPTS else { continue }
                    try await writer.append(frame, pts: pts)
                    clip.lastPTS = pts
                }
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
            if let id = clip.id, t - clip.start >= outputs.rules.maxClipSeconds, clip.stopAt.map({ t < $0 }) ?? true,
               let folder = outputs.evidenceFolder {
                // The part is full: finish it (it is listed from now on) and go on in the next one.
                await closeClip(key)
                await openClip(key: key, start: t, like: image, folder: folder, part: clip.part + 1, fromRing: false, id: id)
                guard var next = clips[key] else { continue }
                next.stopAt = clip.stopAt
                clip = next
                clips[key] = next
            }
            let pts = Int64(((t - clip.start) * 1000).rounded())
            if pts > clip.lastPTS && image.width == clip.writer.settings.width && image.height == clip.writer.settings.height {
                do {
                    try await clip.writer.append(image, pts: pts)
                    clip.lastPTS = pts
                    clips[key] = clip
                } catch {
                    warn("cannot record the event clip \(clip.partial): \(error)")
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
            if let id = clip.id, let folder = outputs.evidenceFolder {
                let name = Self.clipName(id: id, part: clip.part)
                let final = folder + "/" + name
                if rename(clip.partial, final) != 0 {
                    let number = errno
                    throw JobError("cannot move the event clip to '\(final)': \(describeErrno(number))", errno: number)
                }
                onClip(id, name, clip.part)
            } else {
                unlink(clip.partial)
            }
        } catch {
            warn("cannot finish the event clip \(clip.partial): \(error)")
            unlink(clip.partial)
        }
    }

    /// Hidden files a process that was killed left half-written: clips being recorded (`.candidate-KEY-PID...mp4`,
    /// the process id in the name, no such process now) or being rewritten (`..candidate-...mp4.faststart`), and
    /// snapshots being replaced (`.ID.jpg.partial`: this sink is the folder's only writer, and it has not started).
    /// They are never listed, and the retention sweep leaves hidden files alone, so they would stay for ever.
    static func removeAbandonedEvidence(in folder: String) {
        let clips = folder + "/clips", snapshots = folder + "/snapshots"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: clips)) ?? [] {
            var stem = Substring(name)
            while stem.hasPrefix(".") { stem = stem.dropFirst() }
            if stem.hasSuffix(".faststart") { stem = stem.dropLast(".faststart".count) }
            guard stem.hasPrefix("candidate-"), stem.hasSuffix(".mp4") else { continue }
            let fields = stem.dropFirst("candidate-".count).dropLast(".mp4".count).split(separator: "-")
            guard fields.count >= 2, let pid = Int32(fields[1]), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(clips + "/" + name) }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: snapshots)) ?? []
        where name.hasPrefix(".") && name.hasSuffix(".jpg.partial") {
            unlink(snapshots + "/" + name)
        }
    }

    private func warn(_ message: String) {
        guard !warned else { return }
        warned = true
        onWarning("\(outputs.camera): \(message) (events go on; evidence resumes when it can be written)")
    }

    private func cleared() { warned = false }
}
