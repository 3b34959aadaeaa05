import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What a `Range` header asks of a file of a known size (RFC 9110, 14.2): one satisfiable range (206), no
/// satisfiable range (416), or the whole file (200: no header, a unit other than bytes, a header that does
/// not parse, or several ranges, which the server may answer with the whole representation).
enum RangeRequest: Equatable {
    case whole
    case part(first: Int, last: Int)
    case unsatisfiable

    /// Digits as a count that saturates instead of trapping (a 40-digit offset is just past every file).
    private static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        var value = 0
        for digit in text.utf8 {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int(digit - 48))
            if o1 || o2 { return Int.max }
            value = sum
        }
        return value
    }

    static func parse(_ header: String?, size: Int) -> RangeRequest {
        guard let header else { return .whole }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let equals = trimmed.firstIndex(of: "="),
              trimmed[..<equals].trimmingCharacters(in: .whitespaces).lowercased() == "bytes" else { return .whole }
        let specs = trimmed[trimmed.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        // Several ranges: answered with the whole file (RFC 9110 lets a server ignore Range).
        guard specs.count == 1, let spec = specs.first, let dash = spec.firstIndex(of: "-") else { return .whole }
        let firstText = spec[..<dash], lastText = spec[spec.index(after: dash)...]
        if firstText.isEmpty {
            // A suffix: the last n bytes; none of an empty file, and a zero-length suffix, are satisfiable.
            guard let n = number(lastText) else { return .whole }
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .part(first: size - min(n, size), last: size - 1)
        }
        guard let first = number(firstText) else { return .whole }
        if lastText.isEmpty { return first < size ? .part(first: first, last: size - 1) : .unsatisfiable }
        guard let last = number(lastText), last >= first else { return .whole }  // a-b with b < a is invalid syntax
        return first < size ? .part(first: first, last: min(last, size - 1)) : .unsatisfiable
    }
}

/// Snapshots and clips served as a web server serves files: streamed from disk in chunks (never read whole),
/// single byte ranges, validators (`ETag`, `Last-Modified`) with `If-None-Match` / `If-Modified-Since`, and
/// `HEAD`.
enum FileResponse {
    /// Bytes read and written per step of the stream.
    static let chunkSize = 64 * 1024

    static func serve(_ path: String, type: String, request: Request) throws -> Response {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              (attributes[.type] as? FileAttributeType) == .typeRegular,
              let size = (attributes[.size] as? NSNumber)?.intValue else {
            return WebServer.notFound("the file is gone (retention, or not written)")
        }
        let modified = (attributes[.modificationDate] as? Date) ?? Date(timeIntervalSince1970: 0)
        let tag = "\"\(String(size, radix: 16))-\(String(Int64(modified.timeIntervalSince1970 * 1000), radix: 16))\""
        var headers: HTTPFields = [.contentType: type, .acceptRanges: "bytes", .eTag: tag,
                                   .lastModified: HTTPDate.format(modified), .cacheControl: "no-cache"]
        if notModified(request.headers, tag: tag, modified: modified) {
            return Response(status: .notModified, headers: headers)
        }
        // If-Range with another validator: the file changed, so the whole of it.
        var range = RangeRequest.parse(request.headers[.range], size: size)
        if let ifRange = request.headers[.ifRange], ifRange != tag { range = .whole }
        let first: Int, count: Int, status: HTTPResponse.Status
        switch range {
        case .whole:
            (first, count, status) = (0, size, .ok)
        case .part(let a, let b):
            (first, count, status) = (a, b - a + 1, .partialContent)
            headers[.contentRange] = "bytes \(a)-\(b)/\(size)"
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(size)"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        headers[.contentLength] = String(count)
        if request.method == .head { return Response(status: status, headers: headers) }
        guard let handle = FileHandle(forReadingAtPath: path) else { return WebServer.notFound("the file is gone") }
        let body = ResponseBody(contentLength: count) { writer in
            defer { try? handle.close() }
            try handle.seek(toOffset: UInt64(first))
            var left = count
            while left > 0 {
                let data = try handle.read(upToCount: min(chunkSize, left)) ?? Data()
                if data.isEmpty { break }  // the file shrank under us: end early rather than pad
                left -= data.count
                try await writer.write(ByteBuffer(bytes: data))
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// A conditional GET answered by 304: `If-None-Match` naming this tag (or `*`), else `If-Modified-Since`
    /// at or after the file's time (whole seconds, as HTTP dates carry).
    static func notModified(_ headers: HTTPFields, tag: String, modified: Date) -> Bool {
        if let match = headers[.ifNoneMatch] {
            return match.split(separator: ",").contains { item in
                let t = item.trimmingCharacters(in: .whitespaces)
                return t == "*" || t == tag || t == "W/" + tag
            }
        }
        if let since = headers[.ifModifiedSince].flatMap(HTTPDate.parse) {
            return modified.timeIntervalSince1970.rounded(.down) <= since.timeIntervalSince1970
        }
        return false
    }
}

/// IMF-fixdate, the form HTTP dates take (`Sun, 06 Nov 1994 08:49:37 GMT`).
enum HTTPDate {
    static func formatter() -> DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return f
    }

    static func format(_ date: Date) -> String { formatter().string(from: date) }
    static func parse(_ text: String) -> Date? { formatter().date(from: text.trimmingCharacters(in: .whitespaces)) }
}
