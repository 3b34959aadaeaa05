import Foundation
import ONNX
import Testing

/// ONNX's own node tests (the `onnx` Python package, pinned in .ci/run) through the loader and the operators.
@Suite("ONNX conformance: the onnx package's node tests")
struct ONNXConformanceTests {
    /// Every case passes or is refused at load in one line; none computes something else or fails after loading.
    /// The table goes to .build/onnx-conformance.md and to the output.
    @Test("every node test passes or is refused at load; none fails")
    func nodeTests() throws {
        guard let folder = ONNXConformance.locate() else {
            print("ONNX conformance skipped: the onnx Python package is not installed (pip install onnx==1.22.0) and ROADWATCH_ONNX_NODE_TESTS is not set")
            return
        }
        var suite = ONNXConformance(folder: folder)
        suite.run()
        #expect(suite.cases.count > 1000, "only \(suite.cases.count) node tests in \(folder)")
        let report = suite.report
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        try? report.write(to: root.appendingPathComponent(".build/onnx-conformance.md"), atomically: true, encoding: .utf8)
        print(report)
        for failure in suite.failures { Issue.record("\(failure.name) (\(failure.op)): \(failure.outcome)") }
        #expect(suite.failures.isEmpty, "\(suite.failures.count) node tests failed")
    }

    /// The comparison can fail: a value off by more than the tolerance, a wrong shape, an integer off by one.
    @Test("the comparison rejects values outside the suite's tolerances")
    func comparisonCanFail() {
        let expected = Value(shape: [2], floats: [1, 100])
        #expect(ONNXConformance.compare(Value(shape: [2], floats: [1, 100.05]), expected) == nil)
        #expect(ONNXConformance.compare(Value(shape: [2], floats: [1, 100.2]), expected) != nil)
        #expect(ONNXConformance.compare(Value(shape: [1, 2], floats: [1, 100]), expected) != nil)
        #expect(ONNXConformance.compare(Value(shape: [1], ints: [3]), Value(shape: [1], ints: [4])) != nil)
        #expect(ONNXConformance.compare(Value(shape: [1], floats: [.nan]), Value(shape: [1], floats: [.nan])) == nil)
    }
}
