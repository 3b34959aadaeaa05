import Foundation
import Monitoring
import Service
import Testing
import TestKit

@Suite("roadwatch watch: the config")
struct WatchConfigTests {
    static let contract = """
        output: /var/lib/roadwatch            # per camera: <output>/<camera>/events.jsonl, clips/*.mp4, snapshots/*.jpg
        defaults:
          size: 512x256
        cameras:
          front:
            input: rtsp://viewer:${CAM_PASSWORD}@192.0.2.10:554/stream1
            mask: ["0,0.85,1,0.85,1,1,0,1"]     # ignore the bonnet: normalized x,y pairs
          archive:
            input: samples/solidWhiteRight.mp4
            loop: true
        """

    @Test("the issue's example: defaults apply, ${VAR} comes from the environment, the mask and loop are read")
    func contractExample() throws {
        let config = try WatchConfig.parse(Self.contract, path: "w.yaml", environment: ["CAM_PASSWORD": "s3cret"])
        #expect(config.output == "/var/lib/roadwatch")
        #expect(config.cameras.map(\.name) == ["front", "archive"])
        let front = config.cameras[0], archive = config.cameras[1]
        #expect(front.input == "rtsp://viewer:s3cret@192.0.2.10:554/stream1")
        #expect(front.size?.description == "512x256" && archive.size?.description == "512x256")
        #expect(front.mask?.polygons.count == 1 && front.mask?.contains(x: 0.5, y: 0.9) == true)
        #expect(archive.loop && !front.loop && archive.mask == nil)
    }

    @Test("per-camera keys override the defaults; nested record, events and retention blocks")
    func overrides() throws {
        let text = """
            output: out
            defaults:
              tau: 5.5
              events: {min_frames: 8}
            cameras:
              a:
                input: a.mp4
                tau: 7
                record: {segment_seconds: 30, crf: 28}
                events: {end_after: 4, pre_capture: 1}
                retention: {max_size_mb: 500, max_age_hours: 48}
              b:
                input: b.mp4
                enabled: false
            """
        let config = try WatchConfig.parse(text, path: "w.yaml", environment: [:])
        let a = config.cameras[0], b = config.cameras[1]
        #expect(a.method.tau == 7 && b.method.tau == 5.5)
        #expect(a.record && a.segmentSeconds == 30 && a.crf == 28 && !b.record)
        // The camera's events block replaces keys one by one, over the defaults' block.
        #expect(a.events.minFrames == 8 && a.events.endAfter == 4 && a.events.preCapture == 1)
        #expect(a.maxSizeMB == 500 && a.maxAgeHours == 48 && !b.enabled)
    }

    @Test("a variable whose value holds ${...} (its own name, even) is put in once, not expanded again for ever")
    func variableNotExpandedTwice() throws {
        let text = "output: o\ncameras:\n  a:\n    input: rtsp://${HOST}/${PATH_PART}\n"
        let config = try WatchConfig.parse(text, path: "w.yaml", environment: ["HOST": "${HOST}", "PATH_PART": "s${"])
        #expect(config.cameras.first?.input == "rtsp://${HOST}/s${")
    }

    @Test("bad configs are refused in one line naming the key and its line", arguments: [
        ("output: o\ncameras:\n  a:\n    input: x.mp4\n    taus: 3\n", "w.yaml:5: cameras.a.taus: unknown key (did you mean 'tau'?)"),
        ("output: o\ncameras:\n  a:\n    input: x.mp4\n    tau: abc\n", "w.yaml:5: cameras.a.tau: tau must be a number (any number), got 'abc'"),
        ("output: o\ncameras:\n  a:\n    input: rtsp://u:${NOPE}@h/s\n", "cameras.a.input: the environment variable NOPE is not set"),
        ("output: o\ncameras:\n  a:\n    loop: true\n", "cameras.a.input: missing"),
        ("cameras:\n  a:\n    input: x.mp4\n", "output: missing"),
        ("output: o\ncameras:\n  a:\n    input: x.mp4\n    size: 500x250\n", "w.yaml:5: cameras.a.size: expected WxH with both sides multiples of 16"),
        ("output: o\ncameras:\n  a:\n    input: x.mp4\n    mask: [\"0,0,1,1\"]\n", "cameras.a.mask: mask 1"),
        ("output: o\ncameras:\n  a:\n    input: x.mp4\n    events: {min_frames: 0}\n", "cameras.a.events.min_frames: 0 is outside"),
        ("output: o\ncamera:\n  a:\n    input: x.mp4\n", "w.yaml:2: camera: unknown key (did you mean 'cameras'?)"),
        ("output: o\ncameras:\n  a b:\n    input: x.mp4\n", "a camera name takes letters"),
        ("output: [o\n", "w.yaml: not YAML"),
        ("output: o\ncameras:\n  a:\n    input: x.mp4\n    record: {segment_secs: 5}\n", "cameras.a.record.segment_secs: unknown key"),
    ])
    func refused(text: String, says: String) {
        do {
            _ = try WatchConfig.parse(text, path: "w.yaml", environment: [:])
            Issue.record("accepted:\n\(text)")
        } catch {
            #expect(error.description.contains(says), "\(error.description)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("samples/watch.yaml is valid and watches the bundled clip")
    func sample() throws {
        let config = try WatchConfig.load(Shared.repositoryRoot.appendingPathComponent("samples/watch.yaml").path, environment: [:])
        #expect(config.cameras.map(\.input) == ["samples/solidWhiteRight.mp4"] && config.cameras[0].loop && config.cameras[0].record)
        #expect(config.cameras[0].maxSizeMB == 2000)
    }

    @Test("a config that is not there names the file")
    func missingFile() {
        #expect(throws: ConfigError.self) { try WatchConfig.load("/nonexistent/w.yaml") }
    }
}

@Suite("roadwatch watch: retention")
struct RetentionTests {
    static func file(_ path: String, bytes: Int, age: Double) throws {
        FileManager.default.createFile(atPath: path, contents: Data(count: bytes))
        let date = Date().addingTimeInterval(-age)
        try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: path)
    }

    @Test("by size: the oldest go first until the total is under the limit; the newest recording and hidden files stay")
    func bySize() throws {
        let scratch = try ScratchDirectory("retention")
        for sub in ["recordings", "clips", "snapshots"] {
            try FileManager.default.createDirectory(atPath: scratch.path(sub), withIntermediateDirectories: true)
        }
        try Self.file(scratch.path("recordings/r1.mp4"), bytes: 400, age: 50)
        try Self.file(scratch.path("clips/c1.mp4"), bytes: 300, age: 40)
        try Self.file(scratch.path("recordings/r2.mp4"), bytes: 400, age: 30)
        try Self.file(scratch.path("snapshots/s1.jpg"), bytes: 100, age: 20)
        try Self.file(scratch.path("recordings/r3.mp4"), bytes: 400, age: 1)  // the open one
        try Self.file(scratch.path("clips/.candidate-1.mp4"), bytes: 5000, age: 100)
        let removed = Retention(maxAge: nil, maxBytes: 1000).sweep(scratch.path(""))
        #expect(removed.map { URL(fileURLWithPath: $0).lastPathComponent } == ["r1.mp4", "c1.mp4"])
        let left = ["recordings/r2.mp4", "snapshots/s1.jpg", "recordings/r3.mp4", "clips/.candidate-1.mp4"]
        #expect(left.allSatisfy { FileManager.default.fileExists(atPath: scratch.path($0)) })
    }

    @Test("by age: everything older goes, except the newest recording")
    func byAge() throws {
        let scratch = try ScratchDirectory("retention-age")
        try FileManager.default.createDirectory(atPath: scratch.path("recordings"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch.path("snapshots"), withIntermediateDirectories: true)
        try Self.file(scratch.path("recordings/old.mp4"), bytes: 10, age: 7200)
        try Self.file(scratch.path("recordings/newest.mp4"), bytes: 10, age: 5000)
        try Self.file(scratch.path("snapshots/old.jpg"), bytes: 10, age: 7200)
        try Self.file(scratch.path("snapshots/new.jpg"), bytes: 10, age: 60)
        let removed = Retention(maxAge: 3600, maxBytes: nil).sweep(scratch.path(""))
        #expect(Set(removed.map { URL(fileURLWithPath: $0).lastPathComponent }) == ["old.mp4", "old.jpg"])
        #expect(FileManager.default.fileExists(atPath: scratch.path("recordings/newest.mp4")))
    }
}
