import Foundation
import Testing
import TestKit
@testable import VideoIO

@Suite("Still images")
struct StillImageTests {
    @Test("PNG round trips are exact for RGB, 8-bit and 16-bit gray")
    func pngRoundTrips() throws {
        let scratch = try ScratchDirectory("png")
        var generator = SplitMix64(seed: 1)
        let rgb = Raster<UInt8>(width: 37, height: 23, channels: 3,
                                samples: (0..<(37 * 23 * 3)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try StillImage.writePNG(rgb, to: scratch.path("rgb.png"))
        #expect(try StillImage.readRGB(scratch.path("rgb.png")).samples == rgb.samples)

        let gray = Raster<UInt8>(width: 31, height: 17, channels: 1,
                                 samples: (0..<(31 * 17)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try StillImage.writePNG(gray, to: scratch.path("gray.png"))
        #expect(try StillImage.readGray8(scratch.path("gray.png")).samples == gray.samples)

        let deep = Raster<UInt16>(width: 19, height: 11, channels: 1,
                                  samples: (0..<(19 * 11)).map { _ in UInt16.random(in: 0...65535, using: &generator) })
        try StillImage.writePNG(deep, to: scratch.path("deep.png"))
        let back = try StillImage.readGray16(scratch.path("deep.png"))
        #expect(back.width == 19 && back.height == 11)
        #expect(back.samples == deep.samples)
    }

    @Test("JPEG snapshots: a smooth picture comes back close (full range), odd sizes work, gray is refused")
    func jpegSnapshots() throws {
        let scratch = try ScratchDirectory("jpeg")
        for (w, h) in [(64, 48), (33, 17), (101, 9)] {
            var samples = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h {
                for x in 0..<w {
                    let i = (y * w + x) * 3
                    samples[i] = UInt8(x * 255 / max(1, w - 1)); samples[i + 1] = UInt8(y * 255 / max(1, h - 1)); samples[i + 2] = 128
                }
            }
            let image = Raster<UInt8>(width: w, height: h, channels: 3, samples: samples)
            let path = scratch.path("s\(w)x\(h).jpg")
            try StillImage.writeJPEG(image, to: path, quality: 2)
            let back = try StillImage.readRGB(path)
            #expect(back.width == w && back.height == h)
            let error = zip(back.samples, samples).map { abs(Int($0) - Int($1)) }.reduce(0, +) / samples.count
            // Limited-range output would shift every sample by up to 16 levels; full range keeps the mean error small.
            #expect(error <= 6, "mean error \(error) at \(w)x\(h)")
        }
        try StillImage.writeJPEG(Raster<UInt8>(width: 1, height: 1, channels: 3, repeating: 200), to: scratch.path("one.jpg"))
        #expect(try StillImage.readRGB(scratch.path("one.jpg")).width == 1)
        #expect(throws: VideoIOError.self) {
            try StillImage.writeJPEG(Raster<UInt8>(width: 4, height: 4, channels: 1), to: scratch.path("gray.jpg"))
        }
    }

    @Test("a JPEG reads as RGB at its size; a ground-truth mask reads with its label values")
    func readsSharedImages() throws {
        let dev = Shared.path("data/road_anomaly_dev/frames")
        let name = "animals01_Guiguinto_railway_station_Calves"
        let photo = try StillImage.readRGB("\(dev)/\(name).jpg")
        #expect(photo.width == 1280 && photo.height == 720 && photo.channels == 3)
        let mean = photo.samples.reduce(0) { $0 + Int($1) } / photo.samples.count
        #expect((20...235).contains(mean), "implausible mean \(mean)")

        let labels = try StillImage.readGray8("\(dev)/\(name).labels/labels_semantic.png")
        #expect(labels.width == 1280 && labels.height == 720)
        let values = Set(labels.samples)
        #expect(values.contains(0) && values.contains(2), "label values \(values.sorted())")

        let mask = try StillImage.readGray8(Shared.path("data/videos/synthetic_fox_solidWhiteRight/masks/00100.png"))
        #expect(Set(mask.samples).isSubset(of: [0, 2]))
        #expect(mask.samples.contains(2))
    }

    @Test("reading a missing or broken image names the file")
    func badImages() throws {
        let scratch = try ScratchDirectory("badimg")
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: scratch.path("x.png")))
        for path in [scratch.path("none.png"), scratch.path("x.png")] {
            #expect {
                _ = try StillImage.readRGB(path)
            } throws: { error in
                (error as? VideoIOError)?.description.contains(path) == true
            }
        }
    }
}
