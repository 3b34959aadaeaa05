import Foundation
import HummingbirdCore
@testable import Models
import ONNX
import Service
import Telemetry
@testable import Web

/// One libFuzzer entry point for every parser input reaches, chosen by `ROADWATCH_FUZZ_TARGET` (`tools/fuzz`
/// sets it). A parser may refuse its input with any error; only a trap, a sanitizer report or a hang is a finding.
enum FuzzTarget: String, CaseIterable {
    case onnx, onnxRun = "onnx-run", safetensors, pth, config, range, query
    case mp4, gpmf, camm, freegps, nmea, srt, gpx

    static let chosen: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["ROADWATCH_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = allCases.map(\.rawValue).joined(separator: ", ")
            FileHandle.standardError.write(Data("ROADWATCH_FUZZ_TARGET must be one of: \(names)\n".utf8))
            exit(2)
        }
        return target
    }()

    /// A file for the readers that only take a path (the zip checkpoint); one per process, as libFuzzer's
    /// workers are processes.
    static let scratch = FileManager.default.temporaryDirectory
        .appendingPathComponent("roadwatch-fuzz-\(ProcessInfo.processInfo.processIdentifier).pth").path

    func run(_ data: Data) {
        let text = String(decoding: data, as: UTF8.self)
        switch self {
        case .onnx:
            // A folder that does not exist: external data names files that are never there.
            _ = try? ONNXGraph(data: data, path: "/nonexistent/fuzz/model.onnx")
        case .onnxRun:
            guard let graph = try? ONNXGraph(data: data, path: "/nonexistent/fuzz/model.onnx"),
                  graph.nodes.count <= 64 else { return }
            _ = try? PreparedGraph(graph, inputShape: [1, 3, 16, 16], keep: graph.outputs)
        case .safetensors:
            _ = try? SafeTensorsFile(data: data, name: "fuzz.safetensors").allFloats()
        case .pth:
            if data.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
                guard FileManager.default.createFile(atPath: Self.scratch, contents: data) else { return }
                _ = try? TorchCheckpoint.load(path: Self.scratch)
            } else {
                _ = try? TorchCheckpoint.loadLegacy(bytes: [UInt8](data), name: "fuzz.pth")
            }
        case .config:
            _ = try? WatchConfig.parse(text, path: "fuzz.yaml", environment: ["CAMERA": "rtsp://camera/stream"])
        case .range:
            // The first four bytes are the file's size, the rest the header.
            guard data.count >= 4 else { return }
            let size = data.prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
            let header = String(decoding: data.dropFirst(4), as: UTF8.self)
            if case .part(let first, let last) = RangeRequest.parse(header, size: size) {
                precondition(0 <= first && first <= last && last < size, "range \(first)-\(last) outside a file of \(size)")
            }
            _ = HTTPDate.parse(header)
        case .query:
            let parameters = URI(text).queryParameters
            if case .success(let query) = EventQuery.parse({ parameters.get($0).map { String($0) } }) {
                precondition((1...1000).contains(query.limit) && (query.after?.isFinite ?? true), "query \(query) out of range")
                _ = Tokens.same(query.camera ?? "", text)
            }
        case .mp4:
            _ = try? GPSSource.readEmbedded(data: data, name: "fuzz.mp4")
        case .gpmf:
            _ = try? GPMF.parse(data)
            _ = try? GPMF.fixes(in: data, sampleTime: 1, sampleDuration: 1)
        case .camm:
            _ = try? CAMM.fixes(in: data, sampleTime: 1, sampleDuration: 1, creationTime: Date(timeIntervalSince1970: 1.7e9))
        case .freegps:
            _ = try? FreeGPS.blockTable(data)
            _ = try? FreeGPS.fix(inBlock: data)
        case .nmea:
            _ = NMEA.fixes(in: text)
        case .srt:
            _ = try? DJISubtitles.parse(text)
        case .gpx:
            _ = try? GPX.parse(data)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    FuzzTarget.chosen.run(data)
    return 0
}

/// libFuzzer's driver, which its own `main` would call: SwiftPM links an executable's entry point as
/// `<module>_main`, so the target provides that and hands over. Pointer arguments and an `Int32` result pass
/// the same way under Swift's and C's conventions on the platforms libFuzzer runs on.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("RoadwatchFuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc, argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzOneInput)
}
