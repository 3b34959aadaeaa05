import Foundation
import Testing
import TestKit

/// The sbatch script on a real slurmctld + slurmd started on this machine (deploy/slurm/single-node.sh).
@Suite("the Slurm job array on a real one-machine cluster")
struct SlurmArrayTests {
    /// `.ci/run` sets ROADWATCH_REQUIRE_SLURM=1: there a missing Slurm is a failure, not a skip.
    static var required: Bool { ProcessInfo.processInfo.environment["ROADWATCH_REQUIRE_SLURM"] == "1" }

    static let missingTools = ["munged", "slurmctld", "slurmd", "sbatch", "sinfo"].filter { RoadwatchBinary.which($0) == nil }
    /// Why the test cannot run here, or nil.
    static var obstacle: String? {
        if !missingTools.isEmpty { return "not installed: \(missingTools.joined(separator: ", "))" }
        return getuid() != 0 ? "the test must run as root to start the daemons" : nil
    }

    // Without Slurm the test is reported as skipped (not passed); under .ci/run it runs and fails if it cannot.
    @Test("sbatch --array=0-2 over a manifest: three tasks, one shard each, logs per task, merged report",
          .enabled(if: required || obstacle == nil, "Slurm cannot run here (apt-get install slurm-wlm munge, as root)"))
    func jobArray() async throws {
        if let why = Self.obstacle {
            Issue.record("Slurm test cannot run: \(why)")
            return
        }
        let scratch = try ScratchDirectory("slurm")
        let keys = try await Clips.fleet(in: scratch.path("fleet"), count: 3, frames: 8)
        let manifest = scratch.path("manifest.txt")
        try Data(keys.map { "fleet/" + $0 + ".mp4\n" }.joined().utf8).write(to: URL(fileURLWithPath: manifest))

        let script = Shared.repositoryRoot.appendingPathComponent("deploy/slurm/single-node.sh")
        let state = scratch.path("state")
        let started = try RoadwatchBinary.runProgram(script, ["start", state], timeout: 60)
        // (Naming scratch here also keeps its folder alive until the daemons are gone.)
        defer { _ = try? RoadwatchBinary.runProgram(script, ["stop", scratch.path("state")], timeout: 30) }
        guard started.status == 0 else {
            Issue.record("the Slurm daemons did not start: \(started.stderr)")
            return
        }
        let environment = ["SLURM_CONF": state + "/slurm.conf", "ROADWATCH": RoadwatchBinary.url.path]
        let sbatch = try #require(RoadwatchBinary.which("sbatch"))
        let submitted = try RoadwatchBinary.runProgram(
            sbatch, ["--wait", "--array=0-2", "--output=" + scratch.path("task-%A_%a.log"),
                     Shared.repositoryRoot.appendingPathComponent("deploy/slurm/roadwatch-array.sbatch").path,
                     manifest, scratch.path("out"), "--size", "256x128"],
            timeout: 600, in: scratch.url, environment: environment)
        #expect(submitted.status == 0, "sbatch: \(submitted.stdout) \(submitted.stderr)")
        #expect(!submitted.timedOut)

        let logs = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).filter { $0.hasPrefix("task-") }.sorted()
        #expect(logs.count == 3, "\(logs)")
        var shards: [String] = []
        for log in logs {
            let text = try String(contentsOfFile: scratch.path(log), encoding: .utf8)
            if let range = text.range(of: #"\(shard \d/3\)"#, options: .regularExpression) { shards.append(String(text[range])) }
            #expect(text.contains("1 processed, 0 skipped, 0 failed"), "\(log): \(text)")
        }
        #expect(shards.sorted() == ["(shard 0/3)", "(shard 1/3)", "(shard 2/3)"])

        let report = try RoadwatchBinary.run(["batch", "--report", scratch.path("out")])
        #expect(report.status == 0, "\(report.stderr)")
        #expect(try reportContent(scratch.path("out")).map { String($0.prefix { $0 != " " }) } == keys.map { "fleet/" + $0 })
        #expect(report.stdout.contains("3 files, 0 failed, 24 frames"), "\(report.stdout)")
    }
}
