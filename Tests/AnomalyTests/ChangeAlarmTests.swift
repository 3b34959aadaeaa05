import Testing
@testable import Anomaly

@Suite("The change alarm")
struct ChangeAlarmTests {
    /// A 4 x 3 grid whose every cell is drivable; the settings with a short warm-up and no novelty term.
    static func settings() -> MethodSettings {
        var s = MethodSettings()
        s.warmUpFrames = 3
        s.noveltyWeight = 0
        s.minimumAlarmCells = 1
        s.alarmInterval = 0.08
        return s
    }

    static let w = 4, h = 3
    static func grid(_ value: Float, drop: [Int] = [], to low: Float = 0) -> [Float] {
        (0..<(w * h)).map { drop.contains($0) ? low : value }
    }

    @Test("a steady stream never alarms; a drop in confidence at one place alarms once it persists over 2 of 3 ticks")
    func dropPersists() {
        var alarm = ChangeAlarm(settings: Self.settings())
        let drivable = [Bool](repeating: true, count: Self.w * Self.h)
        let novelty = [Float](repeating: 0.5, count: Self.w * Self.h)
        var t = 0.0
        func step(_ confidence: [Float]) -> [Bool] {
            defer { t += 0.08 }
            return alarm.decide(time: t, cellConfidence: confidence, novelty: novelty, drivable: drivable,
                                gridWidth: Self.w, gridHeight: Self.h)
        }
        // 60 steady ticks: past the warm-up, and the running weight is down to 0.02.
        for _ in 0..<60 { #expect(!step(Self.grid(10)).contains(true)) }
        // Cell 5 drops from 10 to 4: with zero variance so far, its score is (10 - 4) / 0.5 = 12 > 4.25. The
        // first tick of the drop has no flagged tick before it. The second: mean 10 - 0.02 * 6 = 9.88,
        // variance 0.98 * 0.02 * 36 = 0.7056, score 5.88 / sqrt(0.7056 + 0.25) = 6.01: flagged, and persistent.
        #expect(!step(Self.grid(10, drop: [5], to: 4)).contains(true))
        let flagged = step(Self.grid(10, drop: [5], to: 4))
        #expect(flagged == (0..<12).map { $0 == 5 })
        #expect(alarm.lastScore.map { $0[0] } == 0)
    }

    @Test("frames between ticks keep the last decision; a missing novelty restarts the statistics")
    func ticks() {
        var alarm = ChangeAlarm(settings: Self.settings())
        let drivable = [Bool](repeating: true, count: Self.w * Self.h)
        let novelty = [Float](repeating: 0.5, count: Self.w * Self.h)
        var flags: [Bool] = []
        for i in 0..<8 {  // 25 fps: every second frame is a tick
            let confidence = i < 6 ? Self.grid(10) : Self.grid(10, drop: [0], to: 2)
            flags = alarm.decide(time: Double(i) * 0.04, cellConfidence: confidence, novelty: novelty,
                                 drivable: drivable, gridWidth: Self.w, gridHeight: Self.h)
        }
        // Ticks at frames 0, 2, 4, 6: three to warm up, the drop seen at tick 6 only: nothing persisted yet.
        #expect(!flags.contains(true))
        #expect(alarm.lastScore?[0] == 16)  // (10 - 2) / 0.5
        alarm.reset()
        #expect(alarm.lastScore?[0] == 16)  // reset keeps the inspection value; the next tick replaces it
        _ = alarm.decide(time: 1, cellConfidence: Self.grid(10), novelty: nil, drivable: drivable, gridWidth: Self.w,
                         gridHeight: Self.h)
        #expect(alarm.lastScore == nil)
    }

    @Test("the drivable area: road cells and what lies between them along rows and columns")
    func drivable() {
        // 5 x 3 classes; road = 0. Row 1 has road at both ends with a car (13) between: all of it drivable.
        let classes: [UInt8] = [10, 10, 10, 10, 10,
                                0, 13, 13, 0, 8,
                                0, 0, 0, 0, 8]
        let area = ChangeAlarm.drivable(classes: classes, roadClass: 0, width: 5, height: 3)
        #expect(area == [false, false, false, false, false,
                         true, true, true, true, false,
                         true, true, true, true, false])
    }

    @Test("regions smaller than the minimum are dropped, 4-connected")
    func small() {
        let mask = [true, false, false,
                    false, true, true,
                    false, false, false]
        #expect(BinaryMask.dropSmall(mask, width: 3, height: 3, minimum: 2) == [false, false, false, false, true, true,
                                                                                   false, false, false])
    }
}
