import Foundation
import GRDB
import Monitoring
import Testing
import TestKit
@testable import Web

@Suite("Event locations in the store")
struct EventLocationStoreTests {
    static let place = EventLocation(lat: 33.1267696, lon: -117.3273, alt: 12.5, speed: 4.25, heading: 181.5,
                                     utc: "2016-03-17T17:30:21.005Z", fix: "threeD", source: "gpmf", interpolated: true,
                                     time: 3.25)

    @Test("a database made before locations gains the column on open, keeps its rows, and stores new locations")
    func migratesExistingDatabase() throws {
        let scratch = try ScratchDirectory("store-location")
        let path = scratch.path("events.sqlite")
        // The database as the previous version left it: the v1 table, its migration recorded, one row.
        do {
            let old = try DatabaseQueue(path: path)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("events-v1") { db in
                try db.execute(sql: """
                    CREATE TABLE events (
                        id TEXT PRIMARY KEY NOT NULL, camera TEXT NOT NULL, start REAL NOT NULL, "end" REAL,
                        top_score REAL NOT NULL, box TEXT NOT NULL, area INTEGER NOT NULL, frames INTEGER NOT NULL,
                        snapshot TEXT, clip TEXT);
                    """)
                try db.execute(sql: """
                    INSERT INTO events VALUES ('old', 'cam', 10, 12, 5, '1,2,3,4', 12, 5, NULL, NULL)
                    """)
            }
            try migrator.migrate(old)
        }
        let store = try EventStore(path: path)
        let old = try #require(try store.event(id: "old"))
        #expect(old.location == nil && old.top_score == 5)
        var located = record("new", id: "new")
        located.location = Self.place
        try store.record(located)
        #expect(try store.event(id: "new")?.location == Self.place)
        // The API's JSON: the location is there when known, absent otherwise.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(try store.events()), as: UTF8.self)
        #expect(json.contains("\"location\":{\"alt\":12.5,\"fix\":\"threeD\""))
        #expect(json.components(separatedBy: "\"location\"").count == 2)
    }

    @Test("an event record without a location encodes exactly as before; with one, snake_case keys and no nils")
    func recordEncoding() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var plain = EventRecord(type: "new", id: "a-1-1", camera: "a", start: 1.5, end: nil, top_score: 4.5, box: [1, 2, 3, 4],
                                area: 12, snapshot: nil, clip: nil, frames: 5, bestTime: 2.5)
        #expect(String(decoding: try encoder.encode(plain), as: UTF8.self)
            == #"{"area":12,"box":[1,2,3,4],"camera":"a","frames":5,"id":"a-1-1","start":1.5,"top_score":4.5,"type":"new"}"#)
        plain.location = EventLocation(lat: 1, lon: 2, fix: "valid", source: "fixed", interpolated: false, time: 2.5)
        #expect(String(decoding: try encoder.encode(plain.location), as: UTF8.self)
            == #"{"fix":"valid","interpolated":false,"lat":1,"lon":2,"source":"fixed","time":2.5}"#)
    }
}
