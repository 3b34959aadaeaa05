import Foundation
import Logging
import Monitoring
import Service
import Testing
import TestKit
@testable import Web

func record(_ type: String, id: String, camera: String = "cam", start: Double = 100, end: Double? = nil, score: Double = 5) -> EventRecord {
    EventRecord(type: type, id: id, camera: camera, start: start, end: end, top_score: score, box: [1, 2, 3, 4], area: 12,
                snapshot: "snapshots/\(id).jpg", clip: "clips/\(id).mp4", frames: 5)
}

@Suite("The event store (SQLite through GRDB)")
struct EventStoreTests {
    @Test("new, update and end make one row; it outlives the process's handle; filters by camera, time and limit")
    func roundTrip() throws {
        let scratch = try ScratchDirectory("store")
        let path = scratch.path("events.sqlite")
        do {
            let store = try EventStore(path: path)
            try store.record(record("new", id: "a", start: 100))
            try store.record(record("update", id: "a", start: 100, score: 7))
            try store.record(record("end", id: "a", start: 100, end: 104, score: 7))
            try store.record(record("new", id: "b", camera: "other", start: 200))
            try store.record(record("new", id: "c", start: 300))
        }
        let store = try EventStore(path: path)  // again, as after a restart
        let a = try #require(try store.event(id: "a"))
        #expect(a.end == 104 && a.top_score == 7 && a.box == [1, 2, 3, 4] && a.clip == "clips/a.mp4")
        #expect(try store.events().map(\.id) == ["c", "b", "a"])
        #expect(try store.events(camera: "cam").map(\.id) == ["c", "a"])
        #expect(try store.events(after: 150).map(\.id) == ["c", "b"])
        #expect(try store.events(limit: 1).map(\.id) == ["c"])
        #expect(try store.event(id: "nope") == nil)
        #expect(try store.forget(camera: "cam", before: 250) == 1)
        #expect(try store.events().map(\.id) == ["c", "b"])
    }

    @Test("a corrupt database file is refused in one line naming it")
    func corrupt() throws {
        let scratch = try ScratchDirectory("store-bad")
        let path = scratch.path("events.sqlite")
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: path))
        do {
            _ = try EventStore(path: path)
            Issue.record("a corrupt database was opened")
        } catch {
            #expect(String(describing: error).contains(path) && !String(describing: error).contains("\n"), "\(error)")
        }
    }
}

@Suite("The web layer's pieces")
struct WebPieceTests {
    @Test("Range headers by RFC 9110: single, suffix, open-ended, malformed, multiple, out of bounds, overflowing", arguments: [
        ("bytes=0-99", 1000, RangeRequest.part(first: 0, last: 99)),
        ("bytes=100-", 1000, .part(first: 100, last: 999)),
        ("bytes=-100", 1000, .part(first: 900, last: 999)),
        ("bytes=-5000", 1000, .part(first: 0, last: 999)),
        ("bytes=990-2000", 1000, .part(first: 990, last: 999)),
        ("bytes=0-99999999999999999999999999", 1000, .part(first: 0, last: 999)),
        ("bytes=-99999999999999999999999999", 1000, .part(first: 0, last: 999)),
        ("bytes = 5-9", 1000, .part(first: 5, last: 9)),
        ("BYTES=5-9", 1000, .part(first: 5, last: 9)),
        ("bytes=1000-", 1000, .unsatisfiable),
        ("bytes=1000-1001", 1000, .unsatisfiable),
        ("bytes=99999999999999999999999999-", 1000, .unsatisfiable),
        ("bytes=-0", 1000, .unsatisfiable),
        ("bytes=0-0", 0, .unsatisfiable),
        ("bytes=-10", 0, .unsatisfiable),
        ("bytes=", 1000, .whole),
        ("bytes=,", 1000, .whole),
        ("bytes=-", 1000, .whole),
        ("bytes=5-2", 1000, .whole),
        ("bytes=x-", 1000, .whole),
        ("bytes=1-2-3", 1000, .whole),
        ("bytes=+1-2", 1000, .whole),
        ("items=0-1", 1000, .whole),
        ("bytes=0-1,5-6", 1000, .whole),
        ("", 1000, .whole),
        ("=", 1000, .whole),
    ])
    func ranges(header: String, size: Int, expected: RangeRequest) {
        #expect(RangeRequest.parse(header, size: size) == expected, "\(header)")
    }

    @Test("tokens compare whole")
    func tokens() {
        #expect(Tokens.same("secret-token", "secret-token"))
        #expect(!Tokens.same("secret-toke", "secret-token"))
        #expect(!Tokens.same("secret-tokeN", "secret-token"))
        #expect(!Tokens.same("", "secret-token"))
    }

    @Test("webhook cooldown: a second new of the same camera within it is held back, and so is its end; other cameras are not")
    func cooldown() {
        var hook = WebhookSettings(url: "http://127.0.0.1:9/hook")
        hook.cooldown = 30
        let hooks = Webhooks([hook], metrics: nil, logger: Logger(label: "test"))
        #expect(hooks.admit(record("new", id: "1"), hook: 0, cooldown: 30, now: 1000))
        #expect(!hooks.admit(record("new", id: "2"), hook: 0, cooldown: 30, now: 1010))
        #expect(hooks.admit(record("new", id: "3", camera: "other"), hook: 0, cooldown: 30, now: 1011))
        #expect(hooks.admit(record("end", id: "1"), hook: 0, cooldown: 30, now: 1012))
        #expect(!hooks.admit(record("end", id: "2"), hook: 0, cooldown: 30, now: 1013))
        #expect(hooks.admit(record("new", id: "4"), hook: 0, cooldown: 30, now: 1031))
    }

    @Test("metrics: Prometheus names with their suffixes, counters that grow")
    func metrics() {
        let metrics = ServiceMetrics(cameras: ["a", "b"])
        metrics.frame(camera: "a", latency: 0.12, timings: .init())
        metrics.frame(camera: "a", latency: 0.2, timings: .init())
        var status = CameraStatus(name: "a", state: .up)
        status.dropped = 3
        status.reconnects = 1
        metrics.update([status, CameraStatus(name: "b", state: .down)])
        let text = metrics.text()
        #expect(text.contains(#"roadwatch_frames_total{camera="a"} 2"#), "\(text)")
        #expect(text.contains(#"roadwatch_frames_dropped_total{camera="a"} 3"#))
        #expect(text.contains(#"roadwatch_reconnects_total{camera="a"} 1"#))
        #expect(text.contains(#"roadwatch_camera_up{camera="a"} 1"#) && text.contains(#"roadwatch_camera_up{camera="b"} 0"#))
        #expect(text.contains(#"roadwatch_latency_seconds_bucket{camera="a",le="0.2"} 2"#), "\(text)")
        #expect(text.contains("roadwatch_stage_seconds_bucket{stage=\"backbone\""))
        #expect(text.contains("roadwatch_webhook_failures_total"))
    }
}
