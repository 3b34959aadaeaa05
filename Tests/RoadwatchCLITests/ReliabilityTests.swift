import Foundation
import Testing
import TestKit
import VideoIO

/// Runs that end badly — a full disk, kill -9, a removed folder, a write that blocks — end within seconds,
/// say why in one line, and leave a video that decodes to its end and events that parse.
/// Bounds on time are generous (a minute or more for what takes seconds) and only catch hangs.
@Suite("roadwatch run and batch when writing fails or the process dies, through the binary")
struct ReliabilityTests {
    static let clip = Shared.path("data/videos/solidYellowLeft.mp4")  // 681 frames, 960x540
    /// A small network input, so frames come out fast; the video is still written at the clip's size.
    static let fast = ["--size", "128x64", "--quiet"]

    /// Lines written to events so far (0 if the file is not there yet).
    static func lines(_ path: String) -> Int {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").count ?? 0
    }

    /// Before: the run hung after "stopping", ignored SIGTERM, and left an MP4 with no index (undecodable).
    @Test("a full disk: one line naming the file and ENOSPC, exit 1 within seconds, the video decodes, events parse",
          .enabled(if: SmallDisk.available, "needs root to mount a 2 MB tmpfs (CI runs as root)"))
    func fullDisk() throws {
        let disk = try SmallDisk(megabytes: 2)
        let video = disk.file("out.mp4"), events = disk.file("events.jsonl")
        let run = try RoadwatchBinary.run(["run", Self.clip, "-o", video, "--events", events] + Self.fast, timeout: 300)
        #expect(!run.timedOut)
        #expect(run.status == 1)
        #expect(run.stderrLines.count == 1 && run.stderr.contains("No space left on device (ENOSPC)")
                && (run.stderr.contains(video) || run.stderr.contains(events)), "\(run.stderr)")
        let decoded = try MediaCheck.decode(video)
        #expect(decoded.clean, "\(decoded.errors)")
        #expect(decoded.frames >= 25 && decoded.frames < 681)
        let parsed = try MediaCheck.jsonLines(events)
        #expect(!parsed.isEmpty && parsed.allSatisfy { $0 != nil })
    }

    /// Writes to /dev/full fail with ENOSPC: the same path without root.
    @Test("events to a device that is always full: one line naming it, exit 1")
    func eventsToFullDevice() throws {
        let scratch = try ScratchDirectory("devfull")
        let run = try RoadwatchBinary.run(["run", Self.clip, "-o", scratch.path("out.mp4"), "--events", "/dev/full"] + Self.fast,
                                          timeout: 120)
        #expect(!run.timedOut && run.status == 1)
        #expect(run.stderrLines.count == 1 && run.stderr.contains("'/dev/full'") && run.stderr.contains("ENOSPC"), "\(run.stderr)")
    }

    /// Before: a plain MP4 has its index written at the end, so a kill left a file nothing could play.
    @Test("kill -9 in the middle of a run: the video decodes up to about its last second, every event line parses")
    func killNine() throws {
        let scratch = try ScratchDirectory("kill9")
        let video = scratch.path("out.mp4"), events = scratch.path("events.jsonl")
        let running = try RunningBinary(["run", Self.clip, "-o", video, "--events", events, "--mask-dir", scratch.path("masks")] + Self.fast)
        #expect(waitUntil(timeout: 120) { Self.lines(events) >= 100 })
        running.signal(SIGKILL)
        let outcome = running.wait(timeout: 30)
        #expect(outcome.status == SIGKILL)
        let parsed = try MediaCheck.jsonLines(events)
        #expect(parsed.count >= 100 && parsed.allSatisfy { $0 != nil })
        let decoded = try MediaCheck.decode(video)
        #expect(decoded.clean, "\(decoded.errors)")
        // Fragments of at most a second (25 frames), plus the encoder's look-ahead.
        #expect(decoded.frames >= 25 && decoded.frames <= parsed.count && parsed.count - decoded.frames <= 125,
                "\(decoded.frames) frames for \(parsed.count) events")
        // Masks are written whole under a hidden name and renamed: a kill leaves at most that hidden file.
        let names = try FileManager.default.contentsOfDirectory(atPath: scratch.path("masks"))
        let masks = names.filter { !$0.hasPrefix(".") }
        #expect(masks.allSatisfy { $0.hasSuffix(".png") } && masks.count >= parsed.count - 1, "\(names.sorted().suffix(3))")
        #expect(names.count - masks.count <= 1)
        for mask in masks { _ = try StillImage.readGray8(scratch.path("masks/" + mask)) }
    }

    /// Before: writes went on into the removed file and were lost without a word.
    @Test("the output folder removed during a run: one line saying so, non-zero exit within seconds")
    func removedFolder() throws {
        let scratch = try ScratchDirectory("removed")
        let folder = scratch.path("out")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let events = folder + "/events.jsonl"
        let running = try RunningBinary(["run", Self.clip, "-o", folder + "/out.mp4", "--events", events] + Self.fast)
        #expect(waitUntil(timeout: 120) { Self.lines(events) >= 20 })
        try FileManager.default.removeItem(atPath: folder)
        let outcome = running.wait(timeout: 60)
        #expect(!outcome.timedOut && outcome.status == 1)
        #expect(outcome.stderrLines.count == 1 && outcome.stderr.contains("removed while being written"), "\(outcome.stderr)")
    }

    /// An events file that is a pipe nobody reads: its writes block once the pipe holds 64 KiB.
    func blockedRun(_ scratch: ScratchDirectory) throws -> (RunningBinary, reader: Int32, video: String) {
        let fifo = scratch.path("events.fifo"), video = scratch.path("out.mp4")
        #expect(mkfifo(fifo, 0o644) == 0)
        let running = try RunningBinary(["run", Self.clip, "-o", video, "--events", fifo] + Self.fast)
        var reader: Int32 = -1
        #expect(waitUntil(timeout: 60) {
            reader = open(fifo, O_RDONLY | O_NONBLOCK)
            return reader >= 0
        })
        var queued: Int32 = 0
        #expect(waitUntil(timeout: 120) { ioctl(reader, UInt(FIONREAD), &queued) == 0 && queued >= 60_000 })
        Thread.sleep(forTimeInterval: 1)  // the sink is now blocked in write(2)
        return (running, reader, video)
    }

    @Test("SIGTERM while a write is blocked: the process still ends (exit 143), saying why", .timeLimit(.minutes(4)))
    func sigtermWhileBlocked() throws {
        let scratch = try ScratchDirectory("blocked")
        let (running, reader, video) = try blockedRun(scratch)
        defer { close(reader) }
        running.signal(SIGTERM)
        let outcome = running.wait(timeout: 90)
        #expect(!outcome.timedOut && outcome.status == 143)
        #expect(outcome.stderr.contains("did not stop within"), "\(outcome.stderr)")
        #expect(try MediaCheck.decode(video).clean)
    }

    @Test("a second Ctrl-C while a write is blocked quits at once (exit 130)", .timeLimit(.minutes(4)))
    func secondInterrupt() throws {
        let scratch = try ScratchDirectory("blocked2")
        let (running, reader, _) = try blockedRun(scratch)
        defer { close(reader) }
        running.signal(SIGINT)
        Thread.sleep(forTimeInterval: 0.5)
        running.signal(SIGINT)
        let outcome = running.wait(timeout: 10)
        #expect(!outcome.timedOut && outcome.status == 130)
    }

    /// Before: every input after the disk filled failed the same way, one after the other.
    @Test("batch on a disk that fills: the input is recorded as failed and the batch stops, saying the disk is full",
          .enabled(if: SmallDisk.available, "needs root to mount a 2 MB tmpfs (CI runs as root)"))
    func batchStopsOnFullDisk() throws {
        let disk = try SmallDisk(megabytes: 2)
        let scratch = try ScratchDirectory("fullbatch")
        let names = ["solidWhiteRight", "solidYellowLeft", "test_video"]  // the batch's order: sorted
        for name in names {  // a folder of links to the clips (links count as the videos)
            try FileManager.default.createSymbolicLink(atPath: scratch.path(name + ".mp4"),
                                                       withDestinationPath: Shared.path("data/videos/\(name).mp4"))
        }
        let out = disk.file("out")
        let run = try RoadwatchBinary.run(["batch", scratch.url.path, "--out", out] + Self.fast, timeout: 600)
        #expect(!run.timedOut && run.status == 1)
        #expect(run.stderr.contains("is full") && run.stderr.contains("2 inputs not started"), "\(run.stderr)")
        let written = try FileManager.default.contentsOfDirectory(atPath: out)
        #expect(written == ["solidWhiteRight.failed.json"], "\(written)")
    }
}
