import Foundation
import Service
import Testing

/// `events.max_clip_seconds` in the watch config: read, defaulted, refused outside its range in one line.
@Suite("roadwatch watch: the clip length setting")
struct ClipPartsConfigTests {
    @Test("read from defaults and per camera; 300 when absent")
    func read() throws {
        let config = try WatchConfig.parse("""
            output: o
            defaults:
              events: {max_clip_seconds: 60}
            cameras:
              a: {input: a.mp4}
              b: {input: b.mp4, events: {max_clip_seconds: 1.5}}
            """, path: "w.yaml", environment: [:])
        #expect(config.cameras.map(\.events.maxClipSeconds) == [60, 1.5])
        let plain = try WatchConfig.parse("output: o\ncameras:\n  a: {input: a.mp4}\n", path: "w.yaml", environment: [:])
        #expect(plain.cameras[0].events.maxClipSeconds == 300)
    }

    @Test("refused outside 1...86400 or when not a number, naming the key and its line", arguments: ["0", "0.5", "100000", "long"])
    func refused(value: String) {
        do {
            _ = try WatchConfig.parse("output: o\ncameras:\n  a:\n    input: x.mp4\n    events: {max_clip_seconds: \(value)}\n",
                                      path: "w.yaml", environment: [:])
            Issue.record("max_clip_seconds: \(value) was accepted")
        } catch {
            let line = error.description
            #expect(line.contains("w.yaml:5") && line.contains("cameras.a.events.max_clip_seconds") && !line.contains("\n"), "\(line)")
        }
    }
}
