import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Telemetry
import Testing
import TestKit

/// The GoPro clip with a GPMF track (MIT, from gopro/gpmf-parser), and flags that flag every frame on it:
/// with the cluster rule and tau 100 every cluster's confidence is below tau, so events surely start.
enum GoProClip {
    static var path: String { Shared.path("data/gps/max-heromode.mp4") }
    static let everyFrameFlags = ["--alarm", "clusters", "--tau", "100", "--size", "256x128", "--quiet"]

    static func require() throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw GPSTestSkip("missing \(path)") }
        return path
    }

    /// Every fix ExifTool reads from the clip, in file order (its `[DocN]` sample documents only).
    static func exifToolFixes() throws -> [(lat: Double, lon: Double)] {
        guard let exiftool = RoadwatchBinary.which("exiftool") else { throw GPSTestSkip("exiftool is not installed") }
        let run = try RoadwatchBinary.runProgram(exiftool, ["-ee", "-n", "-a", "-G3", "-s", "-GPSLatitude", "-GPSLongitude", path])
        var lats: [Double] = [], lons: [Double] = []
        for line in run.stdout.split(separator: "\n") where line.hasPrefix("[Doc") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let value = Double(parts[1].trimmingCharacters(in: .whitespaces)) else { continue }
            if line.contains("GPSLatitude") { lats.append(value) } else if line.contains("GPSLongitude") { lons.append(value) }
        }
        #expect(lats.count == lons.count)
        return zip(lats, lons).map { ($0, $1) }
    }
}

struct GPSTestSkip: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The lines of an event list, and the same lines with `location` taken out (as text, keys sorted as written).
func listLines(_ path: String) throws -> [String] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
}

func withoutLocation(_ line: String) throws -> String {
    var object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    object["location"] = nil
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}

@Suite("GPS: probe, located events, GeoJSON/GPX, the report")
struct GPSCommandTests {
    @Test("probe names the GPMF track, its rate and span, as text and JSON")
    func probe() async throws {
        let clip = try GoProClip.require()
        let json = try await blocking { try RoadwatchBinary.run(["probe", clip, "--json"], timeout: 120) }
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let gps = try #require(object["gps"] as? [String: Any])
        #expect(gps["source"] as? String == "gpmf")
        #expect(gps["found"] as? Bool == true)
        let track = try #require(GPSSource.discover(videoPath: clip).track)
        #expect(gps["fixes"] as? Int == track.fixes.count)
        let rate = try #require(gps["rate"] as? Double)
        #expect(abs(rate - track.rate) < 0.001 && rate > 10 && rate < 25, "GoPro GPS5 is about 18 Hz, got \(rate)")
        #expect((gps["end"] as? Double ?? 0) > 9, "the clip is 10.5 s long")
        let text = try await blocking { try RoadwatchBinary.run(["probe", clip], timeout: 120) }
        #expect(text.stdout.contains("gps        gpmf, \(track.fixes.count) fixes at"), "\(text.stdout)")
    }

    @Test("run on the GoPro clip: every event line has the track's position at its time, ExifTool agrees; --no-gps gives the same lines without it")
    func runLocates() async throws {
        let clip = try GoProClip.require()
        let scratch = try ScratchDirectory("gps-run")
        for sub in ["with", "without"] {
            try FileManager.default.createDirectory(atPath: scratch.path(sub), withIntermediateDirectories: true)
        }
        let with = try await blocking {
            try RoadwatchBinary.run(["run", clip, "-o", scratch.path("with/out.mp4")] + GoProClip.everyFrameFlags, timeout: 900)
        }
        #expect(with.status == 0, "\(with.stderr)")
        let without = try await blocking {
            try RoadwatchBinary.run(["run", clip, "-o", scratch.path("without/out.mp4"), "--no-gps"] + GoProClip.everyFrameFlags,
                                    timeout: 900)
        }
        #expect(without.status == 0, "\(without.stderr)")
        let located = try listLines(scratch.path("with/out.event-list.jsonl"))
        let plain = try listLines(scratch.path("without/out.event-list.jsonl"))
        try #require(!located.isEmpty, "no events: \(with.stdout)")
        // The location is the only difference, and --no-gps writes none.
        #expect(try located.map(withoutLocation) == plain.map(withoutLocation))
        #expect(!plain.contains { $0.contains("location") })

        let track = try #require(GPSSource.discover(videoPath: clip).track)
        let exif = try GoProClip.exifToolFixes()
        #expect(exif.count == track.fixes.count, "ExifTool and roadwatch count the same fixes")
        for line in located {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let location = try #require(object["location"] as? [String: Any], "no location in \(line)")
            let time = try #require(location["time"] as? Double)
            let start = try #require(object["start"] as? Double)
            #expect(time >= start && time <= (object["end"] as? Double ?? .infinity))
            let expected = try #require(track.position(at: time))
            let lat = try #require(location["lat"] as? Double), lon = try #require(location["lon"] as? Double)
            // Equal but for the last bit: the numbers went through decimal text (JSONSerialization's parse is
            // not always correctly rounded), so 1e-9 degrees (0.1 mm) and 1e-9 m stand for equality.
            func same(_ a: Double?, _ b: Double?) -> Bool {
                guard let a, let b else { return a == nil && b == nil }
                return abs(a - b) < 1e-9
            }
            #expect(same(lat, expected.latitude) && same(lon, expected.longitude), "\(lat), \(lon) vs \(expected)")
            #expect(same(location["alt"] as? Double, expected.altitude))
            #expect(same(location["speed"] as? Double, expected.speed2D))
            #expect(location["fix"] as? String == expected.fix.rawValue)
            #expect(location["source"] as? String == "gpmf")
            #expect(location["interpolated"] as? Bool == expected.interpolated)
            // ExifTool's second opinion: the place lies on the segment between two consecutive ExifTool fixes.
            let onSegment = zip(exif, exif.dropFirst()).contains { a, b in
                let w = b.lat != a.lat ? (lat - a.lat) / (b.lat - a.lat) : (b.lon != a.lon ? (lon - a.lon) / (b.lon - a.lon) : 0)
                return w >= -1e-9 && w <= 1 + 1e-9 && abs(a.lat + (b.lat - a.lat) * w - lat) < 1e-6
                    && abs(a.lon + (b.lon - a.lon) * w - lon) < 1e-6
            }
            #expect(onSegment, "\(lat), \(lon) is not between two ExifTool fixes")
        }
    }

    @Test("a clip without GPS and a broken sidecar: one warning line, events without location, the same lines as --no-gps")
    func noGPS() async throws {
        let scratch = try ScratchDirectory("gps-none")
        try await Clips.cut("solidWhiteRight.mp4", skip: 0, frames: 40, to: scratch.path("in/clip.mp4"))
        try Data("<gpx><trk><trkseg><trkpt lat=\"oops\"".utf8).write(to: URL(fileURLWithPath: scratch.path("in/clip.gpx")))
        let flags = ["--alarm", "clusters", "--tau", "100", "--size", "256x128", "--quiet"]
        let a = try await blocking { try RoadwatchBinary.run(["run", scratch.path("in/clip.mp4"), "-o", scratch.path("x.mp4")] + flags, timeout: 600) }
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stderrLines.contains { $0.hasPrefix("roadwatch: warning: gps: ") && $0.contains("clip.gpx") }, "\(a.stderr)")
        try FileManager.default.moveItem(atPath: scratch.path("x.event-list.jsonl"), toPath: scratch.path("first.jsonl"))
        let b = try await blocking {
            try RoadwatchBinary.run(["run", scratch.path("in/clip.mp4"), "-o", scratch.path("x.mp4"), "--no-gps"] + flags, timeout: 600)
        }
        #expect(b.status == 0, "\(b.stderr)")
        let first = try Data(contentsOf: URL(fileURLWithPath: scratch.path("first.jsonl")))
        let second = try Data(contentsOf: URL(fileURLWithPath: scratch.path("x.event-list.jsonl")))
        #expect(!first.isEmpty)
        #expect(first == second, "byte for byte")
        #expect(!String(decoding: first, as: UTF8.self).contains("location"))
    }

    @Test("batch: per-input and merged GeoJSON and GPX that parse, located Points, the drive; --report renders in Chromium")
    func batchGeoAndReport() async throws {
        let clip = try GoProClip.require()
        let scratch = try ScratchDirectory("gps-batch")
        try FileManager.default.createDirectory(atPath: scratch.path("in"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: clip, toPath: scratch.path("in/gopro.mp4"))
        try await Clips.cut("solidYellowLeft.mp4", skip: 0, frames: 30, to: scratch.path("in/plain.mp4"))
        let out = scratch.path("out")
        let batch = try await blocking {
            try RoadwatchBinary.run(["batch", scratch.path("in"), "--out", out, "--snapshots"] + GoProClip.everyFrameFlags, timeout: 1200)
        }
        #expect(batch.status == 0, "\(batch.stderr)")
        for stem in [out + "/gopro.events", out + "/plain.events", out + "/events"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: stem + ".geojson"))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(object["type"] as? String == "FeatureCollection")
            let features = try #require(object["features"] as? [[String: Any]])
            for feature in features {
                #expect(feature["type"] as? String == "Feature")
                #expect(feature.keys.contains("geometry") && feature["properties"] is [String: Any])
            }
            let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: stem + ".gpx")))
            #expect(parser.parse(), "\(stem).gpx is not well-formed XML: \(String(describing: parser.parserError))")
        }
        let gopro = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/gopro.events.geojson"))) as? [String: Any])
        let features = try #require(gopro["features"] as? [[String: Any]])
        let geometries = features.compactMap { $0["geometry"] as? [String: Any] }
        let line = try #require(geometries.first { $0["type"] as? String == "LineString" })
        #expect((line["coordinates"] as? [[Double]])?.count ?? 0 > 100)
        let points = geometries.filter { $0["type"] as? String == "Point" }
        #expect(!points.isEmpty)
        for point in points {
            let c = try #require(point["coordinates"] as? [Double])
            #expect(c.count == 2 && abs(c[1] - 33.126) < 0.01, "[lon, lat] order: \(c)")
        }
        let plain = try String(contentsOfFile: out + "/plain.events.geojson", encoding: .utf8)
        #expect(!plain.contains("LineString") && !plain.contains("Point"))
        let gpx = try String(contentsOfFile: out + "/events.gpx", encoding: .utf8)
        #expect(gpx.components(separatedBy: "<wpt ").count - 1 == points.count)
        #expect(gpx.contains("<link href=\"gopro.evidence/snapshots/"))

        let report = try await blocking { try RoadwatchBinary.run(["batch", "--report", out], timeout: 120) }
        #expect(report.status == 0, "\(report.stderr)")
        guard let chromium = RoadwatchBinary.which("chromium") ?? RoadwatchBinary.which("chromium-browser") else {
            throw GPSTestSkip("chromium is not installed")
        }
        let dom = try await blocking {
            try RoadwatchBinary.runProgram(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                                                      "file://" + out + "/report.html"], timeout: 120)
        }
        #expect(dom.status == 0, "\(dom.stderr)")
        let merged = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/events.geojson"))) as? [String: Any])
        let events = (merged["features"] as? [[String: Any]] ?? []).filter { ($0["properties"] as? [String: Any])?["kind"] as? String == "event" }.count
        #expect(events > points.count, "the plain clip's events are in the table too")
        #expect(dom.stdout.components(separatedBy: "<circle ").count - 1 == points.count)
        #expect(dom.stdout.components(separatedBy: "<tr id=\"ev-").count - 1 == events)
        #expect(dom.stdout.contains("<polyline class=\"drive\""))
    }

    @Test("watch: a camera with a fixed location puts it on every event line and in the event database (source fixed)")
    func watchFixedLocation() async throws {
        let scratch = try ScratchDirectory("gps-watch")
        try await Clips.cut("solidWhiteRight.mp4", skip: 0, frames: 40, to: scratch.path("cam.mp4"))
        let output = scratch.path("out")
        let port = try closedLoopbackPort()
        try """
            output: \(output)
            http: {listen: 127.0.0.1:\(port)}
            defaults:
              size: 256x128
              realtime: false
              alarm: clusters
              tau: 100
            cameras:
              bridge:
                input: \(scratch.path("cam.mp4"))
                location: [51.50722, -0.1275]
            """.write(toFile: scratch.path("watch.yaml"), atomically: true, encoding: .utf8)
        let run = try await blocking { try RoadwatchBinary.run(["watch", scratch.path("watch.yaml")], timeout: 600) }
        #expect(run.status == 0, "\(run.stderr)")
        let lines = try eventLines(output + "/bridge/events.jsonl")
        try #require(!lines.isEmpty, "no events: \(run.stderr)")
        for line in lines {
            let location = try #require(line["location"] as? [String: Any])
            #expect(location["lat"] as? Double == 51.50722 && location["lon"] as? Double == -0.1275)
            #expect(location["source"] as? String == "fixed")
        }
        guard let sqlite = RoadwatchBinary.which("sqlite3") else { return }
        let rows = try RoadwatchBinary.runProgram(sqlite, [output + "/events.sqlite", "SELECT location FROM events"])
        #expect(rows.status == 0 && !rows.stdout.isEmpty, "\(rows.stderr)")
        for row in rows.stdout.split(separator: "\n") {
            #expect(row.contains("\"lat\":51.50722") && row.contains("\"source\":\"fixed\""), "\(row)")
        }
    }

    @Test("a corrupt GPS track (every GPS5 size in the GoPro clip overwritten): one warning line, the video processed, no locations")
    func corruptTrack() async throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: try GoProClip.require()))
        var damaged = 0
        var from = data.startIndex
        while let found = data.range(of: Data("GPS5".utf8), in: from..<data.endIndex) {
            // The 4 bytes after a GPMF key are its type, size and repeat: 0xFF claims far more than the sample holds.
            data.replaceSubrange(found.upperBound..<(found.upperBound + 4), with: [0xFF, 0xFF, 0xFF, 0xFF])
            damaged += 1
            from = found.upperBound + 4
        }
        try #require(damaged > 0)
        let scratch = try ScratchDirectory("gps-corrupt")
        try data.write(to: URL(fileURLWithPath: scratch.path("bad.mp4")))
        let run = try await blocking {
            try RoadwatchBinary.run(["run", scratch.path("bad.mp4"), "-o", scratch.path("out.mp4")] + GoProClip.everyFrameFlags,
                                    timeout: 900)
        }
        #expect(run.status == 0, "\(run.stderr)")
        let warnings = run.stderrLines.filter { $0.hasPrefix("roadwatch: warning: gps: ") }
        #expect(warnings.count == 1 && warnings.first?.contains("could not be read") == true, "\(run.stderr)")
        let lines = try listLines(scratch.path("out.event-list.jsonl"))
        #expect(!lines.isEmpty && !lines.contains { $0.contains("location") })
    }
}
