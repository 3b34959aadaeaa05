import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Monitoring
import Telemetry
import Testing

@Suite("GeoJSON, GPX and the report page from located events")
struct GeoExportTests {
    /// A straight drive north-east over 10 s, one fix a second, and two events: one on it, one after it.
    static let track = GPSTrack(fixes: (0...10).map {
        GPSFix(time: Double($0), latitude: 48 + Double($0) * 1e-4, longitude: 11 + Double($0) * 2e-4, altitude: 500,
               speed2D: 12, fix: .threeD)
    }, source: .gpmf)

    static func records() -> [EventRecord] {
        let locator = EventLocator(track: track)
        var a = EventRecord(type: "new", id: "k-1000-1", camera: "k", start: 1, end: nil, top_score: 3, box: [0, 0, 4, 4],
                            area: 16, snapshot: "snapshots/k-1000-1.jpg", clip: nil, frames: 5, bestTime: 2.5)
        a.location = locator.location(at: 2.5)
        var aEnd = a
        aEnd.type = "end"
        aEnd.end = 4
        aEnd.top_score = 7
        var b = EventRecord(type: "new", id: "k-12000-2", camera: "k", start: 12, end: nil, top_score: 9, box: [0, 0, 4, 4],
                            area: 16, snapshot: nil, clip: nil, frames: 5, bestTime: 12)
        b.location = locator.location(at: 12)
        return [a, aEnd, b]
    }

    @Test("a located event is a Point [lon, lat], an event off the track has null geometry, the drive a LineString")
    func features() throws {
        let features = GeoExport.features(records: Self.records(), track: Self.track, key: "k", input: "/in/k.mp4",
                                          evidencePrefix: "k.evidence/")
        #expect(features.count == 3)
        #expect(features[0].geometry == .lineString(Self.track.fixes.map { [$0.longitude, $0.latitude] }))
        #expect(features[1].geometry == .point([11 + 2.5 * 2e-4, 48 + 2.5 * 1e-4]))
        #expect(features[1].properties.top_score == 7, "the event in the state of its last line")
        #expect(features[1].properties.snapshot == "k.evidence/snapshots/k-1000-1.jpg")
        #expect(features[1].properties.location?.interpolated == true)
        #expect(abs((features[1].properties.location?.heading ?? 0) - 53.2) < 0.5, "north-east: atan2(2e-4 cos 48°, 1e-4) = 53.2°")
        #expect(features[2].geometry == nil && features[2].properties.location == nil)

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(GeoFeatureCollection(features: features))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["type"] as? String == "FeatureCollection")
        let list = try #require(object["features"] as? [[String: Any]])
        #expect(list[2].keys.contains("geometry") && list[2]["geometry"] is NSNull, "RFC 7946: geometry is null, not absent")
        #expect(try JSONDecoder().decode(GeoFeatureCollection.self, from: data) == GeoFeatureCollection(features: features))
    }

    @Test("GPX is well-formed: a waypoint per located event with its link, the drive as a track")
    func gpx() throws {
        let features = GeoExport.features(records: Self.records(), track: Self.track, key: "a&b", input: "x",
                                          evidencePrefix: "a&b.evidence/")
        let text = GeoExport.gpx(GeoFeatureCollection(features: features))
        let parser = XMLParser(data: Data(text.utf8))
        #expect(parser.parse(), "\(text)")
        #expect(text.components(separatedBy: "<wpt ").count == 2)
        #expect(text.components(separatedBy: "<trkpt ").count == 12)
        #expect(text.contains("<link href=\"a&amp;b.evidence/snapshots/k-1000-1.jpg\">"))
    }

    @Test("the page: a circle per located event, a row per event, the drive, a link into the video at the event")
    func page() {
        let features = GeoExport.features(records: Self.records(), track: Self.track, key: "k", input: "x", evidencePrefix: "k.evidence/")
        let html = ReportPage.html(GeoFeatureCollection(features: features))
        #expect(html.components(separatedBy: "<circle ").count == 2)
        #expect(html.components(separatedBy: "<tr id=\"ev-").count == 3)
        #expect(html.contains("<polyline class=\"drive\""))
        #expect(html.contains("href=\"k.mp4#t=2.50\""))
        #expect(!html.contains("http://") || !html.contains("src=\"http"), "nothing fetched from the network")
        // The top score first.
        let first = html.range(of: "k-12000-2")?.lowerBound, second = html.range(of: "<tr id=\"ev-k-1000-1")?.lowerBound
        #expect(first != nil && second != nil)
        if let first, let second { #expect(first < second) }
    }
}

@Suite("Finding an input's GPS for its events")
struct EventLocatorDiscoveryTests {
    @Test("a GPX sidecar is found beside the video, and --gps-offset moves it onto the video's clock")
    func sidecarWithOffset() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("locator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let gpx = """
            <?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
            <trkpt lat="48.0" lon="11.0"><time>2024-05-01T10:00:00Z</time></trkpt>
            <trkpt lat="48.001" lon="11.0"><time>2024-05-01T10:00:10Z</time></trkpt>
            </trkseg></trk></gpx>
            """
        try Data(gpx.utf8).write(to: folder.appendingPathComponent("drive.gpx"))
        try Data("not a video".utf8).write(to: folder.appendingPathComponent("drive.mp4"))
        let video = folder.appendingPathComponent("drive.mp4").path

        let (plain, found) = EventLocator.discover(videoPath: video)
        #expect(found.track?.source == .gpx && found.origin?.hasSuffix("drive.gpx") == true)
        #expect(abs((plain?.location(at: 5)?.lat ?? 0) - 48.0005) < 1e-12, "half way, interpolated")

        let (shifted, _) = EventLocator.discover(videoPath: video, offset: 5)
        let locator = try #require(shifted)
        #expect(locator.location(at: 4) == nil, "before the first fix: never extrapolated")
        #expect(locator.location(at: 5)?.lat == 48.0 && locator.location(at: 5)?.interpolated == false)
        #expect(locator.location(at: 5)?.utc == "2024-05-01T10:00:00.000Z")
        #expect(locator.location(at: 15)?.lat == 48.001)
        #expect(locator.location(at: 10)?.heading == 0, "due north")
    }
}
