import Foundation
import Testing
@testable import Pipeline

/// The run summary's state is bounded however long the run: a fixed-size latency histogram, a track count.
@Suite("The run summary in constant memory")
struct BoundedSummaryTests {
    /// Nearest rank on the sorted values: what the summary computed before the histogram.
    static func exact(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[max(0, min(sorted.count - 1, rank))]
    }

    @Test("quantiles within 0.1% (and 1 µs) of the exact nearest rank; the maximum exact; the footprint does not grow")
    func quantiles() {
        var generator = SystemRandomNumberGenerator()
        // Latencies from 2 ms to 20 s, log-spread, as a loaded service sees them.
        let values = (0..<20_000).map { _ in 0.002 * pow(10_000, Double.random(in: 0...1, using: &generator)) }
        var histogram = LatencyHistogram()
        histogram.record(values[0])
        let footprint = histogram.footprintBytes
        for value in values.dropFirst() { histogram.record(value) }
        #expect(histogram.footprintBytes == footprint, "the histogram grew with the values")
        #expect(histogram.count == values.count)
        for p in [50.0, 95, 99] {
            let want = Self.exact(values, p), got = histogram.percentile(p)
            #expect(abs(got - want) <= want * 0.001 + 1e-6, "p\(p): \(got) vs exact \(want)")
        }
        #expect(abs(histogram.percentile(100) - values.max()!) <= 1e-6)
        #expect(LatencyHistogram().percentile(50) == 0)
        var summary = RunSummary(method: .default)
        summary.latencies = histogram
        #expect(summary.latency(percentile: 99) == histogram.percentile(99))
    }

    @Test("extreme latencies are clamped, not dropped: negative to 0, beyond an hour to an hour")
    func clamps() {
        var histogram = LatencyHistogram()
        histogram.record(-1)
        histogram.record(.infinity)
        histogram.record(90_000)
        #expect(histogram.count == 3)
        #expect(histogram.percentile(1) == 0 && abs(histogram.percentile(100) - 3600) < 3600 * 0.001)
    }

    @Test("distinct tracks counted by increasing ids equal the set's count, ids listed in any order within a frame")
    func trackCount() {
        // Each frame: old ids (seen before) in any order, new ids above every id so far, as TemporalThreshold gives them.
        var next = 1
        var seen = Set<Int>()
        var count = DistinctTrackCount()
        for frame in 0..<500 {
            var ids = Array(seen.shuffled().prefix(frame % 4))
            for _ in 0..<(frame % 3) {
                ids.append(next)
                next += 1
            }
            ids.shuffle()
            // A frame lists new ids in the order they were given, old ones anywhere between them.
            let newOnes = ids.filter { !seen.contains($0) }.sorted()
            var ordered: [Int] = []
            var newIterator = newOnes.makeIterator()
            for id in ids { ordered.append(seen.contains(id) ? id : newIterator.next()!) }
            for id in ordered {
                count.see(id)
                seen.insert(id)
            }
        }
        #expect(count.count == seen.count && seen.count > 300)
    }
}
