import Foundation
import Testing
import TestKit
import ONNX

/// ONNX models that once trapped the process (found by `tools/fuzz onnx` and `tools/fuzz onnx-run`), kept in
/// Tests/FuzzCorpus: loading and preparing each at 1x3x16x16, as the fuzz target does, must throw an `ONNXError`.
@Suite("ONNX models the fuzzer found")
struct ONNXFuzzRegressionTests {
    @Test("every model the fuzzer crashed on is refused in one line",
          arguments: FuzzCorpus.regressions("onnx") + FuzzCorpus.regressions("onnx-run"))
    func refused(_ file: URL) throws {
        let error = try #require(throws: ONNXError.self) {
            let graph = try ONNXGraph(path: file.path)
            _ = try PreparedGraph(graph, inputShape: [1, 3, 16, 16], keep: graph.outputs)
        }
        #expect(!error.description.contains("\n"), "\(error)")
    }
}
