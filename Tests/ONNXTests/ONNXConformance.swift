import Foundation
import ONNX

/// ONNX's own backend node tests (`onnx/backend/test/data/node/<case>/model.onnx` with
/// `test_data_set_N/{input,output}_K.pb`), run through the loader and the operators.
///
/// Each case ends one of three ways: passed (every output within the suite's tolerances), refused at load (the
/// loader names the node and what it lacks), or failed (it loaded, and then threw or computed something else).
/// Failed must stay 0: a form the runner cannot compute exactly belongs in the loader's refusals.
struct ONNXConformance {
    /// The suite's tolerances for floating-point outputs (onnx/backend/test/runner); integers and booleans exact.
    static let rtol: Float = 1e-3, atol: Float = 1e-7

    enum Outcome { case passed, refused(String), failed(String) }

    struct Case {
        var name: String
        /// The operator the case tests: its node's type, or the set of types of an expanded function body.
        var op: String
        var outcome: Outcome
    }

    let folder: String
    private(set) var cases: [Case] = []

    /// The node tests' folder: ROADWATCH_ONNX_NODE_TESTS, or the installed `onnx` Python package's; nil if neither.
    static func locate() -> String? {
        if let given = ProcessInfo.processInfo.environment["ROADWATCH_ONNX_NODE_TESTS"], !given.isEmpty { return given }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import onnx, os; print(os.path.dirname(onnx.__file__))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let root = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let folder = root + "/backend/test/data/node"
        return FileManager.default.fileExists(atPath: folder) ? folder : nil
    }

    init(folder: String) { self.folder = folder }

    /// Runs every case whose name contains `filter` (all when nil).
    mutating func run(filter: String? = nil) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        for name in names where filter.map({ name.contains($0) }) ?? true {
            let directory = folder + "/" + name
            guard FileManager.default.fileExists(atPath: directory + "/model.onnx") else { continue }
            let types = (try? ONNXGraph.operatorTypes(path: directory + "/model.onnx")) ?? []
            let distinct = Array(Set(types)).sorted()
            let op = distinct.count == 1 ? distinct[0] : "(function bodies)"
            cases.append(Case(name: name, op: op, outcome: Self.runCase(directory)))
        }
    }

    static func runCase(_ directory: String) -> Outcome {
        let graph: ONNXGraph
        do {
            graph = try ONNXGraph(path: directory + "/model.onnx")
        } catch {
            return .refused(error.description.replacingOccurrences(of: "'\(directory)/model.onnx': ", with: ""))
        }
        let sets = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("test_data_set_") }.sorted()
        guard !sets.isEmpty else { return .failed("no test data") }
        for set in sets {
            let data = directory + "/" + set
            do {
                var feeds: [String: Value] = [:]
                for (index, input) in graph.inputs.enumerated() {
                    feeds[input.name] = try ONNXGraph.tensor(file: data + "/input_\(index).pb")
                }
                let produced = try graph.evaluate(feeds)
                for (index, name) in graph.outputs.enumerated() {
                    let expected = try ONNXGraph.tensor(file: data + "/output_\(index).pb")
                    guard let value = produced[name] else { return .failed("\(set): output '\(name)' missing") }
                    if let difference = compare(value, expected) { return .failed("\(set): output '\(name)': \(difference)") }
                }
            } catch {
                return .failed("\(set): \(error.description.replacingOccurrences(of: "'\(directory)/model.onnx': ", with: ""))")
            }
        }
        return .passed
    }

    /// Nil when `value` matches `expected`; else the first difference.
    static func compare(_ value: Value, _ expected: Value) -> String? {
        guard value.shape == expected.shape else { return "shape \(value.shape), expected \(expected.shape)" }
        if let ints = expected.ints {
            if let got = value.ints {
                if let i = ints.indices.first(where: { ints[$0] != got[$0] }) { return "[\(i)] = \(got[i]), expected \(ints[i])" }
                return nil
            }
            let got = value.floats
            if let i = ints.indices.first(where: { Float(ints[$0]) != got[$0] }) { return "[\(i)] = \(got[i]), expected \(ints[i])" }
            return nil
        }
        let want = expected.floats, got = value.floatValues
        for i in want.indices {
            let a = got[i], e = want[i]
            if a.isNaN && e.isNaN { continue }
            if a == e { continue }  // infinities of the same sign
            if !(abs(a - e) <= atol + rtol * abs(e)) { return "[\(i)] = \(a), expected \(e)" }
        }
        return nil
    }

    struct Row { var cases = 0, passed = 0, refused = 0, failed = 0 }

    var rows: [(op: String, row: Row)] {
        var rows: [String: Row] = [:]
        for c in cases {
            rows[c.op, default: Row()].cases += 1
            switch c.outcome {
            case .passed: rows[c.op]!.passed += 1
            case .refused: rows[c.op]!.refused += 1
            case .failed: rows[c.op]!.failed += 1
            }
        }
        return rows.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    var failures: [Case] { cases.filter { if case .failed = $0.outcome { true } else { false } } }

    /// The table (per operator: cases, passed, refused at load, failed), then every refusal and failure in one line.
    var report: String {
        var lines = ["# ONNX node tests", "", "From `\(folder)`: \(cases.count) cases, tolerances rtol \(Self.rtol), atol \(Self.atol) for floats, exact for integers and booleans.", ""]
        lines.append("| operator | cases | passed | refused at load | failed |")
        lines.append("|---|---:|---:|---:|---:|")
        var total = Row()
        for (op, row) in rows {
            lines.append("| \(op) | \(row.cases) | \(row.passed) | \(row.refused) | \(row.failed) |")
            total.cases += row.cases; total.passed += row.passed; total.refused += row.refused; total.failed += row.failed
        }
        lines.append("| **all** | \(total.cases) | \(total.passed) | \(total.refused) | \(total.failed) |")
        lines += ["", "## Failed", ""]
        for c in cases { if case .failed(let why) = c.outcome { lines.append("- \(c.name): \(why)") } }
        lines += ["", "## Refused at load", ""]
        for c in cases { if case .refused(let why) = c.outcome { lines.append("- \(c.name): \(why)") } }
        return lines.joined(separator: "\n") + "\n"
    }
}
