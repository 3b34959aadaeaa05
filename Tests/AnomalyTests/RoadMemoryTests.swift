import Testing
@testable import Anomaly

/// The memory of normal road and the tracker on synthetic streams: unit vectors near a few "road" directions
/// with noise, and an "object" along a direction the road never takes.
@Suite("The road memory and the obstacle tracker")
struct RoadMemoryTests {
    static let d = 16, gw = 12, gh = 6

    /// A frame: every cell near one of three road directions (which one depends on the cell and the time, as
    /// the road's look drifts), `object` cells along the last axis.
    static func frame(_ t: Int, object: Set<Int> = [], random: inout SeededGenerator) -> PointSet {
        var values = [Float](repeating: 0, count: gw * gh * d)
        for i in 0..<(gw * gh) {
            var v = [Float](repeating: 0, count: d)
            if object.contains(i) {
                v[d - 1] = 1
            } else {
                v[(i + t / 50) % 3] = 1
            }
            for c in 0..<d { v[c] += Float(random.unit() - 0.5) * 0.2 }
            let norm = v.map { $0 * $0 }.reduce(0, +).squareRoot()
            for c in 0..<d { values[i * d + c] = v[c] / norm }
        }
        return PointSet(values: values, count: gw * gh, dimension: d)
    }

    static let everywhere = [Bool](repeating: true, count: gw * gh)

    @Test("road stays near 1, an object is novel, and stays novel while it stays (it never enters the memory)")
    func objectStaysNovel() {
        var memory = RoadMemory(settings: RoadMemory.Settings(capacity: 256, insertPerTick: 16, warmUp: 1, commitDelay: 1),
                                interval: 0.1)
        var random = SeededGenerator(seed: 1)
        let object: Set<Int> = [2 * Self.gw + 5, 2 * Self.gw + 6, 3 * Self.gw + 5, 3 * Self.gw + 6]
        var objectNovelty: [Float] = []
        var roadNovelty: [Float] = []
        for t in 0..<300 {
            let time = Double(t) * 0.1
            let present = t >= 100 ? object : []
            let reading = memory.step(Self.frame(t, object: present, random: &random), drivable: Self.everywhere,
                                      gridWidth: Self.gw, gridHeight: Self.gh, time: time)
            #expect(reading.tick)
            if t < 10 { #expect(reading.novelty == nil, "warming up at \(time) s") }
            guard let novelty = reading.novelty, t >= 20 else { continue }
            let margin = RoadMemory.sideMargin(gridWidth: Self.gw)
            for i in 0..<(Self.gw * Self.gh) where i % Self.gw >= margin && i % Self.gw < Self.gw - margin {
                if present.contains(i) { objectNovelty.append(novelty[i]) } else if t < 100 { roadNovelty.append(novelty[i]) }
            }
        }
        let roadMedian = roadNovelty.sorted()[roadNovelty.count / 2]
        #expect(roadMedian < 1.2, "road novelty median \(roadMedian)")
        // 20 s in view, and the object is as novel at the end as at the start: the conservative update held.
        let first = objectNovelty.prefix(16).min()!, last = objectNovelty.suffix(16).min()!
        #expect(first > 5 && last > 5, "object novelty \(first) at first, \(last) at the end")
        #expect(memory.count <= 256)
    }

    @Test("the same stream gives the same readings")
    func deterministic() {
        func run() -> [[Float]?] {
            var memory = RoadMemory(settings: RoadMemory.Settings(capacity: 64), interval: 0.1)
            var random = SeededGenerator(seed: 2)
            return (0..<60).map { t in
                memory.step(Self.frame(t, random: &random), drivable: Self.everywhere, gridWidth: Self.gw,
                            gridHeight: Self.gh, time: Double(t) * 0.1).novelty
            }
        }
        #expect(run() == run())
    }

    @Test("the tracker: a blob seen on two ticks starts a track, the track follows weaker cells as it moves, and ends after the fade")
    func tracker() {
        var tracker = ObstacleTracker(settings: ObstacleTracker.Settings(threshold: 3, hold: 2, minimumCells: 2, fade: 0.5),
                                      interval: 0.1)
        func grid(_ cells: [Int: Float]) -> [Float] {
            var g = [Float](repeating: 1, count: Self.gw * Self.gh)
            for (i, v) in cells { g[i] = v }
            return g
        }
        let a = 2 * Self.gw + 5, b = a + 1
        // One tick alone is a flicker.
        #expect(!tracker.decide(time: 0, novelty: grid([a: 4, b: 4]), gridWidth: Self.gw, gridHeight: Self.gh).contains(true))
        let second = tracker.decide(time: 0.1, novelty: grid([a: 4, b: 4]), gridWidth: Self.gw, gridHeight: Self.gh)
        #expect(second[a] && second[b] && second.filter { $0 }.count == 2)
        // It slides down a row and weakens below the start threshold: held.
        let held = tracker.decide(time: 0.2, novelty: grid([a + Self.gw: 2.5, b + Self.gw: 2.5]), gridWidth: Self.gw, gridHeight: Self.gh)
        #expect(held[a + Self.gw] && held[b + Self.gw] && !held[a])
        // The same weak cells elsewhere, away from any track, start nothing.
        let far = 5 * Self.gw + 10
        #expect(!tracker.decide(time: 0.3, novelty: grid([far: 2.5, far + 1: 2.5]), gridWidth: Self.gw, gridHeight: Self.gh).contains(true))
        #expect(tracker.activeTracks == 1)
        // Unseen past the fade: gone.
        _ = tracker.decide(time: 0.9, novelty: grid([:]), gridWidth: Self.gw, gridHeight: Self.gh)
        #expect(tracker.activeTracks == 0)
    }
}

/// Settings named by their JSON keys (`--set`, the watch YAML): values land, bad ones are one line, never a trap.
@Suite("Method settings by key")
struct SettingsOverrideTests {
    @Test("a value lands; an unknown key, a wrong type and an empty cluster list are refused")
    func overrides() throws {
        let s = try MethodSettings.overriding(.default, with: ["novelty_threshold=3.5", "alarm=memory", "cluster_counts=[4,8]"])
        #expect(s.noveltyThreshold == 3.5 && s.alarm == .memory && s.clusterCounts == [4, 8])
        for bad in ["nope=1", "cluster_counts=[]", "tau=abc", "memory_capacity=3", "novelty_hold=9", "seed=-1", "tau"] {
            #expect(throws: SettingsError.self, "\(bad)") { try MethodSettings.overriding(.default, with: [bad]) }
        }
    }
}
