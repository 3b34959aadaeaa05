import Foundation
import Models
import Pipeline
import Testing
import TestKit
import VideoIO

// README: begin
/// Runs the monitor over RGB frames the caller already has (3 bytes a pixel) and prints each decision.
func watch(_ pictures: [[UInt8]], width: Int, height: Int) async throws -> RunSummary {
    let model = try await ModelLoader.load(ModelRegistry.defaultName)  // the bundled ESPNetv2
    let monitor = try Monitor(model: model, configuration: .init(size: FrameSize(width: 512, height: 256)))
    let frames = pictures.enumerated().map { index, rgb in
        VideoFrame(index: index, pts: Int64(index), timeBase: Rational(1, 25), sourceSize: FrameSize(width: width, height: height),
                   image: RGBImage(width: width, height: height, channels: 3, samples: rgb))
    }
    return try await monitor.run(frames) { done in  // every frame, in order, once through all the stages
        let boxes = done.regions.map { "#\($0.id) at \($0.region.box)" }  // tracked regions: x, y, width, height
        print("frame \(done.frame.index): \(done.isAnomalous ? "ANOMALY" : "clear") \(boxes.joined(separator: " "))")
        let _: RGBImage = done.annotated  // the frame with heat map, outlines, boxes and HUD drawn
    }
}
// README: end

@Suite("The Swift example of docs/development.md")
struct UseFromSwiftTests {
    @Test("the docs' example is this file's, word for word")
    func sameAsReadme() throws {
        let readme = try String(contentsOf: Shared.repositoryRoot.appendingPathComponent("docs/development.md"), encoding: .utf8)
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        func block(_ text: String, from start: String, to end: String) -> String? {
            guard let a = text.range(of: start), let b = text.range(of: end, range: a.upperBound..<text.endIndex) else { return nil }
            return String(text[a.upperBound..<b.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let example = try #require(block(source, from: "// README: begin", to: "// README: end"))
        let section = try #require(block(readme + "\n## ", from: "## Use it from Swift", to: "\n## "))
        let code = try #require(block(section, from: "```swift\nimport Models\nimport Pipeline\nimport VideoIO\n", to: "```"))
        #expect(code == example)
        #expect(example.split(separator: "\n").count + 3 <= 20, "the docs promise at most 20 lines")
    }

    @Test("the example runs: 30 frames of the sample clip, every one decided and drawn")
    func runs() async throws {
        let source = try await VideoSource.open(Shared.repositoryRoot.appendingPathComponent("samples/solidWhiteRight.mp4").path)
        var pictures: [[UInt8]] = []
        var size = FrameSize(width: 0, height: 0)
        for try await frame in source {
            pictures.append(frame.image.samples)
            size = FrameSize(width: frame.image.width, height: frame.image.height)
            if pictures.count == 30 { break }
        }
        await source.close()
        let summary = try await watch(pictures, width: size.width, height: size.height)
        #expect(summary.frames == 30)
        #expect(summary.firstIterations > 0 && summary.meanWarmIterations > 0)
        #expect(summary.stageSeconds.count == 5 && summary.stageSeconds.allSatisfy { $0 > 0 })
    }
}
