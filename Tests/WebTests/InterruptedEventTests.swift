import Foundation
import Logging
import Monitoring
import Service
import Testing
import TestKit
@testable import Web

/// The store's side of a service that is killed and restarted, and of clips written in parts.
@Suite("The event store across kills and clip parts")
struct InterruptedEventTests {
    static func layer(_ scratch: ScratchDirectory) throws -> WebLayer {
        let config = try WatchConfig.parse("""
            output: \(scratch.path("out"))
            cameras:
              cam: {input: /dev/null}
            """, path: "watch.yaml", environment: [:])
        return WebLayer(config: config, logger: Logger(label: "test"))
    }

    @Test("a clip is listed only once a finished part is in place; later parts are counted; a later line without it keeps it")
    func clipListedWhenFinished() async throws {
        let scratch = try ScratchDirectory("clipparts")
        let web = try Self.layer(scratch)
        let store = try #require(web.store)
        try FileManager.default.createDirectory(atPath: scratch.path("out/cam/clips"), withIntermediateDirectories: true)
        web.record(record("new", id: "e1"))  // names clips/e1.mp4, not yet on disk
        #expect(try store.event(id: "e1")?.clip == nil)
        _ = FileManager.default.createFile(atPath: scratch.path("out/cam/clips/e1.mp4"), contents: Data([0]))
        web.clipFinished(camera: "cam", id: "e1", clip: "clips/e1.mp4", part: 1)
        #expect(try store.event(id: "e1")?.clip == "clips/e1.mp4")
        web.clipFinished(camera: "cam", id: "e1", clip: "clips/e1.part2.mp4", part: 2)
        var clipless = record("update", id: "e1", score: 9)
        clipless.clip = nil
        web.record(clipless)
        let row = try #require(try store.event(id: "e1"))
        #expect(row.clip == "clips/e1.mp4" && row.clip_parts == 2 && row.top_score == 9)
    }

    @Test("events a kill left open end with the reason interrupted, in the store and events.jsonl; the database checks ok")
    func interruptedOnRestart() async throws {
        let scratch = try ScratchDirectory("interrupted")
        do {
            let web = try Self.layer(scratch)
            web.record(record("new", id: "open1", start: 10))
            web.record(record("new", id: "done", start: 5))
            web.record(record("end", id: "done", start: 5, end: 8))
            web.record(record("new", id: "elsewhere", camera: "other", start: 12))
        }
        try FileManager.default.createDirectory(atPath: scratch.path("out/cam"), withIntermediateDirectories: true)
        let web = try Self.layer(scratch)  // the restart
        #expect(await web.closeInterrupted(cameras: ["cam"]) == 1)
        let store = try #require(web.store)
        let row = try #require(try store.event(id: "open1"))
        #expect(row.end == 10 && row.end_reason == "interrupted")
        #expect(try store.event(id: "done")?.end_reason == nil)
        #expect(try store.event(id: "elsewhere")?.end == nil, "another camera's event is not this camera's to close")
        #expect(try store.openEvents(camera: "cam").isEmpty)
        let lines = try String(contentsOfFile: scratch.path("out/cam/events.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("\"end_reason\":\"interrupted\"") && lines[0].contains("\"id\":\"open1\""))
        #expect(await web.closeInterrupted(cameras: ["cam"]) == 0, "closed twice")
        #expect(try store.integrityCheck() == "ok")
    }

    @Test("a store made before the clip_parts and end_reason columns is migrated and keeps its rows")
    func migratesOldStore() throws {
        let scratch = try ScratchDirectory("migrate")
        let path = scratch.path("events.sqlite")
        // The v1 schema, as an earlier release wrote it (GRDB's migration table included).
        let python = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.executescript('''
            CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
            INSERT INTO grdb_migrations VALUES ('events-v1');
            CREATE TABLE events (id TEXT PRIMARY KEY NOT NULL, camera TEXT NOT NULL, start REAL NOT NULL, "end" REAL,
                top_score REAL NOT NULL, box TEXT NOT NULL, area INTEGER NOT NULL, frames INTEGER NOT NULL, snapshot TEXT, clip TEXT);
            INSERT INTO events VALUES ('old', 'cam', 1, 2, 3, '1,2,3,4', 12, 5, NULL, 'clips/old.mp4');
            ''')
            db.commit()
            """
        let made = try RoadwatchBinary.runProgram(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", python, path], timeout: 60)
        try #require(made.status == 0, "\(made.stderr)")
        let store = try EventStore(path: path)
        let row = try #require(try store.event(id: "old"))
        #expect(row.clip == "clips/old.mp4" && row.end_reason == nil && row.clip_parts == nil)
        #expect(try store.integrityCheck() == "ok")
    }
}
