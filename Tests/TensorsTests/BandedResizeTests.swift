import Testing
@testable import Tensors

@Suite("Resize, 3x3 convolution and adaptive pooling a band of rows at a time")
struct BandedResizeTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var channels: Int, outPerGroup: Int, height: Int, width: Int, scale: Double, dilation: Int
        var testDescription: String { "\(channels)ch x\(outPerGroup) \(width)x\(height) scale \(scale) dilation \(dilation)" }
    }

    static let cases = [
        Case(channels: 10, outPerGroup: 1, height: 32, width: 64, scale: 2.0, dilation: 1),
        Case(channels: 10, outPerGroup: 1, height: 33, width: 61, scale: 1.5, dilation: 1),
        Case(channels: 4, outPerGroup: 2, height: 17, width: 23, scale: 2.0, dilation: 2),
        Case(channels: 3, outPerGroup: 1, height: 7, width: 9, scale: 1.5, dilation: 1),
    ]

    @Test("equal, value for value, to resizing, convolving and pooling the whole map", arguments: cases)
    func equalToWhole(_ c: Case) {
        var generator = OpsTests.Generator(state: UInt64(c.height * 131 + c.width))
        let x = Tensor(shape: [c.channels, c.height, c.width], values: generator.values(c.channels * c.height * c.width))
        let groups = c.channels, outChannels = c.channels * c.outPerGroup
        let conv = Conv2D(inChannels: c.channels, outChannels: outChannels, kernel: (3, 3),
                          padding: (c.dilation, c.dilation), dilation: (c.dilation, c.dilation), groups: groups,
                          weight: generator.values(outChannels * 9), bias: generator.values(outChannels))
        let bh = Int((Double(c.height) * c.scale).rounded(.up)), bw = Int((Double(c.width) * c.scale).rounded(.up))
        let arena = Arena()
        let whole = Tensor(shape: [outChannels, bh, bw])
        conv.forward(resizing: x, toHeight: bh, width: bw, alignCorners: true, into: whole, arena: arena, name: "whole")
        let expected = Tensor(shape: [outChannels, c.height, c.width])
        Pooling.adaptiveAverage(whole, into: expected)
        for bandRows in [1, 3, 16, 1000] {
            // Into a channel view of a larger tensor, as the pyramid writes into its concatenation.
            let cat = Tensor(shape: [outChannels + 2, c.height, c.width], values: [Float](repeating: 7, count: (outChannels + 2) * c.height * c.width))
            let part = Tensor(channelsOf: cat, 1..<(outChannels + 1))
            conv.forward(resizing: x, toHeight: bh, width: bw, alignCorners: true, poolingInto: part, bandRows: bandRows,
                         arena: arena, name: "banded")
            #expect(part.array == expected.array, "\(bandRows) rows a band")
            #expect(cat.channelBuffer(0).allSatisfy { $0 == 7 } && cat.channelBuffer(outChannels + 1).allSatisfy { $0 == 7 })
        }
    }
}
