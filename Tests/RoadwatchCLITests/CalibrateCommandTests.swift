import Foundation
import Testing
import TestKit

/// `roadwatch calibrate` writes a memory that `run --memory` takes at its size and refuses at another, in one line.
@Suite("roadwatch calibrate and --memory")
struct CalibrateCommandTests {
    @Test("a memory from a clean clip is used at its size; another size, a damaged file and a missing one are one line each")
    func calibrateAndUse() throws {
        let scratch = try ScratchDirectory("calibrate")
        let clean = scratch.path("clean.mp4")
        // Two seconds of the clean MIT clip: enough drivable road for a small memory.
        let cut = try RoadwatchBinary.runProgram(URL(fileURLWithPath: "/usr/bin/ffmpeg"),
            ["-loglevel", "error", "-y", "-i", Shared.path("data/videos/solidWhiteRight.mp4"), "-t", "2", "-an", clean], timeout: 60)
        #expect(cut.status == 0, "\(cut.stderr)")
        let memory = scratch.path("road.rwmem")
        let made = try RoadwatchBinary.run(["calibrate", clean, "-o", memory, "--size", "256x128", "--vectors", "64", "--quiet"], timeout: 300)
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.contains("64 vectors of 512"), "\(made.stdout)")
        let size = (try FileManager.default.attributesOfItem(atPath: memory)[.size] as? Int) ?? 0
        #expect(size > 64 * 512 * 2 && size < 64 * 512 * 2 + 4096, "\(size) bytes")

        let out = scratch.path("out.mp4")
        let used = try RoadwatchBinary.run(["run", clean, "-o", out, "--size", "256x128", "--alarm", "memory", "--memory", memory,
                                            "--quiet", "--no-events-log"], timeout: 300)
        #expect(used.status == 0, "\(used.stderr)")

        func refused(_ arguments: [String], saying: String) throws {
            let outcome = try RoadwatchBinary.run(arguments, timeout: 300)
            #expect((1..<128).contains(outcome.status), "exit \(outcome.status)")
            #expect(outcome.stderrLines.count == 1 && outcome.stderr.contains(saying), "\(outcome.stderr)")
        }
        try refused(["run", clean, "-o", out, "--size", "512x256", "--alarm", "memory", "--memory", memory, "--quiet"], saying: "256x128")
        let damaged = scratch.path("damaged.rwmem")
        try Data(try Data(contentsOf: URL(fileURLWithPath: memory)).prefix(100)).write(to: URL(fileURLWithPath: damaged))
        try refused(["run", clean, "-o", out, "--size", "256x128", "--memory", damaged, "--quiet"], saying: damaged)
        try refused(["run", clean, "-o", out, "--memory", scratch.path("nope.rwmem"), "--quiet"], saying: "nope.rwmem")
        try refused(["calibrate", scratch.path("missing.mp4"), "-o", memory], saying: "missing.mp4")
    }
}
