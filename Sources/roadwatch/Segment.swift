import ArgumentParser
import Foundation
import Models
import Overlay
import VideoIO

/// `roadwatch segment`: one image through the segmentation network.
struct Segment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment one image: the class colours blended over it, and optionally the class map.",
        discussion: """
            The image is resized to the network size (bilinear on the float image), run through the model, \
            and the logits are resized back to the image's own size before the per-pixel argmax.
            """
    )

    @Argument(help: "Image (JPEG or PNG).")
    var image: String

    @Option(name: .shortAndLong, help: "Output PNG: the segmentation blended over the image (needed unless --class-map is given).")
    var output: String?

    @Option(help: "Also write the class indices as an 8-bit gray PNG at the image's size.")
    var classMap: String?

    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        guard output != nil || classMap != nil else { throw ValidationError("give --output, --class-map or both") }
    }

    func run() async throws {
        var picture = try StillImage.readRGB(image)
        let (loaded, size) = try await modelOptions.load()
        let input = Preprocessor(normalization: loaded.descriptor.normalization)
            .tensor(rgb: picture.samples, sourceWidth: picture.width, sourceHeight: picture.height,
                    width: size.width, height: size.height)
        let (_, logits) = loaded.network.forward(input)
        let classes = ClassMap.from(logits: logits, width: picture.width, height: picture.height)
        if let classMap {
            try StillImage.writePNG(Raster(width: picture.width, height: picture.height, channels: 1, samples: classes), to: classMap)
        }
        if let output {
            SegmentationTint.blend(&picture, classes: classes, palette: loaded.descriptor.palette, alpha: 0.5)
            try StillImage.writePNG(picture, to: output)
        }
        var counts = [Int](repeating: 0, count: loaded.descriptor.classNames.count)
        for c in classes where Int(c) < counts.count { counts[Int(c)] += 1 }
        let top = counts.enumerated().sorted { $0.element > $1.element }.prefix(4)
            .map { "\(loaded.descriptor.classNames[$0.offset]) \(String(format: "%.1f", 100 * Double($0.element) / Double(classes.count)))%" }
        let written = [output, classMap].compactMap { $0 }.joined(separator: " and ")
        print("wrote \(written) (\(loaded.descriptor.name) at \(size)): \(top.joined(separator: ", "))")
    }
}
