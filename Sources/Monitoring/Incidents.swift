import Anomaly
import Foundation
import Pipeline

/// When a flagged region becomes an event, and when the event is over.
public struct EventRules: Sendable, Equatable, Codable {
    /// Frames a region must be flagged on before an event starts. A frame-to-frame flicker never gets there:
    /// the change rule decides every 0.08 s, so one decision covers at most 4 frames up to 50 fps.
    public var minFrames = 5
    /// Seconds without the region before its event ends.
    public var endAfter = 2.0
    /// Seconds a region that has not yet started an event may go unseen before it is forgotten.
    public var candidateGap = 0.5
    /// Seconds of video before the start and after the end that an event's clip holds.
    public var preCapture = 3.0
    public var postCapture = 3.0
    /// Write a JPEG of the annotated frame at the event's best score.
    public var snapshots = true
    /// Write an MP4 clip per event.
    public var clips = true
    /// Clips and snapshots are at most this wide (scaled down, aspect kept).
    public var evidenceWidth = 640
    /// Seconds of video in one clip file: an event open longer goes on in a new file (part 2, 3...), so an
    /// event that never ends (a parked car) never makes a file without end, and each part is finished and
    /// listed as it fills.
    public var maxClipSeconds = 300.0

    public init() {}

    public static let `default` = EventRules()

    public func validate() throws(JobError) {
        guard minFrames >= 1 else { throw JobError("min_frames must be at least 1, got \(minFrames)") }
        guard endAfter > 0, endAfter.isFinite else { throw JobError("end_after must be positive seconds, got \(endAfter)") }
        guard candidateGap >= 0, candidateGap.isFinite else { throw JobError("candidate_gap must not be negative") }
        guard preCapture >= 0, preCapture <= 60 else { throw JobError("pre_capture must be in 0...60 seconds, got \(preCapture)") }
        guard postCapture >= 0, postCapture <= 60 else { throw JobError("post_capture must be in 0...60 seconds, got \(postCapture)") }
        guard evidenceWidth >= 16 else { throw JobError("the evidence width must be at least 16 pixels") }
        guard maxClipSeconds >= 1, maxClipSeconds <= 86400 else {
            throw JobError("max_clip_seconds must be in 1...86400 seconds, got \(maxClipSeconds)")
        }
    }
}

/// One line of an event list: an event's start (`new`), a better view of it (`update`) or its end (`end`).
public struct EventRecord: Codable, Sendable, Equatable {
    public var type: String
    public var id: String
    public var camera: String
    /// Epoch seconds for live sources, media seconds for files.
    public var start: Double
    public var end: Double?
    /// The event's highest score: with the change rule (the default) the largest change score of the
    /// region's cells (the alarm threshold is 4.25 by default); with the cluster rule how far the region's
    /// mean max-logit fell below tau. Higher is more anomalous either way.
    public var top_score: Double
    /// x, y, width, height in frame pixels, where the top score was seen.
    public var box: [Int]
    public var area: Int
    /// Files relative to the event list's folder (nil when not written).
    public var snapshot: String?
    public var clip: String?
    /// Frames the event's region was flagged on so far.
    public var frames: Int
    /// Why an event ended when it is not the usual way: `interrupted` (the process was killed while it was
    /// open; its end is then its start, the last time known). Absent for an event that ended on its own.
    public var end_reason: String?
    /// Where the event was at its best view, when the source has GPS or the camera a fixed place; omitted otherwise.
    public var location: EventLocation?
    /// When (on the event clock) the top score was seen: where the location is looked up. Not written:
    /// the snapshot's moment, kept so the job can place the event.
    public var bestTime: Double?

    private enum CodingKeys: String, CodingKey {
        case type, id, camera, start, end, top_score, box, area, snapshot, clip, frames, end_reason, location
    }

    /// Equal when every written field is: `bestTime` is not in the file, so a record read back equals the one written.
    public static func == (a: EventRecord, b: EventRecord) -> Bool {
        a.type == b.type && a.id == b.id && a.camera == b.camera && a.start == b.start && a.end == b.end
            && a.top_score == b.top_score && a.box == b.box && a.area == b.area && a.snapshot == b.snapshot
            && a.clip == b.clip && a.frames == b.frames && a.end_reason == b.end_reason && a.location == b.location
    }

    public init(type: String, id: String, camera: String, start: Double, end: Double?, top_score: Double, box: [Int],
                area: Int, snapshot: String?, clip: String?, frames: Int, end_reason: String? = nil,
                location: EventLocation? = nil, bestTime: Double? = nil) {
        self.type = type
        self.id = id
        self.camera = camera
        self.start = start
        self.end = end
        self.top_score = top_score
        self.box = box
        self.area = area
        self.snapshot = snapshot
        self.clip = clip
        self.frames = frames
        self.end_reason = end_reason
        self.location = location
        self.bestTime = bestTime
    }
}

/// Turns the tracked regions of each frame into events with a start and an end. A region joins an event
/// when it carries one of the event's track ids or overlaps the event's last box; a region flagged on fewer
/// than `minFrames` frames (a flicker) never starts one; an event ends `endAfter` seconds after its region
/// was last seen, so a region that blinks out for a moment does not split into duplicates.
public struct EventTracker: Sendable {
    public enum Change: Sendable, Equatable {
        /// A region began to be watched (not an event yet): evidence may start recording from `time`.
        case candidate(key: Int, time: Double)
        /// The candidate faded before it became an event.
        case dropped(key: Int)
        case new(key: Int, EventRecord)
        case update(key: Int, EventRecord)
        case end(key: Int, EventRecord)
    }

    private struct Track {
        var key: Int
        var trackIDs: Set<Int>
        var lastBox: [Int]
        var first: Double
        var lastSeen: Double
        var frames = 0
        var record: EventRecord
        var started = false
    }

    /// Track ids an event remembers to join regions by: the newest this many.
    static let trackIDsKept = 64

    public let rules: EventRules
    public let camera: String
    private let tau: Double
    private var tracks: [Track] = []
    private var nextKey = 1

    /// Put in every event id when the event clock is a file's media time (see `EventOutputs.idStamp`).
    public let idStamp: Int64?

    public init(rules: EventRules, camera: String, tau: Double, idStamp: Int64? = nil) {
        self.rules = rules
        self.camera = camera
        self.tau = tau
        self.idStamp = idStamp
    }

    /// The events open now (started, not ended).
    public var openEvents: [EventRecord] { tracks.filter(\.started).map(\.record) }

    /// One frame's regions at `time` (seconds on the event clock); `alarmScores`, the change rule's score of
    /// each grid cell, score the regions when given.
    public mutating func observe(_ regions: [TemporalThreshold.TrackedRegion], alarmScores: [Float]? = nil,
                                 time: Double) -> [Change] {
        var changes: [Change] = []
        var seen = Set<Int>()
        for tracked in regions {
            let region = tracked.region
            let raw: Double
            if let alarmScores, let top = region.cells.lazy.filter({ $0 < alarmScores.count }).map({ alarmScores[$0] }).max() {
                raw = Double(top)
            } else {
                raw = tau + region.score
            }
            let score = (raw * 1000).rounded() / 1000
            let index = tracks.firstIndex { $0.trackIDs.contains(tracked.id) }
                ?? tracks.firstIndex { $0.started && Self.overlaps($0.lastBox, region.box) }
                ?? tracks.firstIndex { Self.overlaps($0.lastBox, region.box) }
            if let index {
                if tracks[index].trackIDs.insert(tracked.id).inserted && tracks[index].trackIDs.count > Self.trackIDsKept {
                    // An event open for months collects a new id at every reset: keep the newest (ids only grow, and
                    // an old id never comes back once its region is gone).
                    tracks[index].trackIDs.remove(tracks[index].trackIDs.min()!)
                }
                tracks[index].lastBox = region.box
                tracks[index].lastSeen = time
                if !seen.contains(tracks[index].key) { tracks[index].frames += 1 }
                if score > tracks[index].record.top_score {
                    let grewEnough = score > tracks[index].record.top_score + 0.05
                        || region.area > tracks[index].record.area * 5 / 4
                    tracks[index].record.top_score = score
                    tracks[index].record.box = region.box
                    tracks[index].record.area = region.area
                    tracks[index].record.bestTime = time
                    if tracks[index].started && grewEnough && !seen.contains(tracks[index].key) {
                        tracks[index].record.frames = tracks[index].frames
                        var update = tracks[index].record
                        update.type = "update"
                        changes.append(.update(key: tracks[index].key, update))
                    }
                }
                seen.insert(tracks[index].key)
            } else {
                let key = nextKey
                nextKey += 1
                let record = EventRecord(type: "new", id: "", camera: camera, start: time, end: nil, top_score: score,
                                         box: region.box, area: region.area, snapshot: nil, clip: nil, frames: 1,
                                         bestTime: time)
                tracks.append(Track(key: key, trackIDs: [tracked.id], lastBox: region.box, first: time, lastSeen: time,
                                    frames: 1, record: record))
                seen.insert(key)
                changes.append(.candidate(key: key, time: time))
            }
        }
        for i in tracks.indices where !tracks[i].started && tracks[i].frames >= rules.minFrames {
            tracks[i].started = true
            tracks[i].record.id = Self.eventID(camera: camera, start: tracks[i].first, key: tracks[i].key, stamp: idStamp)
            tracks[i].record.frames = tracks[i].frames
            tracks[i].record.type = "new"
            changes.append(.new(key: tracks[i].key, tracks[i].record))
        }
        var kept: [Track] = []
        for track in tracks {
            let unseen = time - track.lastSeen
            if track.started && unseen >= rules.endAfter {
                changes.append(.end(key: track.key, ended(track)))
            } else if !track.started && unseen > rules.candidateGap {
                changes.append(.dropped(key: track.key))
            } else {
                kept.append(track)
            }
        }
        tracks = kept
        return changes
    }

    /// The most track ids any event holds now (tests check the bound).
    public var largestTrackIDSet: Int { tracks.map(\.trackIDs.count).max() ?? 0 }

    /// Ends every open event (the source ended or the run stops) and forgets the candidates.
    public mutating func finish() -> [Change] {
        let changes = tracks.map { $0.started ? Change.end(key: $0.key, ended($0)) : Change.dropped(key: $0.key) }
        tracks = []
        return changes
    }

    /// Sets the evidence file names an event's records carry from now on.
    public mutating func attach(key: Int, snapshot: String?, clip: String?) {
        guard let i = tracks.firstIndex(where: { $0.key == key }) else { return }
        if let snapshot { tracks[i].record.snapshot = snapshot }
        if let clip { tracks[i].record.clip = clip }
    }

    private func ended(_ track: Track) -> EventRecord {
        var record = track.record
        record.type = "end"
        record.end = track.lastSeen
        record.frames = track.frames
        return record
    }

    static func overlaps(_ a: [Int], _ b: [Int]) -> Bool {
        guard a.count == 4, b.count == 4 else { return false }
        return a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3]
    }

    /// `CAMERA-START-N`: the start in milliseconds keeps ids unique across restarts of the same camera when it is
    /// epoch time; a file's media time starts at 0 on every run, so there `CAMERA-STAMP-START-N`.
    static func eventID(camera: String, start: Double, key: Int, stamp: Int64? = nil) -> String {
        "\(camera)-" + (stamp.map { "\($0)-" } ?? "") + "\(Int64((start * 1000).rounded()))-\(key)"
    }
}
