import Histogram

/// Decoded-to-written latencies as a fixed-size HDR histogram (microseconds, 3 significant digits, up to an
/// hour): its memory does not grow with the frames recorded, so a service can run for months, and a quantile
/// is within 0.1% of the exact one (the maximum is exact).
public struct LatencyHistogram: Sendable, Equatable {
    /// Latencies above this are counted as this (an hour: a frame that late is a fault, not a measurement).
    static let highest: UInt64 = 3_600_000_000
    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highest,
                                              numberOfSignificantValueDigits: .three)

    public init() {}

    /// A histogram of `seconds` (tests, and a summary read back from its three percentiles).
    public init(_ seconds: [Double]) {
        for value in seconds { record(value) }
    }

    /// Adds one latency in seconds; negative and non-finite values count as 0 and the highest.
    public mutating func record(_ seconds: Double) {
        let micros = seconds.isFinite ? (seconds * 1e6).rounded() : Double(Self.highest)
        _ = histogram.record(UInt64(min(Double(Self.highest), max(0, micros))))
    }

    public var count: Int { Int(histogram.totalCount) }
    /// Bytes the counts take: fixed when the histogram is made, whatever is recorded.
    public var footprintBytes: Int { histogram.estimatedFootprintInBytes }
    public var isEmpty: Bool { histogram.totalCount == 0 }

    /// The latency percentile `p` (0-100) in seconds, nearest rank (0 when empty); 100 is the exact maximum.
    public func percentile(_ p: Double) -> Double {
        guard !isEmpty else { return 0 }
        return Double(histogram.valueAtPercentile(min(100, max(0, p)))) / 1e6
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.count == b.count && [50.0, 99, 100].allSatisfy { a.percentile($0) == b.percentile($0) }
    }
}
