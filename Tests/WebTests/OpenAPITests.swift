import Foundation
import Hummingbird
import Monitoring
@testable import Service
import Testing
@testable import Web

/// The OpenAPI document (Sources/Web/Resources/openapi.json, as the binary embeds it) against the server itself.
@Suite("The OpenAPI document and the router")
struct OpenAPITests {
    static func document() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: OpenAPIDocument.json) as? [String: Any])
    }

    /// Every operation of the document as `METHOD /path`.
    static func documentedOperations() throws -> Set<String> {
        let paths = try #require(try document()["paths"] as? [String: [String: Any]])
        let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        return Set(paths.flatMap { path, item in item.keys.filter(methods.contains).map { "\($0.uppercased()) \(path)" } })
    }

    @Test("every route the server registers is documented with its method, and every documented operation is routed")
    func routesMatch() throws {
        let router = Router()
        WebServer.addRoutes(to: router) { _ in { _, _ in Response(status: .noContent) } }
        let routed = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
        let documented = try Self.documentedOperations()
        #expect(routed.subtracting(documented).isEmpty, "routed, not documented: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented, not routed: \(documented.subtracting(routed).sorted())")
        #expect(routed.count == Route.allCases.map(\.methods.count).reduce(0, +))
    }

    @Test("a path finds its route whatever the method; others find none")
    func matching() {
        #expect(Route.matching("/api/events/abc/clip.mp4") == .clip)
        #expect(Route.matching("/api/events/abc") == .event)
        #expect(Route.matching("/api/events") == .events)
        #expect(Route.matching("/") == .page)
        #expect(Route.matching("/cameras/a/latest.jpg") == .latestFrame)
        #expect(Route.matching("/api/events/abc/other") == nil)
        #expect(Route.matching("/nothing") == nil)
    }

    @Test("an event with every field set, and a camera, encode to exactly the document's schemas")
    func shapes() throws {
        let location = EventLocation(lat: 48.1, lon: 11.5, alt: 520, speed: 12.5, heading: 90, utc: "2026-12-07T12:00:00Z",
                                     fix: "threeD", source: "gpmf", interpolated: true, time: 3.5)
        let row = EventStore.Row(id: "e1", camera: "a", start: 100, end: 104, top_score: 7.5, box: [1, 2, 3, 4], area: 12,
                                 frames: 5, snapshot: "snapshots/e1.jpg", clip: "clips/e1.mp4", clip_parts: 2,
                                 end_reason: "interrupted", location: location)
        var status = CameraStatus(name: "a", state: .up)
        status.lastFrame = 1000.5
        status.lastError = "read timed out"
        let camera = CameraJSON(CameraReport(status: status, latencies: [0.1, 0.2]))
        let open = EventStore.Row(id: "e2", camera: "a", start: 100, top_score: 1, box: [1, 2, 3, 4], area: 12, frames: 1)
        for (value, schema, full) in [(try WebServer.body(row), "Event", true), (try WebServer.body(open), "Event", false),
                                      (try WebServer.body(camera), "Camera", true)] {
            let object = try #require(try JSONSerialization.jsonObject(with: value) as? [String: Any])
            let problems = try SchemaCheck(document: Self.document()).problems(object, ref: "#/components/schemas/\(schema)")
            #expect(problems.isEmpty, "\(schema): \(problems)")
            if full {
                // Every property the document names is one the server can send.
                let properties = try #require(try SchemaCheck(document: Self.document()).schema("#/components/schemas/\(schema)")["properties"] as? [String: Any])
                #expect(Set(properties.keys) == Set(object.keys), "\(schema): \(Set(properties.keys).symmetricDifference(object.keys))")
            }
        }
    }

    @Test("the events query: absent values take their defaults; a value that does not parse or is out of range is refused")
    func eventQuery() throws {
        func parse(_ query: String) -> EventQuery? {
            var parameters: [String: String] = [:]
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                parameters[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            return try? EventQuery.parse { parameters[$0] }.get()
        }
        #expect(parse("") == EventQuery())
        #expect(parse("camera=a&after=1.5&limit=1000") == EventQuery(camera: "a", after: 1.5, limit: 1000))
        for bad in ["limit=0", "limit=1001", "limit=x", "limit=", "limit=1.5", "after=x", "after=nan", "after=inf", "after="] {
            #expect(parse(bad) == nil, "\(bad)")
        }
    }
}

/// Just enough JSON Schema for the document's response schemas: `$ref`, `type`, `const`, `enum`, `properties`,
/// `required`, `additionalProperties: false`, `items`, `minimum`, `maximum`.
struct SchemaCheck {
    let document: [String: Any]

    func schema(_ ref: String) throws -> [String: Any] {
        var node: Any = document
        for key in ref.dropFirst(2).split(separator: "/") {
            node = try #require((node as? [String: Any])?[String(key)], "\(ref)")
        }
        return try #require(node as? [String: Any], "\(ref)")
    }

    func problems(_ value: Any, ref: String) throws -> [String] { try problems(value, schema: schema(ref), at: "$") }

    func problems(_ value: Any, schema given: [String: Any], at path: String) throws -> [String] {
        let schema = try (given["$ref"] as? String).map(self.schema) ?? given
        var found: [String] = []
        let boolean = (value as? NSNumber).map { ["c", "B"].contains(String(cString: $0.objCType)) } ?? false
        let number = boolean ? nil : (value as? NSNumber)?.doubleValue
        if let type = schema["type"] as? String {
            let fits = switch type {
            case "object": value is [String: Any]
            case "array": value is [Any]
            case "string": value is String
            case "boolean": boolean
            case "integer": number.map { $0 == $0.rounded() } ?? false
            case "number": number != nil
            default: false
            }
            if !fits { found.append("\(path): not \(type)") }
        }
        if let options = schema["enum"] as? [String], !options.contains(value as? String ?? "\u{0}") { found.append("\(path): not in \(options)") }
        if let minimum = schema["minimum"] as? Double, let number, number < minimum { found.append("\(path): below \(minimum)") }
        if let maximum = schema["maximum"] as? Double, let number, number > maximum { found.append("\(path): above \(maximum)") }
        if let object = value as? [String: Any] {
            let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
            for key in schema["required"] as? [String] ?? [] where object[key] == nil { found.append("\(path).\(key): missing") }
            for (key, item) in object {
                if let property = properties[key] {
                    found += try problems(item, schema: property, at: path + "." + key)
                } else if schema["additionalProperties"] as? Bool == false {
                    found.append("\(path).\(key): not in the schema")
                }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (i, item) in array.enumerated() { found += try problems(item, schema: items, at: "\(path)[\(i)]") }
        }
        return found
    }
}
