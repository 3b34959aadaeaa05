import Foundation
import Testing
import TestKit

/// The settings are declared once; the reference in docs/ is the binary's own output, and the YAML reads the
/// same keys (old spellings with a warning naming the new one).
@Suite("roadwatch config reference")
struct ConfigReferenceTests {
    @Test("docs/configuration.md is exactly what `roadwatch config reference` prints")
    func documentIsCurrent() throws {
        let outcome = try RoadwatchBinary.run(["config", "reference"], timeout: 60)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let file = try String(contentsOfFile: Shared.repositoryRoot.appendingPathComponent("docs/configuration.md").path, encoding: .utf8)
        #expect(outcome.stdout == file, "docs/configuration.md is stale: run `roadwatch config reference > docs/configuration.md`")
        for key in ["novelty_threshold", "memory_capacity", "scene_cut_factor", "minimum_region_area", "tau"] {
            #expect(file.contains("| `\(key)` |"), "\(key) is missing from the reference")
        }
    }

    @Test("a YAML key and --set refuse the same bad value naming the key; an old key name works with a warning")
    func sameKeysEverywhere() throws {
        let scratch = try ScratchDirectory("configkeys")
        let clip = Shared.path("data/videos/solidWhiteRight.mp4")
        func check(_ camera: String) throws -> RoadwatchBinary.Outcome {
            let path = scratch.path("watch.yaml")
            try "output: \(scratch.path("out"))\ncameras:\n  road:\n    input: \(clip)\n\(camera)".write(toFile: path, atomically: true, encoding: .utf8)
            return try RoadwatchBinary.run(["watch", path, "--check"], timeout: 60)
        }
        let bad = try check("    smoothing: 0\n")
        #expect(bad.status == 64 && bad.stderr.contains("smoothing must be (0, 1]"), "\(bad.stderr)")
        let flag = try RoadwatchBinary.run(["run", clip, "-o", scratch.path("o.mp4"), "--set", "smoothing=0"], timeout: 60)
        #expect(flag.status != 0 && flag.stderr.contains("smoothing must be (0, 1]"), "\(flag.stderr)")
        let rule = try check("    alarm: loud\n")
        #expect(rule.status == 64 && rule.stderr.contains("alarm must be one of memory, change, clusters"), "\(rule.stderr)")
        let old = try check("    scene_cut: 3\n    min_region_area: 10\n")
        #expect(old.status == 0, "\(old.stderr)")
        #expect(old.stderr.contains("'scene_cut_factor'") && old.stderr.contains("'minimum_region_area'"), "\(old.stderr)")
    }
}
