import Foundation
import XCTest

/// Where the project's shared test data lives: `$ROADWATCH_SHARED`, else `../shared` beside the package root.
/// The test folder may be a symlink (the scratch package), so the path is resolved first.
enum SharedData {
    static let root: URL = {
        if let path = ProcessInfo.processInfo.environment["ROADWATCH_SHARED"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let packageRoot = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// The path of a shared file, or an XCTSkip when it is missing.
    static func require(_ relative: String) throws -> String {
        let path = path(relative)
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("shared test file missing: \(path)") }
        return path
    }
}

/// Running the external programs used as second opinions (ExifTool, ffmpeg, ffprobe).
enum Tool {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func which(_ name: String) -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return paths.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The program's path, or an XCTSkip naming the package that provides it.
    static func require(_ name: String, package: String) throws -> String {
        guard let path = which(name) else { throw XCTSkip("\(name) is not installed (apt-get install \(package))") }
        return path
    }

    static func run(_ program: String, _ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        // Standard error goes to a file, so reading standard output to its end cannot deadlock on a full pipe.
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("telemetry-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer { try? errHandle.close() }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errData = (try? Data(contentsOf: errURL)) ?? Data()
        return Run(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errData, as: UTF8.self))
    }

    static func exiftool() throws -> String { try require("exiftool", package: "libimage-exiftool-perl") }
    static func ffmpeg() throws -> String { try require("ffmpeg", package: "ffmpeg") }
    static func ffprobe() throws -> String { try require("ffprobe", package: "ffmpeg") }

    /// Runs ffmpeg quietly and fails the test with its message when it fails.
    static func ffmpegRun(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let run = try run(try ffmpeg(), ["-hide_banner", "-loglevel", "error", "-y"] + arguments)
        guard run.status == 0 else {
            XCTFail("ffmpeg \(arguments.joined(separator: " ")) failed: \(run.stderr)", file: file, line: line)
            throw XCTSkip("ffmpeg failed")
        }
    }

    /// ExifTool's GPS fixes grouped by document (one document per sample of a timed-metadata track), read with
    /// `-ee -n -G3 -a -s`: every fix, in order, with the document's SampleTime when it has one.
    static func exifFixes(_ path: String) throws -> [(sampleTime: Double?, fixes: [(lat: Double, lon: Double)])] {
        // Asking for the tags by name makes ExifTool keep one value per document; the full listing keeps all.
        let run = try run(try exiftool(), ["-ee", "-n", "-G3", "-a", "-s", path])
        var docs: [String: (Double?, [(Double, Double)])] = [:]
        var order: [String] = []
        var pendingLat: [String: Double] = [:]
        for line in run.stdout.split(separator: "\n") {
            // "[Doc3]          GPSLatitude                     : 33.1267405"
            guard line.hasPrefix("[Doc"), let close = line.firstIndex(of: "]") else { continue }
            let doc = String(line[line.index(after: line.startIndex)..<close])
            let rest = line[line.index(after: close)...].split(separator: ":", maxSplits: 1)
            guard rest.count == 2 else { continue }
            let tag = rest[0].trimmingCharacters(in: .whitespaces)
            guard let value = Double(rest[1].trimmingCharacters(in: .whitespaces)) else { continue }
            if docs[doc] == nil { docs[doc] = (nil, []); order.append(doc) }
            switch tag {
            case "SampleTime": docs[doc]!.0 = value
            case "GPSLatitude": pendingLat[doc] = value
            case "GPSLongitude":
                if let lat = pendingLat.removeValue(forKey: doc) { docs[doc]!.1.append((lat, value)) }
            default: break
            }
        }
        return order.compactMap { doc in
            guard let entry = docs[doc], !entry.1.isEmpty else { return nil }
            return (entry.0, entry.1.map { (lat: $0.0, lon: $0.1) })
        }
    }
}

/// A fresh folder for one test's files, removed when dropped.
final class ScratchFolder {
    let url: URL

    init(_ name: String = "telemetry") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("roadwatch-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A small deterministic random generator, so the corruption tests flip the same bytes on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        // SplitMix64.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
