import Foundation
import GRDB
import Monitoring

/// Every event of the service in SQLite (`<output>/events.sqlite`): one row per event, updated by its
/// `update` and `end` lines, kept across restarts, serving the API. Writes go through one GRDB queue; a
/// database that cannot be opened or written (corrupt, locked, a full disk) is reported and the caller goes
/// on without it — the monitor never stops for the store.
public final class EventStore: Sendable {
    public let path: String
    private let queue: DatabaseQueue

    public struct Row: Sendable, Codable, Equatable {
        public var id: String
        public var camera: String
        public var start: Double
        public var end: Double?
        public var top_score: Double
        public var box: [Int]
        public var area: Int
        public var frames: Int
        public var snapshot: String?
        public var clip: String?
        /// Clip files finished so far (part 1 is `clip`; part N is `clips/ID.partN.mp4`), nil before any.
        public var clip_parts: Int?
        /// `interrupted` when the process was killed while the event was open (see `EventRecord.end_reason`).
        public var end_reason: String?
        /// Where the event was (JSON in the `location` column); nil without GPS or a fixed camera position.
        public var location: EventLocation?
    }

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(2)
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("events-v1") { db in
                try db.execute(sql: """
                    CREATE TABLE events (
                        id TEXT PRIMARY KEY NOT NULL, camera TEXT NOT NULL, start REAL NOT NULL, "end" REAL,
                        top_score REAL NOT NULL, box TEXT NOT NULL, area INTEGER NOT NULL, frames INTEGER NOT NULL,
                        snapshot TEXT, clip TEXT);
                    CREATE INDEX events_camera_start ON events(camera, start);
                    CREATE INDEX events_start ON events(start);
                    """)
            }
            // Clips are listed once a part is finished; events left open by a kill are closed with a reason.
            migrator.registerMigration("events-v2") { db in
                try db.execute(sql: """
                    ALTER TABLE events ADD COLUMN clip_parts INTEGER;
                    ALTER TABLE events ADD COLUMN end_reason TEXT;
                    """)
            }
            // A column added, not a table rebuilt: a database from before locations keeps its rows (location NULL).
            migrator.registerMigration("events-v2-location") { db in
                try db.execute(sql: "ALTER TABLE events ADD COLUMN location TEXT")
            }
            try migrator.migrate(queue)
        } catch {
            throw StoreError("cannot use the event database '\(path)': \(Self.describe(error))")
        }
    }

    /// Adds or updates the event a line of an event list describes.
    public func record(_ record: EventRecord) throws {
        let box = record.box.map(String.init).joined(separator: ",")
        let location = record.location.flatMap { try? JSONEncoder().encode($0) }.map { String(decoding: $0, as: UTF8.self) }
        do {
            try queue.write { db in
                try db.execute(sql: """
                    INSERT INTO events (id, camera, start, "end", top_score, box, area, frames, snapshot, clip, end_reason, location)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET "end" = excluded."end", top_score = excluded.top_score, box = excluded.box,
                        area = excluded.area, frames = excluded.frames, snapshot = excluded.snapshot,
                        clip = COALESCE(excluded.clip, events.clip), end_reason = excluded.end_reason,
                        location = excluded.location
                    """, arguments: [record.id, record.camera, record.start, record.end, record.top_score, box, record.area,
                                     record.frames, record.snapshot, record.clip, record.end_reason, location])
            }
        } catch {
            throw StoreError("cannot write to the event database '\(path)': \(Self.describe(error))")
        }
    }

    /// Notes a finished clip part of event `id`: part 1 becomes its `clip`, and `clip_parts` counts the parts.
    public func clipFinished(id: String, clip: String, part: Int) throws {
        do {
            try queue.write { db in
                try db.execute(sql: """
                    UPDATE events SET clip = CASE WHEN ? = 1 THEN ? ELSE COALESCE(clip, ?) END,
                        clip_parts = MAX(COALESCE(clip_parts, 0), ?) WHERE id = ?
                    """, arguments: [part, clip, clip, part, id])
            }
        } catch {
            throw StoreError("cannot write to the event database '\(path)': \(Self.describe(error))")
        }
    }

    /// The events of `camera` that have started and not ended (after a kill: the ones it interrupted).
    public func openEvents(camera: String) throws -> [Row] {
        do {
            return try queue.read { db in
                try GRDB.Row.fetchAll(db, sql: "SELECT * FROM events WHERE camera = ? AND \"end\" IS NULL ORDER BY start",
                                      arguments: [camera]).map(Self.row)
            }
        } catch {
            throw StoreError("cannot read the event database '\(path)': \(Self.describe(error))")
        }
    }

    /// `PRAGMA integrity_check`: "ok", or what SQLite found wrong.
    public func integrityCheck() throws -> String {
        do {
            return try queue.read { db in
                try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ")
            }
        } catch {
            throw StoreError("cannot read the event database '\(path)': \(Self.describe(error))")
        }
    }

    /// The newest events first: of one camera, starting after `after` (epoch seconds), at most `limit`.
    public func events(camera: String? = nil, after: Double? = nil, limit: Int = 50) throws -> [Row] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let camera {
            conditions.append("camera = ?")
            arguments += [camera]
        }
        if let after {
            conditions.append("start > ?")
            arguments += [after]
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        arguments += [max(1, min(limit, 1000))]
        do {
            return try queue.read { db in
                try GRDB.Row.fetchAll(db, sql: "SELECT * FROM events \(filter) ORDER BY start DESC LIMIT ?", arguments: arguments)
                    .map(Self.row)
            }
        } catch {
            throw StoreError("cannot read the event database '\(path)': \(Self.describe(error))")
        }
    }

    public func event(id: String) throws -> Row? {
        do {
            return try queue.read { db in
                try GRDB.Row.fetchOne(db, sql: "SELECT * FROM events WHERE id = ?", arguments: [id]).map(Self.row)
            }
        } catch {
            throw StoreError("cannot read the event database '\(path)': \(Self.describe(error))")
        }
    }

    /// Forgets the events of `camera` that started before `before` (retention by age); returns how many.
    @discardableResult
    public func forget(camera: String, before: Double) throws -> Int {
        do {
            return try queue.write { db in
                try db.execute(sql: "DELETE FROM events WHERE camera = ? AND start < ?", arguments: [camera, before])
                return db.changesCount
            }
        } catch {
            throw StoreError("cannot write to the event database '\(path)': \(Self.describe(error))")
        }
    }

    static func row(_ r: GRDB.Row) -> Row {
        let box = (r["box"] as String? ?? "").split(separator: ",").compactMap { Int($0) }
        let location = (r["location"] as String?).flatMap { try? JSONDecoder().decode(EventLocation.self, from: Data($0.utf8)) }
        return Row(id: r["id"], camera: r["camera"], start: r["start"], end: r["end"], top_score: r["top_score"], box: box,
                   area: r["area"], frames: r["frames"], snapshot: r["snapshot"], clip: r["clip"], clip_parts: r["clip_parts"],
                   end_reason: r["end_reason"], location: location)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? error.description }
        return String(describing: error)
    }
}

public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
