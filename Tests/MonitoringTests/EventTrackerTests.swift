import Anomaly
import Monitoring
import Testing

/// The event lifecycle on hand-made region sequences: what starts an event, what joins it, when it ends.
@Suite("Events with a start and an end")
struct EventTrackerTests {
    static func region(id: Int, box: [Int], score: Double = -3, cells: [Int] = [0]) -> TemporalThreshold.TrackedRegion {
        TemporalThreshold.TrackedRegion(id: id, region: AnomalyRegion(box: box, area: box[2] * box[3], score: score,
                                                                      cluster: 0, cells: cells))
    }

    /// Runs `frames` (regions per frame) at 25 fps and returns the lines the tracker would write.
    static func records(_ frames: [[TemporalThreshold.TrackedRegion]], rules: EventRules = .default, tau: Double = 6,
                        finish: Bool = true) -> [EventRecord] {
        var tracker = EventTracker(rules: rules, camera: "cam", tau: tau)
        var changes: [EventTracker.Change] = []
        for (i, regions) in frames.enumerated() { changes += tracker.observe(regions, time: Double(i) / 25) }
        if finish { changes += tracker.finish() }
        return changes.compactMap { change in
            switch change {
            case let .new(_, r), let .update(_, r), let .end(_, r): return r
            default: return nil
            }
        }
    }

    @Test("a flicker (one decision: 2 or 4 frames) never starts an event")
    func flicker() {
        let box = [100, 100, 40, 30]
        let quiet = [[TemporalThreshold.TrackedRegion]](repeating: [], count: 60)
        for length in [1, 2, 4] {
            let frames = [[TemporalThreshold.TrackedRegion]](repeating: [Self.region(id: 1, box: box)], count: length) + quiet
            #expect(Self.records(frames).isEmpty, "a \(length)-frame flicker started an event")
        }
    }

    @Test("a region flagged for 5 frames starts one event at its first frame; it ends end_after seconds after it was last seen")
    func lifecycle() throws {
        let box = [100, 100, 40, 30]
        let seen = [[TemporalThreshold.TrackedRegion]](repeating: [Self.region(id: 7, box: box)], count: 10)
        let quiet = [[TemporalThreshold.TrackedRegion]](repeating: [], count: 80)
        let lines = Self.records(seen + quiet, finish: false)
        try #require(lines.count == 2)
        #expect(lines[0].type == "new" && lines[1].type == "end")
        #expect(lines[0].id == lines[1].id && lines[0].camera == "cam")
        #expect(abs(lines[0].start - 0) < 1e-9)
        #expect(abs((lines[1].end ?? -1) - 9.0 / 25) < 1e-9)
        #expect(lines[0].box == box && lines[0].area == 1200 && lines[1].frames == 10)
        // top_score with the cluster rule: tau minus the confidence (-score) = 6 - 3.
        #expect(abs(lines[0].top_score - 3) < 1e-9)
    }

    @Test("a region that blinks out for less than end_after, under another track id, stays one event")
    func noDuplicates() {
        let a = [[TemporalThreshold.TrackedRegion]](repeating: [Self.region(id: 1, box: [100, 100, 40, 30])], count: 8)
        let gap = [[TemporalThreshold.TrackedRegion]](repeating: [], count: 20)  // 0.8 s < end_after 2 s
        let b = [[TemporalThreshold.TrackedRegion]](repeating: [Self.region(id: 2, box: [110, 105, 40, 30])], count: 8)
        let lines = Self.records(a + gap + b)
        #expect(lines.filter { $0.type == "new" }.count == 1)
        #expect(lines.filter { $0.type == "end" }.count == 1)
        // The same gap longer than end_after splits it into two events.
        let long = [[TemporalThreshold.TrackedRegion]](repeating: [], count: 60)
        let split = Self.records(a + long + b)
        #expect(split.filter { $0.type == "new" }.count == 2)
        #expect(Set(split.map(\.id)).count == 2)
    }

    @Test("an update when the score improves; change-rule scores come from the cells")
    func updates() {
        var frames = [[TemporalThreshold.TrackedRegion]](repeating: [Self.region(id: 1, box: [0, 0, 20, 20], score: -4)], count: 6)
        frames += [[Self.region(id: 1, box: [0, 0, 30, 30], score: -2)]]  // confidence 2 instead of 4: more anomalous
        let lines = Self.records(frames)
        #expect(lines.map(\.type) == ["new", "update", "end"])
        #expect(lines[1].top_score > lines[0].top_score && lines[1].box == [0, 0, 30, 30])

        var tracker = EventTracker(rules: .default, camera: "c", tau: 6)
        var changes: [EventTracker.Change] = []
        for i in 0..<5 {
            changes += tracker.observe([Self.region(id: 1, box: [0, 0, 20, 20], cells: [1, 2])], alarmScores: [9, 4.5, 5.5],
                                       time: Double(i) * 0.04)
        }
        guard case let .new(_, record)? = changes.last else {
            Issue.record("no event started: \(changes)")
            return
        }
        #expect(abs(record.top_score - 5.5) < 1e-6)  // the largest score among the region's cells, not cell 0's
    }

    @Test("the rules are checked")
    func rules() {
        var rules = EventRules()
        rules.minFrames = 0
        #expect(throws: JobError.self) { try rules.validate() }
        rules = EventRules()
        rules.endAfter = -1
        #expect(throws: JobError.self) { try rules.validate() }
    }
}
