import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads GPX sidecars: every `trkpt` with `lat`/`lon`, and its `ele`, `time`, `fix`, `hdop`/`pdop`, `speed`.
public enum GPX {
    /// The track in a GPX document, timed in seconds from its first point's `<time>`.
    ///
    /// Points without a `<time>` cannot be placed on the video and are left out; a document whose points have no
    /// time at all, that has no track points, or that is not well-formed XML is an error.
    public static func parse(_ data: Data, name: String = "GPX") throws -> GPSTrack {
        // Foundation's XMLParser on Linux traps on an element name that is not valid UTF-8 (it force-unwraps the
        // conversion), so invalid bytes become U+FFFD first; a damaged file must be an error, not a crash.
        let text = String(decoding: data, as: UTF8.self)
        let clean = withoutProcessingInstructions(text.utf8.elementsEqual(data) ? data : Data(text.utf8))
        let collector = Collector()
        let parser = XMLParser(data: clean)
        parser.delegate = collector
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        guard parser.parse() else {
            throw TelemetryError(file: name, problem: "not well-formed XML near line \(parser.lineNumber), column \(parser.columnNumber)")
        }
        // Foundation's parser on Linux may accept a document that simply stops; unclosed elements show it.
        guard collector.openElements == 0 else {
            throw TelemetryError(file: name, problem: "XML ends before its elements are closed (truncated?)")
        }
        if let problem = collector.problem { throw TelemetryError(file: name, problem: problem) }
        guard !collector.points.isEmpty else { throw TelemetryError(file: name, problem: "no <trkpt> points") }
        let timed = collector.points.compactMap { point -> (Date, GPSFix)? in
            guard let utc = point.utc else { return nil }
            return (utc, point)
        }
        guard let start = timed.map(\.0).min() else {
            throw TelemetryError(file: name, problem: "its \(collector.points.count) points have no <time>, so they cannot be placed on the video")
        }
        let fixes = timed.map { utc, point -> GPSFix in
            var fix = point
            fix.time = utc.timeIntervalSince(start)
            return fix
        }.filter { $0.isPlausible && $0.fix != .noFix }
        return GPSTrack(fixes: fixes, source: .gpx)
    }

    /// Every `<?…?>` replaced by a space. Foundation's parser on Linux reads a processing instruction's data with
    /// `strlen` and segfaults on one without data (`<?name?>`); GPX carries nothing in them. The XML declaration
    /// goes too, which is right for the UTF-8 text this parser is given.
    static func withoutProcessingInstructions(_ data: Data) -> Data {
        let bytes = [UInt8](data)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "<"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "?") else {
                result.append(bytes[i])
                i += 1
                continue
            }
            // Without a closing `?>` no later `<?` closes either: the rest stays as it is (and fails to parse).
            guard let close = bytes[(i + 2)...].indices.first(where: {
                $0 + 1 < bytes.count && bytes[$0] == UInt8(ascii: "?") && bytes[$0 + 1] == UInt8(ascii: ">")
            }) else {
                result += bytes[i...]
                break
            }
            result.append(UInt8(ascii: " "))
            i = close + 2
        }
        return Data(result)
    }

    /// Reads the GPX file at `path`.
    public static func read(path: String) throws -> GPSTrack {
        let data = try TelemetryError.naming(path) { try Data(contentsOf: URL(fileURLWithPath: path)) }
        return try parse(data, name: path)
    }

    /// Collects points as the parser walks the document; lives for one parse only.
    private final class Collector: NSObject, XMLParserDelegate {
        var points: [GPSFix] = []
        var problem: String?
        var openElements = 0
        private var current: GPSFix?
        private var text = ""

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes: [String: String] = [:]) {
            text = ""
            openElements += 1
            guard local(elementName) == "trkpt" else { return }
            guard let lat = attributes["lat"].flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }),
                  let lon = attributes["lon"].flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) else {
                problem = problem ?? "a <trkpt> near line \(parser.lineNumber) has no numeric lat/lon"
                current = nil
                return
            }
            current = GPSFix(time: 0, latitude: lat, longitude: lon)
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?) {
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            text = ""
            openElements -= 1
            // Edit a copy: `current?.x = f(current)` would read `current` while it is being modified.
            guard var point = current else { return }
            switch local(elementName) {
            case "ele": point.altitude = Double(value)
            case "time": point.utc = UTCTime.parseISO8601(value)
            case "speed": point.speed2D = Double(value)
            case "hdop": point.dop = Double(value) ?? point.dop
            case "pdop": point.dop = point.dop ?? Double(value)
            case "fix":
                switch value {
                case "none": point.fix = .noFix
                case "2d": point.fix = .twoD
                case "3d": point.fix = .threeD
                default: point.fix = .valid
                }
            case "trkpt":
                points.append(point)
                current = nil
                return
            default: break
            }
            current = point
        }

        /// The element name without a namespace prefix (when namespaces are not processed, `gpx:trkpt`).
        private func local(_ name: String) -> String {
            name.split(separator: ":").last.map(String.init) ?? name
        }
    }
}
