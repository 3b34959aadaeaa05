import Foundation
import Testing
import TestKit
@testable import Models

/// Weight files that once trapped the process (found by `tools/fuzz pth` and `tools/fuzz safetensors`), kept in
/// Tests/FuzzCorpus: each must now be refused with a one-line `WeightError`.
@Suite("Weight files the fuzzer found")
struct WeightFuzzRegressionTests {
    @Test("every .pth the fuzzer crashed on is refused in one line", arguments: FuzzCorpus.regressions("pth"))
    func pth(_ file: URL) throws {
        #expect(throws: WeightError.self) { try TorchCheckpoint.load(path: file.path) }
    }

    @Test("every safetensors file the fuzzer crashed on is refused in one line", arguments: FuzzCorpus.regressions("safetensors"))
    func safetensors(_ file: URL) throws {
        #expect(throws: WeightError.self) { try SafeTensorsFile(path: file.path).allFloats() }
    }

    @Test("a zip checkpoint whose Zip64 record puts the directory past 2^63 is refused before ZIPFoundation seeks there")
    func zip64DirectoryOffset() throws {
        let file = try #require(FuzzCorpus.regressions("pth").first { $0.lastPathComponent == "regress-zip-offset-past-int64.pth" })
        let error = try #require(throws: WeightError.self) { try TorchCheckpoint.load(path: file.path) }
        #expect(error.message.contains("central directory"), "\(error)")
    }
}
