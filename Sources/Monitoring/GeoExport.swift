import Foundation
import Telemetry

/// A GeoJSON geometry (RFC 7946): a point `[lon, lat]` or a line of them.
public enum GeoGeometry: Codable, Sendable, Equatable {
    case point([Double])
    case lineString([[Double]])

    private enum CodingKeys: String, CodingKey { case type, coordinates }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .type) {
        case "Point": self = .point(try c.decode([Double].self, forKey: .coordinates))
        case "LineString": self = .lineString(try c.decode([[Double]].self, forKey: .coordinates))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unsupported geometry '\(other)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case let .point(p):
            try c.encode("Point", forKey: .type)
            try c.encode(p, forKey: .coordinates)
        case let .lineString(line):
            try c.encode("LineString", forKey: .type)
            try c.encode(line, forKey: .coordinates)
        }
    }
}

/// What a feature of roadwatch's GeoJSON says: an event (`kind: event`) or a drive (`kind: drive`). Paths are
/// relative to the batch output folder.
public struct GeoProperties: Codable, Sendable, Equatable {
    public var kind: String
    /// The batch input's key (its output name) and the input itself.
    public var key: String
    public var input: String?
    public var id: String?
    public var camera: String?
    /// Video seconds: the event's start, end, and its best view (where it is placed).
    public var start: Double?
    public var end: Double?
    public var time: Double?
    public var top_score: Double?
    public var frames: Int?
    public var snapshot: String?
    public var clip: String?
    /// The annotated video; `video#t=time` opens it at the event.
    public var video: String?
    public var location: EventLocation?
    /// The drive's GPS source and its fixes.
    public var source: String?
    public var fixes: Int?

    public init(kind: String, key: String) {
        self.kind = kind
        self.key = key
    }
}

/// One GeoJSON feature; `geometry` is null for an event the track does not cover.
public struct GeoFeature: Codable, Sendable, Equatable {
    public var type = "Feature"
    public var geometry: GeoGeometry?
    public var properties: GeoProperties

    public init(geometry: GeoGeometry?, properties: GeoProperties) {
        self.geometry = geometry
        self.properties = properties
    }

    private enum CodingKeys: String, CodingKey { case type, geometry, properties }

    // `geometry` is a required member (null allowed): encoded explicitly rather than omitted.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        if let geometry { try c.encode(geometry, forKey: .geometry) } else { try c.encodeNil(forKey: .geometry) }
        try c.encode(properties, forKey: .properties)
    }
}

/// A GeoJSON FeatureCollection (RFC 7946) of events and drives.
public struct GeoFeatureCollection: Codable, Sendable, Equatable {
    public var type = "FeatureCollection"
    public var features: [GeoFeature]

    public init(features: [GeoFeature]) { self.features = features }
}

/// Turns a batch input's events and GPS track into GeoJSON and GPX, and merges those of a whole batch.
public enum GeoExport {
    /// Lines kept in a drive: enough for any map of one recording, small enough for a page.
    static let maxDrivePoints = 2000

    /// One input's features: its drive (when it has a track) and an event per id, in the state of its last line.
    public static func features(records: [EventRecord], track: GPSTrack?, key: String, input: String,
                                evidencePrefix: String?) -> [GeoFeature] {
        var features: [GeoFeature] = []
        if let track, !track.fixes.isEmpty {
            let step = max(1, (track.fixes.count + maxDrivePoints - 1) / maxDrivePoints)
            var points = stride(from: 0, to: track.fixes.count, by: step).map { track.fixes[$0] }
            if let last = track.fixes.last, points.last != last { points.append(last) }
            var drive = GeoProperties(kind: "drive", key: key)
            drive.input = input
            drive.source = track.source.rawValue
            drive.fixes = track.fixes.count
            drive.start = track.timeSpan?.lowerBound
            drive.end = track.timeSpan?.upperBound
            drive.video = key + ".mp4"
            features.append(GeoFeature(geometry: .lineString(points.map { [$0.longitude, $0.latitude] }), properties: drive))
        }
        var last: [String: EventRecord] = [:]
        var order: [String] = []
        for record in records where !record.id.isEmpty {
            if last[record.id] == nil { order.append(record.id) }
            last[record.id] = record
        }
        for id in order {
            guard let record = last[id] else { continue }
            var p = GeoProperties(kind: "event", key: key)
            p.input = input
            p.id = record.id
            p.camera = record.camera
            p.start = record.start
            p.end = record.end
            p.time = record.bestTime ?? record.start
            p.top_score = record.top_score
            p.frames = record.frames
            p.snapshot = record.snapshot.map { (evidencePrefix ?? "") + $0 }
            p.clip = record.clip.map { (evidencePrefix ?? "") + $0 }
            p.video = key + ".mp4"
            p.location = record.location
            features.append(GeoFeature(geometry: record.location.map { .point([$0.lon, $0.lat]) }, properties: p))
        }
        return features
    }

    /// GPX 1.1: a waypoint per located event (time, name, score, a link to its snapshot), a track per drive.
    public static func gpx(_ collection: GeoFeatureCollection) -> String {
        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <gpx version="1.1" creator="roadwatch" xmlns="http://www.topografix.com/GPX/1/1">

            """
        // GPX wants every waypoint before any track.
        for feature in collection.features {
            guard feature.properties.kind == "event", case let .point(c)? = feature.geometry, c.count >= 2 else { continue }
            let p = feature.properties
            out += "  <wpt lat=\"\(c[1])\" lon=\"\(c[0])\">\n"
            if let alt = p.location?.alt { out += "    <ele>\(alt)</ele>\n" }
            if let utc = p.location?.utc { out += "    <time>\(xml(utc))</time>\n" }
            out += "    <name>\(xml(p.id ?? ""))</name>\n"
            out += "    <desc>\(xml(String(format: "score %.3f at %.2f s of ", p.top_score ?? 0, p.time ?? 0) + p.key))</desc>\n"
            if let snapshot = p.snapshot { out += "    <link href=\"\(xml(snapshot))\"><text>snapshot</text></link>\n" }
            out += "  </wpt>\n"
        }
        for feature in collection.features {
            guard feature.properties.kind == "drive", case let .lineString(line)? = feature.geometry else { continue }
            out += "  <trk>\n    <name>\(xml(feature.properties.key))</name>\n    <trkseg>\n"
            for c in line where c.count >= 2 { out += "      <trkpt lat=\"\(c[1])\" lon=\"\(c[0])\"/>\n" }
            out += "    </trkseg>\n  </trk>\n"
        }
        return out + "</gpx>\n"
    }

    /// Writes `stem.geojson` and `stem.gpx` (atomically, so a reader never sees half a file).
    public static func write(_ collection: GeoFeatureCollection, stem: String) throws(JobError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            try encoder.encode(collection).write(to: URL(fileURLWithPath: stem + ".geojson"), options: .atomic)
            try Data(gpx(collection).utf8).write(to: URL(fileURLWithPath: stem + ".gpx"), options: .atomic)
        } catch {
            throw JobError("cannot write '\(stem).geojson' or '.gpx': \(error.localizedDescription)")
        }
    }

    /// Merges every finished input's `KEY.events.geojson` under `folder` into `folder/events.geojson` and
    /// `folder/events.gpx`; returns the merged collection.
    @discardableResult
    public static func merge(folder: String) throws(JobError) -> GeoFeatureCollection {
        let root = URL(fileURLWithPath: folder).standardizedFileURL
        var files: [String] = []
        for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) ?? .init() {
            let path = url.standardizedFileURL.path
            guard path.hasSuffix(".events.geojson") else { continue }
            // Only inputs whose done-marker exists are finished.
            let stem = String(path.dropLast(".events.geojson".count))
            if FileManager.default.fileExists(atPath: stem + ".done.json") { files.append(path) }
        }
        var features: [GeoFeature] = []
        for path in files.sorted() {
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                features += try JSONDecoder().decode(GeoFeatureCollection.self, from: data).features
            } catch {
                throw JobError("cannot read '\(path)': \(error)")
            }
        }
        let merged = GeoFeatureCollection(features: features)
        try write(merged, stem: root.path + "/events")
        return merged
    }

    static func xml(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
