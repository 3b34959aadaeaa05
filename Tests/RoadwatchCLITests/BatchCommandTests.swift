import Foundation
import Testing
import TestKit
import VideoIO

/// Short clips cut from the shared driving videos, small so a batch of them runs in seconds.
enum Clips {
    static func cut(_ shared: String, skip: Int, frames: Int, to path: String, width: Int = 320, height: Int = 180) async throws {
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        var options = InputOptions()
        options.size = FrameSize(width: width, height: height)
        let source = try await VideoSource.open(Shared.path("data/videos/\(shared)"), options: options)
        let settings = H264Writer.Settings(width: width, height: height, frameRate: Rational(25, 1), crf: 23, preset: "ultrafast")
        try await H264Writer.write(to: path, settings: settings) { writer in
            var n = 0
            for try await frame in source {
                defer { n += 1 }
                if n < skip { continue }
                if n >= skip + frames { break }
                try await writer.append(frame.image, pts: Int64(n - skip))
            }
        }
        await source.close()
    }

    /// A fleet folder: `count` good clips (keys returned sorted) in two car folders, plus `corrupt` files that are not video.
    static func fleet(in folder: String, count: Int, frames: Int, corrupt: [String] = []) async throws -> [String] {
        var keys: [String] = []
        for i in 0..<count {
            let key = "car\(i % 2 + 1)/clip\(i)"
            try await cut(i % 2 == 0 ? "solidWhiteRight.mp4" : "solidYellowLeft.mp4", skip: 10 * i, frames: frames,
                          to: folder + "/" + key + ".mp4")
            keys.append(key)
        }
        for name in corrupt {
            try Data("this is not a video\n".utf8).write(to: URL(fileURLWithPath: folder + "/" + name))
        }
        return keys.sorted()  // the order batch processes them in
    }
}

/// The merged report with the fields that depend on timing left out, for comparing runs.
func reportContent(_ folder: String) throws -> [String] {
    let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/report.json"))
    let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let items = try #require(report["items"] as? [[String: Any]])
    let failures = try #require(report["failures"] as? [[String: Any]])
    return items.map { "\($0["key"]!) frames=\($0["frames"]!) anomaly=\($0["anomaly_frames"]!) regions=\($0["regions"]!)" }
        + failures.map { "failed \($0["key"]!)" }
}

func modificationDate(_ path: String) throws -> Date {
    try #require(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
}

@Suite("roadwatch batch, through the binary")
struct BatchCommandTests {
    @Test("a folder with a corrupt file: every good clip done once, the corrupt one listed as failed, exit 1")
    func folderWithCorruptFile() async throws {
        let scratch = try ScratchDirectory("batch")
        let input = scratch.path("fleet"), out = scratch.path("out")
        let keys = try await Clips.fleet(in: input, count: 3, frames: 12, corrupt: ["car2/broken.mp4"])
        try Data().write(to: URL(fileURLWithPath: input + "/car1/notes.txt"))  // not a video: ignored

        let first = try RoadwatchBinary.run(["batch", input, "--out", out, "--size", "256x128", "--quiet"], timeout: 300)
        #expect(first.status == 1, "\(first.stderr)")
        #expect(first.stderr.contains("car2/broken.mp4"))
        #expect(first.stderr.contains("1 of 4 inputs failed"))
        for key in keys {
            for suffix in [".mp4", ".events.jsonl", ".summary.json", ".done.json"] {
                #expect(FileManager.default.fileExists(atPath: out + "/" + key + suffix), "\(key)\(suffix)")
            }
            let video = try await VideoSource.open(out + "/" + key + ".mp4")
            #expect(try await video.countRemainingFrames() == 12)
            let events = try String(contentsOfFile: out + "/" + key + ".events.jsonl", encoding: .utf8)
            #expect(events.split(separator: "\n").count == 12)
        }
        #expect(FileManager.default.fileExists(atPath: out + "/car2/broken.failed.json"))
        #expect(!FileManager.default.fileExists(atPath: out + "/car2/broken.done.json"))
        #expect(!FileManager.default.fileExists(atPath: out + "/car2/broken.partial.mp4"))

        // Run again: the good clips are skipped (their videos are not rewritten), the corrupt one fails again.
        let stamps = try keys.map { try modificationDate(out + "/" + $0 + ".mp4") }
        let second = try RoadwatchBinary.run(["batch", input, "--out", out, "--size", "256x128", "--quiet"], timeout: 300)
        #expect(second.status == 1)
        #expect(second.stderr.contains("3 already done, skipped"), "\(second.stderr)")
        #expect(try keys.map { try modificationDate(out + "/" + $0 + ".mp4") } == stamps)

        // Other settings are other outputs: nothing is skipped.
        let third = try RoadwatchBinary.run(["batch", input, "--out", out, "--size", "256x128", "--k", "5", "--quiet"], timeout: 300)
        #expect(third.stdout.contains("3 processed, 0 skipped, 1 failed"), "\(third.stdout)")

        // run's options apply to every file: --max-frames cuts each one.
        let cut = try RoadwatchBinary.run(["batch", input, "--out", scratch.path("cut"), "--size", "256x128", "--max-frames", "5",
                                           "--quiet"], timeout: 300)
        #expect(cut.status == 1)
        for key in keys {
            let video = try await VideoSource.open(scratch.path("cut") + "/" + key + ".mp4")
            #expect(try await video.countRemainingFrames() == 5)
        }

        let report = try RoadwatchBinary.run(["batch", "--report", out])
        #expect(report.status == 0, "\(report.stderr)")
        #expect(try reportContent(out).filter { $0.hasPrefix("car") }.count == 3)
        #expect(try reportContent(out).contains("failed car2/broken"))
        #expect(report.stdout.contains("3 files, 1 failed, 36 frames"), "\(report.stdout)")
    }

    @Test("SIGKILL in the middle, then the same command: finished clips skipped, the interrupted one redone, same report")
    func killAndResume() async throws {
        let scratch = try ScratchDirectory("batch-resume")
        let input = scratch.path("fleet"), out = scratch.path("out"), reference = scratch.path("reference")
        let keys = try await Clips.fleet(in: input, count: 4, frames: 40)
        let arguments = ["batch", input, "--size", "256x128", "--quiet"]

        let process = Process()
        process.executableURL = RoadwatchBinary.url
        process.arguments = arguments + ["--out", out]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Kill once the first clip is done and the second is being written.
        let firstDone = out + "/" + keys[0] + ".done.json", secondPartial = out + "/" + keys[1] + ".partial.mp4"
        waitUntil(timeout: 30) {
            !process.isRunning
                || (FileManager.default.fileExists(atPath: firstDone) && FileManager.default.fileExists(atPath: secondPartial))
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(FileManager.default.fileExists(atPath: firstDone))
        #expect(!FileManager.default.fileExists(atPath: out + "/" + keys[1] + ".done.json"), "killed too late to test resuming")
        let firstStamp = try modificationDate(out + "/" + keys[0] + ".mp4")

        let resumed = try RoadwatchBinary.run(arguments + ["--out", out], timeout: 300)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("3 processed, 1 skipped, 0 failed"), "\(resumed.stdout)")
        #expect(try modificationDate(out + "/" + keys[0] + ".mp4") == firstStamp)
        #expect(!FileManager.default.fileExists(atPath: secondPartial))
        let redone = try await VideoSource.open(out + "/" + keys[1] + ".mp4")
        #expect(try await redone.countRemainingFrames() == 40)

        let straight = try RoadwatchBinary.run(arguments + ["--out", reference], timeout: 300)
        #expect(straight.status == 0)
        for folder in [out, reference] { _ = try RoadwatchBinary.run(["batch", "--report", folder]) }
        let resumedReport = try reportContent(out), straightReport = try reportContent(reference)
        #expect(resumedReport.count == 4)
        #expect(resumedReport == straightReport)
    }

    @Test("shards 0/3, 1/3 and 2/3 (by flag, by Slurm's and by Kubernetes' variables) cover every input exactly once")
    func shardsCoverEverything() async throws {
        let scratch = try ScratchDirectory("batch-shards")
        let input = scratch.path("fleet")
        let keys = try await Clips.fleet(in: input, count: 7, frames: 3)
        let manifest = scratch.path("manifest.txt")
        try Data(("# the fleet\n" + keys.map { "fleet/" + $0 + ".mp4" }.joined(separator: "\n") + "\n").utf8)
            .write(to: URL(fileURLWithPath: manifest))

        let ways: [(String, [String], [String: String])] = [
            ("flag", ["--shard"], [:]),
            ("slurm", [], ["SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"]),
            ("k8s", ["--shards", "3"], [:]),
        ]
        for (way, flags, environment) in ways {
            var taken: [String] = []
            for index in 0..<3 {
                var arguments = ["batch", manifest, "--out", scratch.path(way), "--size", "256x128", "--quiet"]
                var env = environment
                switch way {
                case "flag": arguments += flags + ["\(index)/3"]
                case "slurm": env["SLURM_ARRAY_TASK_ID"] = "\(index + 1)"
                default: arguments += flags; env["JOB_COMPLETION_INDEX"] = "\(index)"
                }
                let outcome = try RoadwatchBinary.run(arguments, timeout: 300, environment: env)
                #expect(outcome.status == 0, "\(way) \(index): \(outcome.stderr)")
                #expect(outcome.stderr.contains("(shard \(index)/3)"), "\(outcome.stderr)")
                taken += outcome.stdout.split(separator: "\n").compactMap { line in
                    line.hasPrefix("fleet/") ? String(line.prefix { $0 != ":" }) : nil
                }
            }
            #expect(taken.sorted() == keys.map { "fleet/" + $0 }.sorted(), "\(way): \(taken)")
        }

        let missingCount = try RoadwatchBinary.run(["batch", manifest, "--out", scratch.path("x")],
                                                   environment: ["JOB_COMPLETION_INDEX": "1"])
        #expect(missingCount.status != 0 && missingCount.stderrLines.count == 1)
        #expect(missingCount.stderr.contains("--shards"))
        let badShard = try RoadwatchBinary.run(["batch", manifest, "--out", scratch.path("x"), "--shard", "3/3"])
        #expect(badShard.status != 0 && badShard.stderrLines.count == 1 && badShard.stderr.contains("--shard"))
        let inside = try RoadwatchBinary.run(["batch", input, "--out", input + "/results"])
        #expect(inside.status != 0 && inside.stderr.contains("inside input folder"))
    }
}
