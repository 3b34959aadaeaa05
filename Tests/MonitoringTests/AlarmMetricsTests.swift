import Testing
import Anomaly
@testable import Monitoring

@Suite("Alarm metrics")
struct AlarmMetricsTests {
    /// A 40 x 20 frame: labels with an object (2) in the 4 x 4 square at (10, 5), void (1) in column 0.
    static let width = 40, height = 20
    static func labels() -> [UInt8] {
        var l = [UInt8](repeating: 0, count: width * height)
        for y in 5..<9 { for x in 10..<14 { l[y * width + x] = 2 } }
        for y in 0..<height { l[y * width] = 1 }
        return l
    }
    static func flagged(_ boxes: [(Int, Int, Int, Int)]) -> [Bool] {
        var m = [Bool](repeating: false, count: width * height)
        for (x0, y0, w, h) in boxes { for y in y0..<(y0 + h) { for x in x0..<(x0 + w) { m[y * width + x] = true } } }
        return m
    }

    @Test("hits, clean and stray alarms, first hit and pixel counts on hand-made frames")
    func handMade() {
        var a = AlarmMetrics()
        // Frame 0: clean, nothing flagged. Frame 1: clean, one pixel flagged: a clean alarm and a false positive.
        a.add(frame: 0, flagged: Self.flagged([]), labels: nil, width: Self.width, height: Self.height)
        a.add(frame: 1, flagged: Self.flagged([(30, 15, 1, 1)]), labels: nil, width: Self.width, height: Self.height)
        // Frame 2: the object appears; a region 8 px right of it (x = 21) touches the grown object: a hit.
        a.add(frame: 2, flagged: Self.flagged([(21, 6, 2, 2)]), labels: Self.labels(), width: Self.width, height: Self.height)
        // Frame 3: 9 px away (x = 22) touches nothing: a stray alarm, no hit.
        a.add(frame: 3, flagged: Self.flagged([(22, 6, 2, 2)]), labels: Self.labels(), width: Self.width, height: Self.height)
        // Frame 4: the object flagged exactly plus a void pixel (not counted) and a far region: hit and stray.
        a.add(frame: 4, flagged: Self.flagged([(10, 5, 4, 4), (0, 0, 1, 1), (35, 15, 2, 2)]), labels: Self.labels(),
              width: Self.width, height: Self.height)
        #expect(a.frames == 5 && a.cleanFrames == 2 && a.objectFrames == 3)
        #expect(a.cleanAlarms == 1 && a.hits == 2 && a.strayAlarms == 2)
        #expect(a.hitRate == 2.0 / 3 && a.cleanAlarmRate == 0.5 && a.strayAlarmRate == 2.0 / 3)
        #expect(a.firstObjectFrame == 2 && a.firstHitDelay == 0)
        // Pixels: TP 16 (frame 4); FP 1 (frame 1) + 4 + 4 (frames 2, 3) + 4 (frame 4's far region); FN 16 + 16.
        #expect(a.truePositives == 16 && a.falsePositives == 13 && a.falseNegatives == 32)
        #expect(abs(a.f1 - 2 * (16.0 / 29) * (16.0 / 48) / (16.0 / 29 + 16.0 / 48)) < 1e-12)
    }

    @Test("a first hit after the first appearance is counted in frames; never hit is nil")
    func delay() {
        var a = AlarmMetrics()
        a.add(frame: 10, flagged: Self.flagged([]), labels: Self.labels(), width: Self.width, height: Self.height)
        #expect(a.firstHitDelay == nil && a.hitRate == 0)
        a.add(frame: 14, flagged: Self.flagged([(12, 6, 1, 1)]), labels: Self.labels(), width: Self.width, height: Self.height)
        #expect(a.firstHitDelay == 4)
    }

    @Test("growing a mask by r pixels covers the (2r+1) square around each pixel and no more")
    func grow() {
        var m = [Bool](repeating: false, count: 11 * 11)
        m[5 * 11 + 5] = true
        let g = BinaryMask.grow(m, width: 11, height: 11, by: 2)
        for y in 0..<11 { for x in 0..<11 { #expect(g[y * 11 + x] == (abs(x - 5) <= 2 && abs(y - 5) <= 2)) } }
    }
}
