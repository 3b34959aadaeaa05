import Foundation
import Testing
import TestKit

@Suite("roadwatch models, through the binary")
struct ModelsCommandTests {
    @Test("list, fetch from the mirror, verify, and a tampered cache file caught by verify")
    func listFetchVerify() throws {
        let scratch = try ScratchDirectory("models")
        let environment = ["ROADWATCH_MODEL_MIRROR": Shared.path("models"), "XDG_CACHE_HOME": scratch.path("cache")]

        let before = try RoadwatchBinary.run(["models", "list"], environment: environment)
        #expect(before.status == 0)
        #expect(before.stdout.contains("espnetv2-cityscapes") && before.stdout.contains("bundled"))
        #expect(before.stdout.contains("espnet-cityscapes") && before.stdout.contains("downloaded on first use"))

        let fetch = try RoadwatchBinary.run(["models", "fetch", "espnet-cityscapes"], environment: environment)
        #expect(fetch.status == 0, "\(fetch.stderr)")
        let cached = scratch.path("cache/roadwatch/espnet-cityscapes/espnet_p_2_q_8.pth")
        #expect(FileManager.default.fileExists(atPath: cached))

        let verify = try RoadwatchBinary.run(["models", "verify"], environment: environment)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.components(separatedBy: ": ok").count == 3)

        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: cached))
        try handle.seek(toOffset: 1000)
        try handle.write(contentsOf: Data([0xAB, 0xCD]))
        try handle.close()
        let tampered = try RoadwatchBinary.run(["models", "verify"], environment: environment)
        #expect(tampered.status != 0)
        #expect(tampered.stdout.contains("espnet-cityscapes: FAILED"))

        let unknown = try RoadwatchBinary.run(["models", "fetch", "nonexistent"], environment: environment)
        #expect((1..<128).contains(unknown.status) && unknown.stderrLines.count == 1)
    }
}
