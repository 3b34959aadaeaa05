import Foundation
import Monitoring
import Service
import Testing

@Suite("roadwatch watch: a camera's fixed location")
struct CameraLocationTests {
    @Test("location: [lat, lon] is read per camera and places every event of that camera (source fixed)")
    func parsed() throws {
        let text = """
            output: o
            cameras:
              bridge:
                input: a.mp4
                location: [51.50722, -0.1275]
              moving:
                input: b.mp4
            """
        let config = try WatchConfig.parse(text, path: "w.yaml", environment: [:])
        let bridge = try #require(config.cameras[0].location)
        #expect(bridge.latitude == 51.50722 && bridge.longitude == -0.1275)
        #expect(config.cameras[1].location == nil)
        let place = try #require(EventLocator(latitude: bridge.latitude, longitude: bridge.longitude).location(at: 1.8e9))
        #expect(place.lat == 51.50722 && place.lon == -0.1275 && place.source == "fixed" && !place.interpolated)
    }

    @Test("a location that is not two numbers in range is refused in one line", arguments: [
        ("[51.5]", "cameras.a.location: expected [latitude, longitude]"),
        ("[91, 0]", "cameras.a.location[0]"),
        ("[0, 200]", "cameras.a.location[1]"),
        ("here", "cameras.a.location: expected [latitude, longitude]"),
    ])
    func refused(value: String, says: String) {
        let text = "output: o\ncameras:\n  a:\n    input: x.mp4\n    location: \(value)\n"
        do {
            _ = try WatchConfig.parse(text, path: "w.yaml", environment: [:])
            Issue.record("accepted: \(value)")
        } catch {
            #expect(error.description.contains(says), "\(error.description)")
        }
    }
}
