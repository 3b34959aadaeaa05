import Anomaly
import Testing

@Suite("Ignore masks: polygons in normalized coordinates")
struct IgnoreMaskTests {
    @Test("the bonnet polygon covers the bottom 15% and nothing else")
    func bonnet() throws {
        let mask = try IgnoreMask(parsing: ["0,0.85,1,0.85,1,1,0,1"])
        let raster = mask.raster(width: 100, height: 100)
        for y in 0..<100 {
            let row = raster[(y * 100)..<(y * 100 + 100)]
            #expect(row.allSatisfy { $0 == (y >= 85) }, "row \(y)")
        }
    }

    @Test("a triangle: inside and outside by the even-odd rule; two polygons add up")
    func shapes() throws {
        let triangle = try IgnoreMask(parsing: ["0.5,0,1,1,0,1"])
        #expect(triangle.contains(x: 0.5, y: 0.9))
        #expect(!triangle.contains(x: 0.1, y: 0.1))
        #expect(!triangle.contains(x: 0.9, y: 0.5))
        let two = try IgnoreMask(parsing: ["0,0,0.2,0,0.2,0.2,0,0.2", "0.8,0.8,1,0.8,1,1,0.8,1"])
        #expect(two.raster(width: 10, height: 10).filter { $0 }.count == 8)
    }

    @Test("bad polygons are refused with what is wrong", arguments: [
        ("0,0,1,1", "three"), ("0,0,1,x,1,1", "'x' is not a number"), ("0,0,1.5,0,1,1", "outside 0...1"),
        ("0,0,1,0,1", "odd count"),
    ])
    func refused(text: String, says: String) {
        do {
            _ = try IgnoreMask(parsing: [text])
            Issue.record("'\(text)' was accepted")
        } catch {
            #expect(error.description.contains(says), "\(error.description)")
        }
    }
}
