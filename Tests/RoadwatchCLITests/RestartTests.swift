import Foundation
import Testing
import TestKit

/// `watch` killed with -9 while an event is open, then started again, as systemd's Restart= would.
@Suite("watch restarted after kill -9, through the binary")
struct RestartTests {
    static func events(_ base: String) -> [[String: Any]]? {
        guard let reply = try? HTTP.get(base + "/api/events?limit=100"), reply.status == 200 else { return nil }
        return try? JSONSerialization.jsonObject(with: reply.body) as? [[String: Any]]
    }

    @Test("an open event is ended with end_reason interrupted after kill -9 and a restart; no half-written clip is listed; the killed process's hidden clips are removed; integrity_check ok")
    func killAndRestart() async throws {
        let scratch = try ScratchDirectory("restart")
        let port = try closedLoopbackPort()
        let config = scratch.path("watch.yaml")
        let output = scratch.path("out")
        // tau 100 on the cluster rule: the whole road is flagged, so an event opens at once and never ends.
        try """
            output: \(output)
            http: {listen: 127.0.0.1:\(port)}
            cameras:
              road:
                input: \(Shared.path("data/videos/solidWhiteRight.mp4"))
                loop: true
                realtime: false
                size: 256x128
                alarm: clusters
                tau: 100
                events: {min_frames: 2, pre_capture: 1}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let base = "http://127.0.0.1:\(port)"

        let first = try RunningBinary(["watch", config])
        defer { first.signal(SIGKILL) }
        let opened = try await blocking {
            waitUntil(timeout: 240) { (Self.events(base) ?? []).contains { $0["end"] == nil || $0["end"] is NSNull } }
        }
        try #require(opened, "no open event")
        // Let the clip grow past a fragment or two, then kill without warning.
        try await Task.sleep(for: .seconds(3))
        let before = try #require(Self.events(base))
        // While open, its clip is being written under a hidden name and not listed.
        for event in before where event["end"] == nil || event["end"] is NSNull {
            #expect(event["clip"] == nil || event["clip"] is NSNull, "an open event lists a clip still being written: \(event)")
        }
        let openIDs = before.filter { $0["end"] == nil || $0["end"] is NSNull }.compactMap { $0["id"] as? String }
        #expect(!openIDs.isEmpty)
        let killedPID = first.process.processIdentifier
        first.signal(SIGKILL)
        _ = first.wait(timeout: 30)
        let hiddenBefore = try FileManager.default.contentsOfDirectory(atPath: output + "/road/clips").filter { $0.hasPrefix(".candidate-") }
        #expect(hiddenBefore.contains { $0.contains("-\(killedPID)") }, "the killed process left no clip being written: \(hiddenBefore)")

        let second = try RunningBinary(["watch", config])
        defer { second.signal(SIGKILL) }
        let closed = try await blocking {
            waitUntil(timeout: 240) {
                guard let list = Self.events(base) else { return false }
                return openIDs.allSatisfy { id in list.contains { $0["id"] as? String == id && $0["end_reason"] as? String == "interrupted" } }
            }
        }
        #expect(closed, "the events open at the kill (\(openIDs)) were not ended as interrupted")
        for event in Self.events(base) ?? [] {
            if let clip = event["clip"] as? String {
                #expect(FileManager.default.fileExists(atPath: output + "/road/" + clip), "a listed clip is not there: \(clip)")
            }
            if let snapshot = event["snapshot"] as? String {
                #expect(FileManager.default.fileExists(atPath: output + "/road/" + snapshot), "a listed snapshot is not there: \(snapshot)")
            }
        }
        let hiddenAfter = try FileManager.default.contentsOfDirectory(atPath: output + "/road/clips").filter { $0.contains("-\(killedPID)") }
        #expect(hiddenAfter.isEmpty, "the killed process's hidden clips stay: \(hiddenAfter)")
        let lines = try String(contentsOfFile: output + "/road/events.jsonl", encoding: .utf8).split(separator: "\n")
        for id in openIDs {
            #expect(lines.contains { $0.contains("\"id\":\"\(id)\"") && $0.contains("\"end_reason\":\"interrupted\"") }, "no end line for \(id)")
        }
        second.signal(SIGTERM)
        let stopped = second.wait(timeout: 120)
        #expect(!stopped.timedOut && stopped.status == 128 + SIGTERM, "\(stopped.stderr.suffix(2000))")
        // The restarted camera's events have ids of their own (a file's media time starts at 0 again): none took
        // over an interrupted event's row when the second run ended its own events.
        let reasons = try RoadwatchBinary.runProgram(URL(fileURLWithPath: "/usr/bin/env"), [
            "python3", "-c", "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                + "print(' '.join(str(db.execute('SELECT end_reason FROM events WHERE id = ?', (i,)).fetchone()[0]) for i in sys.argv[2:]))",
            output + "/events.sqlite",
        ] + openIDs)
        #expect(reasons.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                == openIDs.map { _ in "interrupted" }, "\(reasons.stdout) \(reasons.stderr)")
        let check = try RoadwatchBinary.runProgram(URL(fileURLWithPath: "/usr/bin/env"), [
            "python3", "-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
            output + "/events.sqlite",
        ])
        #expect(check.status == 0 && check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok", "\(check.stdout) \(check.stderr)")
    }
}

/// `watch` under systemd's notify protocol, with the test as systemd: a datagram socket at $NOTIFY_SOCKET.
@Suite("watch tells systemd it is ready and alive, through the binary")
struct SystemdWatchdogTests {
    @Test("READY=1 once the camera delivers frames, then WATCHDOG=1 at least every half WATCHDOG_USEC while frames flow, STOPPING=1 at SIGTERM")
    func notifies() async throws {
        let scratch = try ScratchDirectory("sdnotify")
        let socketPath = scratch.path("notify.sock")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socketPath.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let config = scratch.path("watch.yaml")
        try """
            output: \(scratch.path("out"))
            cameras:
              road:
                input: \(Shared.path("data/videos/solidWhiteRight.mp4"))
                loop: true
                realtime: false
                size: 256x128
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let watch = try RunningBinary(["watch", config], environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "2000000"])
        defer { watch.signal(SIGKILL) }
        let messages = try await blocking { () -> [(String, Double)] in
            var received: [(String, Double)] = []
            let started = Date()
            var buffer = [UInt8](repeating: 0, count: 4096)
            // Until four pings after READY, or four minutes (loading the model on a loaded machine).
            // (Pings may come before READY too, while the model loads: only those after it are counted.)
            func pingsAfterReady() -> Int {
                guard let ready = received.firstIndex(where: { $0.0.hasPrefix("READY=1") }) else { return 0 }
                return received[ready...].filter { $0.0 == "WATCHDOG=1" }.count
            }
            while Date().timeIntervalSince(started) < 240 && pingsAfterReady() < 4 {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 { received.append((String(decoding: buffer[..<count], as: UTF8.self), Date().timeIntervalSince(started))) }
            }
            return received
        }
        let ready = try #require(messages.firstIndex { $0.0.hasPrefix("READY=1") }, "no READY=1: \(messages.map(\.0))")
        let pings = messages[ready...].filter { $0.0 == "WATCHDOG=1" }.map(\.1)
        #expect(pings.count >= 4, "\(messages.map(\.0))")
        // Half the 2 s watchdog between pings, with room for a loaded machine (systemd's timeout is the whole 2 s).
        #expect(zip(pings, pings.dropFirst()).allSatisfy { $1 - $0 < 1.9 }, "pings at \(pings)")
        watch.signal(SIGTERM)
        let stopping = try await blocking {
            var buffer = [UInt8](repeating: 0, count: 4096)
            return waitUntil(timeout: 120) {
                let count = recv(fd, &buffer, buffer.count, 0)
                return count > 0 && String(decoding: buffer[..<count], as: UTF8.self) == "STOPPING=1"
            }
        }
        #expect(stopping, "no STOPPING=1")
        _ = watch.wait(timeout: 120)
    }
}
