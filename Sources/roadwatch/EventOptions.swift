import Anomaly
import ArgumentParser
import Foundation
import Monitoring

/// Events with a start and an end, and the parts of the picture never to flag: `run`, `batch` and `demo`.
struct EventOptions: ParsableArguments {
    @Option(name: .customLong("events-log"), help: "The event list (JSON lines: new/update/end). Default: OUT's name with .event-list.jsonl.")
    var eventsLog: String?

    @Flag(help: "Write no event list.")
    var noEventsLog = false

    @Option(help: "Write each event's snapshot (snapshots/ID.jpg) and clip (clips/ID.mp4) under this folder.")
    var evidence: String?

    @Option(name: .customLong("mask"), help: "Never flag inside this polygon: \"x1,y1,x2,y2,...\" in 0-1 of the width and height (repeatable).")
    var masks: [String] = []

    @Option(help: "Frames a region must be flagged on before an event starts.")
    var minFrames = EventRules.default.minFrames

    @Option(help: "Seconds without the region before its event ends.")
    var endAfter = EventRules.default.endAfter

    @Option(help: "Seconds of video before an event's start in its clip.")
    var preCapture = EventRules.default.preCapture

    @Option(help: "Seconds of video after an event's end in its clip.")
    var postCapture = EventRules.default.postCapture

    @Option(help: "Seconds of video in one clip file: a longer event goes on in ID.part2.mp4, ID.part3.mp4... (1-86400).")
    var maxClipSeconds = EventRules.default.maxClipSeconds

    func validate() throws {
        do {
            try rules.validate()
            _ = try ignoreMask()
        } catch {
            throw ValidationError(String(describing: error))
        }
        if noEventsLog && eventsLog != nil { throw ValidationError("--events-log and --no-events-log contradict each other") }
    }

    var rules: EventRules {
        var rules = EventRules()
        rules.minFrames = minFrames
        rules.endAfter = endAfter
        rules.preCapture = preCapture
        rules.postCapture = postCapture
        rules.maxClipSeconds = maxClipSeconds
        return rules
    }

    func ignoreMask() throws -> IgnoreMask? {
        masks.isEmpty ? nil : try IgnoreMask(parsing: masks)
    }

    /// The event list for a video written to `video` from a source that is `live` or not.
    func outputs(video: String, camera: String, live: Bool) -> EventOutputs? {
        guard !noEventsLog else { return nil }
        let list = eventsLog ?? EventOutputs.listPath(besideVideo: video)
        var outputs = EventOutputs(list: list, evidenceFolder: evidence, camera: camera, rules: rules, epochTimes: live)
        outputs.appendsToList = false
        return outputs
    }
}
