import Foundation
import Testing
import TestKit
import VideoIO

/// Talks HTTP to 127.0.0.1 with curl (the program), so the tests see exactly what a client sees.
enum HTTP {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    static func get(_ url: String, headers: [String] = [], curlArguments: [String] = [], maxSeconds: Double = 10) throws -> Reply {
        guard let curl = RoadwatchBinary.which("curl") else { throw HTTPError("curl is not installed") }
        let scratch = try ScratchDirectory("curl")
        let bodyPath = scratch.path("body"), headerPath = scratch.path("headers")
        var arguments = ["-s", "-o", bodyPath, "-D", headerPath, "--max-time", String(maxSeconds)]
        for header in headers { arguments += ["-H", header] }
        arguments += curlArguments
        let run = try RoadwatchBinary.runProgram(curl, arguments + [url], timeout: maxSeconds + 10)
        // curl exits 28 when --max-time cuts a stream (MJPEG): what arrived is still there.
        guard run.status == 0 || run.status == 28 else { throw HTTPError("curl \(url): exit \(run.status) \(run.stderr)") }
        let headerText = (try? String(contentsOfFile: headerPath, encoding: .utf8)) ?? ""
        var status = 0
        var fields: [String: String] = [:]
        for line in headerText.split(separator: "\r\n") {
            if line.hasPrefix("HTTP/") {
                status = Int(line.split(separator: " ")[1]) ?? 0
            } else if let colon = line.firstIndex(of: ":") {
                fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return Reply(status: status, headers: fields, body: FileManager.default.contents(atPath: bodyPath) ?? Data())
    }

    struct HTTPError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

/// Prometheus text: every sample line is `name{labels} value`; returns the samples by their name and labels.
func prometheusSamples(_ text: String) -> [String: Double]? {
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
        let key = String(line[..<space])
        guard key.range(of: #"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?$"#, options: .regularExpression) != nil else { return nil }
        samples[key] = value
    }
    return samples
}

@Suite("roadwatch watch: the web page, API, metrics, health and webhooks, through the binary", .serialized)
struct WebCommandTests {
    static let artefacts = Shared.repositoryRoot.appendingPathComponent(".build/test-artefacts").path

    @Test("off loopback without a token: refused in one line, exit 64; with a token every route but /healthz needs it")
    func tokens() async throws {
        let scratch = try ScratchDirectory("webtoken")
        let open = scratch.path("open.yaml")
        try "output: o\nhttp: {listen: 0.0.0.0:8971}\ncameras:\n  a: {input: x.mp4}\n".write(toFile: open, atomically: true, encoding: .utf8)
        let refused = try RoadwatchBinary.run(["watch", "--check", open])
        #expect(refused.status == 64 && refused.stderrLines.count == 1 && refused.stderr.contains("http.auth_token: required"),
                "\(refused.stderr)")

        let port = try closedLoopbackPort()
        let config = scratch.path("token.yaml")
        try """
            output: \(scratch.path("out"))
            http: {listen: 127.0.0.1:\(port), auth_token: "${RW_TEST_TOKEN}"}
            cameras:
              a: {input: \(Shared.path("data/videos/solidWhiteRight.mp4")), loop: true, size: 256x128}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        setenv("RW_TEST_TOKEN", "t0ken-for-tests", 1)
        let watch = try RunningBinary(["watch", config])
        defer { watch.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        #expect(try await blocking { waitUntil(timeout: 120) { (try? HTTP.get(base + "/healthz").status) == 200 } })
        #expect(try HTTP.get(base + "/api/cameras").status == 401)
        #expect(try HTTP.get(base + "/metrics", headers: ["Authorization: Bearer wrong-token"]).status == 401)
        #expect(try HTTP.get(base + "/api/cameras", headers: ["Authorization: Bearer t0ken-for-tests"]).status == 200)
        #expect(try HTTP.get(base + "/api/cameras?token=t0ken-for-tests").status == 200)
        // The OpenAPI document, behind the token like the rest; a known path asked with another method is 405 naming
        // the ones it serves; a query that does not parse is refused.
        let auth = ["Authorization: Bearer t0ken-for-tests"]
        #expect(try HTTP.get(base + "/api/openapi.json").status == 401)
        let document = try HTTP.get(base + "/api/openapi.json", headers: auth)
        #expect(document.status == 200 && document.headers["content-type"] == "application/json")
        #expect((try? JSONSerialization.jsonObject(with: document.body) as? [String: Any])?["openapi"] as? String == "3.1.0")
        let post = try HTTP.get(base + "/api/cameras", headers: auth, curlArguments: ["-X", "POST"])
        #expect(post.status == 405 && post.headers["allow"] == "GET", "\(post.status) \(post.headers)")
        #expect(try HTTP.get(base + "/api/events/x/clip.mp4", headers: auth, curlArguments: ["-X", "DELETE"]).headers["allow"] == "GET, HEAD")
        #expect(try HTTP.get(base + "/api/events?limit=0", headers: auth).status == 400)
        #expect(try HTTP.get(base + "/api/events?after=yesterday", headers: auth).status == 400)
        #expect(try HTTP.get(base + "/nothing/here", headers: auth, curlArguments: ["-X", "POST"]).status == 404)
        watch.signal(SIGINT)
        let outcome = try await blocking { watch.wait(timeout: 60) }
        #expect([0, 130].contains(outcome.status), "\(outcome.stderr)")
    }

    @Test("watch on a disk that fills up: recording stops with a warning, the camera keeps processing, recording resumes once there is room",
          .enabled(if: SmallDisk.available, "needs root to mount a small tmpfs (CI runs as root)"))
    func fullDisk() async throws {
        let disk = try SmallDisk(megabytes: 3)
        let scratch = try ScratchDirectory("watchfull")
        let port = try closedLoopbackPort()
        let config = scratch.path("watch.yaml")
        try """
            output: \(disk.path)/out
            http: {listen: 127.0.0.1:\(port)}
            cameras:
              cam:
                input: \(Shared.path("data/videos/solidWhiteRight.mp4"))
                loop: true
                size: 256x128
                record: {segment_seconds: 1, crf: 18}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let watch = try RunningBinary(["watch", config])
        defer { watch.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        @Sendable func frames() -> Int {
            guard let body = try? HTTP.get(base + "/api/cameras").body,
                  let list = try? JSONSerialization.jsonObject(with: body) as? [[String: Any]] else { return -1 }
            return list.first?["frames"] as? Int ?? -1
        }
        @Sendable func free() -> Int {
            var info = statvfs()
            return statvfs(disk.path, &info) == 0 ? Int(info.f_bavail) * Int(info.f_frsize) : -1
        }
        let recordings = disk.path + "/out/cam/recordings"
        // The recordings fill the 3 MB disk within seconds.
        #expect(try await blocking { waitUntil(timeout: 120) { free() < 64 * 1024 } }, "the disk never filled: \(free()) bytes free")
        let atFull = frames()
        try await Task.sleep(for: .seconds(3))
        #expect(frames() > atFull + 10, "the camera stopped when the disk filled (\(atFull) then \(frames()) frames)")
        // Room again: recording starts over in a new file (within its 10 s retry).
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: recordings)) ?? [])
        for name in before { try? FileManager.default.removeItem(atPath: recordings + "/" + name) }
        #expect(try await blocking {
            waitUntil(timeout: 60) {
                let now = (try? FileManager.default.contentsOfDirectory(atPath: recordings)) ?? []
                return now.contains { name in
                    let size = (try? FileManager.default.attributesOfItem(atPath: recordings + "/" + name)[.size] as? Int) ?? 0
                    return name.contains("-r") && !before.contains(name) && (size ?? 0) > 20_000
                }
            }
        }, "recording did not resume: \((try? FileManager.default.contentsOfDirectory(atPath: recordings)) ?? [])")
        watch.signal(SIGINT)
        let outcome = try await blocking { watch.wait(timeout: 60) }
        #expect([0, 130].contains(outcome.status), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("recording stopped") && outcome.stderr.contains("No space left on device"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("recording again"))
        // One warning per time it stopped, not one per failed retry: at most as many as it came back, plus one.
        let stops = outcome.stderr.components(separatedBy: "recording stopped").count - 1
        let resumes = outcome.stderr.components(separatedBy: "recording again").count - 1
        #expect(stops >= 1 && stops <= resumes + 1, "\(stops) stops, \(resumes) resumes")
    }

    @Test("a corrupt event database and a dead webhook receiver: one line each, the cameras go on, failures counted")
    func brokenNeighbours() async throws {
        let scratch = try ScratchDirectory("webbroken")
        let output = scratch.path("out")
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try Data(repeating: 0x42, count: 16384).write(to: URL(fileURLWithPath: output + "/events.sqlite"))
        let port = try closedLoopbackPort(), dead = try closedLoopbackPort()
        let config = scratch.path("watch.yaml")
        try """
            output: \(output)
            http: {listen: 127.0.0.1:\(port)}
            webhooks:
              - {url: "http://127.0.0.1:\(dead)/hook", timeout: 1, retries: 1, cooldown: 0}
            cameras:
              road:
                input: \(SyntheticClip("synthetic_hedgehog_solidWhiteRightFlipped").video)
                realtime: false
                size: 512x256
              keepalive:                # the service ends when every camera has: this one loops
                input: \(Shared.path("data/videos/solidWhiteRight.mp4"))
                loop: true
                size: 256x128
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let watch = try RunningBinary(["watch", config])
        defer { watch.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        // The clip is read whole: it ends, with its event, within a minute or so; the failures follow.
        let failed = try await blocking {
            waitUntil(timeout: 180) {
                guard let text = try? HTTP.get(base + "/metrics").text, let samples = prometheusSamples(text) else { return false }
                return (samples["roadwatch_webhook_failures_total"] ?? 0) >= 2
            }
        }
        #expect(failed, "no webhook failure counted")
        let ended = try await blocking {
            waitUntil(timeout: 180) {
                guard let body = try? HTTP.get(base + "/api/cameras").body,
                      let list = try? JSONSerialization.jsonObject(with: body) as? [[String: Any]] else { return false }
                return list.first { $0["name"] as? String == "road" }?["state"] as? String == "ended"
            }
        }
        #expect(ended)
        #expect(try HTTP.get(base + "/api/events").status == 503)
        #expect(try HTTP.get(base + "/healthz").status == 200)
        watch.signal(SIGINT)
        let outcome = try await blocking { watch.wait(timeout: 60) }
        #expect([0, 130].contains(outcome.status), "\(outcome.stderr)")
        let storeLines = outcome.stderr.split(separator: "\n").filter { $0.contains("events.sqlite") }
        #expect(storeLines.count == 1, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("road: 221 frames"), "\(outcome.stdout)")
        #expect(try !eventLines(output + "/road/events.jsonl").isEmpty)  // the event list has them all the same
    }

    @Test("run --metrics-listen: /metrics while it runs, the stream's frames counted; a bad address is refused before any work")
    func runMetrics() async throws {
        let scratch = try ScratchDirectory("runmetrics")
        let sender = try StreamSender(clip: StreamSender.smallClip(from: "data/videos/solidWhiteRight.mp4", in: scratch),
                                      transport: .tcp, rate: 1)
        try sender.start()
        defer { sender.stop() }
        let port = try closedLoopbackPort()
        let running = try RunningBinary(["run", sender.url, "-o", scratch.path("cam.mp4"), "--size", "256x128", "--quiet",
                                         "--metrics-listen", "127.0.0.1:\(port)"])
        defer { running.signal(SIGKILL) }
        let key = "roadwatch_frames_total{camera=\"cam\"}"
        let counted = try await blocking {
            waitUntil(timeout: 120) {
                guard let text = try? HTTP.get("http://127.0.0.1:\(port)/metrics").text, let samples = prometheusSamples(text) else { return false }
                return (samples[key] ?? 0) >= 20
            }
        }
        #expect(counted)
        running.signal(SIGINT)
        let outcome = try await blocking { running.wait(timeout: 60) }
        #expect(outcome.status == 130, "\(outcome.stderr)")

        let bad = try RoadwatchBinary.run(["run", sender.url, "-o", scratch.path("x.mp4"), "--metrics-listen", "0.0.0.0:9464"])
        #expect(bad.status == 64 && bad.stderrLines.count == 1 && bad.stderr.contains("ROADWATCH_TOKEN"), "\(bad.stderr)")
    }

    @Test("two cameras: the page in headless Chromium shows both previews and an event with its snapshot; /metrics grows; the API, clip ranges, MJPEG; /readyz 503 once a sender is killed; webhooks POST new and end")
    func page() async throws {
        let chromium = try #require(RoadwatchBinary.which("chromium") ?? RoadwatchBinary.which("chromium-browser"),
                                    "headless Chromium is needed (Debian: apt-get install chromium)")
        let scratch = try ScratchDirectory("webpage")
        let synthetic = SyntheticClip("synthetic_hedgehog_solidWhiteRightFlipped")
        let sender = try StreamSender(clip: StreamSender.smallClip(from: "data/videos/solidWhiteRight.mp4", in: scratch),
                                      transport: .tcp, rate: 1)
        try sender.start()
        defer { sender.stop() }
        let hook = try HookReceiver()
        defer { hook.stop() }
        let port = try closedLoopbackPort()
        let config = scratch.path("watch.yaml")
        try """
            output: \(scratch.path("out"))
            http: {listen: 127.0.0.1:\(port)}
            webhooks:
              - {url: "http://127.0.0.1:\(hook.port)/hook", on: [new, end], cooldown: 0, timeout: 2}
            defaults:
              size: 512x256
            cameras:
              road:                       # the synthetic clip read whole: its event does not depend on the load
                input: \(synthetic.video)
                realtime: false
              live:
                input: \(sender.url)
                size: 256x128
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let watch = try RunningBinary(["watch", config])
        defer { watch.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        #expect(try await blocking { waitUntil(timeout: 120) { (try? HTTP.get(base + "/readyz").status) == 200 } },
                "\((try? HTTP.get(base + "/readyz").text) ?? "no answer")")

        // /metrics: Prometheus text whose frame counters grow.
        let first = try #require(prometheusSamples(try HTTP.get(base + "/metrics").text), "not Prometheus text")
        try await Task.sleep(for: .seconds(2))
        let second = try #require(prometheusSamples(try HTTP.get(base + "/metrics").text))
        for camera in ["live"] {
            let key = "roadwatch_frames_total{camera=\"\(camera)\"}"
            #expect((second[key] ?? 0) > (first[key] ?? 0), "\(key): \(first[key] ?? -1) then \(second[key] ?? -1)")
            #expect(second["roadwatch_camera_up{camera=\"\(camera)\"}"] == 1)
        }
        #expect(second.keys.contains { $0.hasPrefix("roadwatch_stage_seconds_bucket{stage=\"backbone\"") })
        #expect(second.keys.contains { $0.hasPrefix("roadwatch_latency_seconds_count{camera=\"live\"") })

        // An event over the road, in the API.
        let ended = try await blocking {
            waitUntil(timeout: 240) {
                guard let reply = try? HTTP.get(base + "/api/events"),
                      let list = try? JSONSerialization.jsonObject(with: reply.body) as? [[String: Any]] else { return false }
                return list.contains { $0["end"] is Double && $0["clip"] is String }
            }
        }
        try #require(ended, "no event ended")
        let list = try #require(try JSONSerialization.jsonObject(with: try HTTP.get(base + "/api/events?camera=road&limit=5").body) as? [[String: Any]])
        let event = try #require(list.first { $0["end"] is Double && $0["clip"] is String })
        let id = try #require(event["id"] as? String)
        #expect(try HTTP.get(base + "/api/events/\(id)").status == 200)
        #expect(try HTTP.get(base + "/api/events/no-such-event").status == 404)
        let snapshot = try HTTP.get(base + "/api/events/\(id)/snapshot.jpg")
        #expect(snapshot.status == 200 && snapshot.headers["content-type"] == "image/jpeg" && snapshot.body.starts(with: [0xFF, 0xD8]))
        // post_capture: the clip is renamed into place once finished, which takes longer on a slow machine; wait
        // for it (bounded) instead of a fixed pause.
        let clipped = try await blocking {
            waitUntil(timeout: 60) { (try? HTTP.get(base + "/api/events/\(id)/clip.mp4"))?.status == 200 }
        }
        #expect(clipped, "the ended event's clip never appeared")
        let whole = try HTTP.get(base + "/api/events/\(id)/clip.mp4")
        #expect(whole.status == 200 && whole.body.count > 1000)
        let part = try HTTP.get(base + "/api/events/\(id)/clip.mp4", headers: ["Range: bytes=100-199"])
        #expect(part.status == 206 && part.body == whole.body[100..<200] && part.headers["content-range"] == "bytes 100-199/\(whole.body.count)")
        #expect(try HTTP.get(base + "/api/events/\(id)/clip.mp4", headers: ["Range: bytes=\(whole.body.count)-"]).status == 416)
        // Malformed and odd ranges cost nothing but their own answer: the whole file, a suffix, and the
        // service still up afterwards.
        for bad in ["Range: bytes=", "Range: bytes=,", "Range: bytes=5-2", "Range: bytes=0-1,5-6", "Range: items=0-1"] {
            let reply = try HTTP.get(base + "/api/events/\(id)/snapshot.jpg", headers: [bad])
            #expect(reply.status == 200 && reply.body == snapshot.body, "\(bad): \(reply.status)")
        }
        let suffix = try HTTP.get(base + "/api/events/\(id)/clip.mp4", headers: ["Range: bytes=-100"])
        #expect(suffix.status == 206 && suffix.body == whole.body.suffix(100))
        let huge = try HTTP.get(base + "/api/events/\(id)/clip.mp4", headers: ["Range: bytes=99999999999999999999999-"])
        #expect(huge.status == 416 && huge.headers["content-range"] == "bytes */\(whole.body.count)")
        // Validators and HEAD.
        let tag = try #require(whole.headers["etag"])
        #expect(whole.headers["last-modified"] != nil)
        #expect(try HTTP.get(base + "/api/events/\(id)/clip.mp4", headers: ["If-None-Match: \(tag)"]).status == 304)
        let head = try HTTP.get(base + "/api/events/\(id)/clip.mp4", curlArguments: ["-I"])
        #expect(head.status == 200 && head.headers["content-length"] == String(whole.body.count))
        #expect(try HTTP.get(base + "/healthz").status == 200)

        // The live preview: latest.jpg, and a multipart MJPEG stream cut after 3 s.
        let latest = try HTTP.get(base + "/cameras/road/latest.jpg")
        #expect(latest.status == 200 && latest.body.starts(with: [0xFF, 0xD8]))
        let stream = try HTTP.get(base + "/cameras/live/stream.mjpeg", maxSeconds: 3)
        #expect(stream.headers["content-type"]?.hasPrefix("multipart/x-mixed-replace") == true)
        let parts = stream.text.components(separatedBy: "--roadwatchframe").count - 1
        #expect(parts >= 3 && parts <= 5 * 3 + 2, "\(parts) frames in 3 s at most 5 per second")

        // The page, as a browser renders it: both previews loaded, the event row with a snapshot, no script error.
        let dump = try RoadwatchBinary.runProgram(chromium, [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=10000",
            "--enable-logging=stderr", "--v=0", "--dump-dom", base + "/",
        ], timeout: 120)
        #expect(dump.status == 0, "\(dump.stderr)")
        let dom = dump.stdout
        #expect(!dom.contains("data-errors") && !dump.stderr.contains("Uncaught"), "\(dump.stderr)")
        for camera in ["road", "live"] {
            let tag = dom.components(separatedBy: "<img").first { $0.contains("class=\"preview\"") && $0.contains("data-camera=\"\(camera)\"") }
            let width = tag.flatMap { t in t.range(of: #"data-width="(\d+)""#, options: .regularExpression).map { String(t[$0]) } }
            #expect(width.map { !$0.contains("\"0\"") } == true, "no preview for \(camera): \(tag ?? "no tag")")
        }
        #expect(dom.contains("class=\"event\"") && dom.contains("alt=\"snapshot\""), "no event row in the page")
        try FileManager.default.createDirectory(atPath: Self.artefacts, withIntermediateDirectories: true)
        let shot = Self.artefacts + "/watch-page.png"
        _ = try RoadwatchBinary.runProgram(chromium, [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=6000",
            "--window-size=1280,1000", "--screenshot=\(shot)", base + "/",
        ], timeout: 120)
        #expect(FileManager.default.fileExists(atPath: shot))

        // Webhooks: the receiver got the event's new and end as JSON.
        let posts = hook.received
        #expect(posts.contains { $0["id"] as? String == id && $0["type"] as? String == "new" }, "\(posts)")
        #expect(posts.contains { $0["id"] as? String == id && $0["type"] as? String == "end" })

        // Readiness: the live camera's sender dies; after its 10 s window, 503 naming it (the road camera has
        // ended, which does not count against readiness).
        sender.stop()
        let notReady = try await blocking {
            waitUntil(timeout: 60) {
                guard let reply = try? HTTP.get(base + "/readyz") else { return false }
                return reply.status == 503 && reply.text.contains("camera live")
            }
        }
        #expect(notReady)
        #expect(try HTTP.get(base + "/healthz").status == 200)
        watch.signal(SIGINT)
        let outcome = try await blocking { watch.wait(timeout: 60) }
        #expect([0, 130].contains(outcome.status), "\(outcome.stderr)")
    }
}

/// A webhook receiver on 127.0.0.1: a tiny HTTP server (ncat-free, in-process) that records each POSTed JSON body.
final class HookReceiver: @unchecked Sendable {
    let port: UInt16
    private let socket: Int32
    private let lock = NSLock()
    private var bodies: [[String: Any]] = []
    private var thread: Thread?

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socket, 16) == 0 else { throw HTTP.HTTPError("cannot listen for webhooks") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        self.socket = socket
        let thread = Thread { [self] in serve() }
        self.thread = thread
        thread.start()
    }

    var received: [[String: Any]] { lock.withLock { bodies } }

    private func serve() {
        while true {
            let client = accept(socket, nil, nil)
            guard client >= 0 else { return }
            var data = Data()
            var buffer = [UInt8](repeating: 0, count: 65536)
            // Read the headers, then Content-Length bytes of body.
            while true {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                data.append(contentsOf: buffer[0..<n])
                if let split = data.range(of: Data("\r\n\r\n".utf8)) {
                    let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).lowercased()
                    let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
                    if data.count - split.upperBound >= length {
                        let body = data[split.upperBound..<(split.upperBound + length)]
                        if let json = try? JSONSerialization.jsonObject(with: body) as? [String: Any] { lock.withLock { bodies.append(json) } }
                        break
                    }
                }
            }
            let reply = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            _ = reply.withCString { write(client, $0, strlen($0)) }
            close(client)
        }
    }

    func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }
}
