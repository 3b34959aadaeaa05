import Foundation
import Testing
@testable import Anomaly

/// The calibrated memory: its file, its checks, its coreset, and its use as the road memory's prior.
@Suite("Calibrated memory of normal road")
struct MemoryBankTests {
    static func bank(count: Int = 3, dimension: Int = 4, model: String = "espnetv2-cityscapes") -> MemoryBank {
        var vectors = [Float](repeating: 0, count: count * dimension)
        for r in 0..<count { vectors[r * dimension + r % dimension] = 1 }
        vectors[1] = 0.333
        return MemoryBank(header: .init(model: model, modelSHA256: "ab12", width: 512, height: 256, dimension: dimension,
                                        count: count, sources: ["a.mp4"], candidates: 10), vectors: vectors)
    }

    @Test("a file reads back as written (half precision), and damaged files are refused in one line")
    func roundTrip() throws {
        let bank = Self.bank()
        let data = try bank.encoded()
        let back = try MemoryBank(data: data, name: "m.rwmem")
        #expect(back.header == bank.header)
        for (a, b) in zip(back.vectors, bank.vectors) { #expect(abs(a - b) <= 0.001) }
        var wrongVersion = data
        wrongVersion[7] = 9
        let damaged: [(Data, String)] = [(Data("hello".utf8), "not a roadwatch memory"), (data.prefix(data.count - 1), "bytes of vectors"),
                                         (wrongVersion, "format version"), (data.prefix(14), "truncated"), (Data(), "not a roadwatch memory")]
        for (bytes, says) in damaged {
            do {
                _ = try MemoryBank(data: bytes, name: "m.rwmem")
                Issue.record("accepted a damaged file (\(says))")
            } catch {
                #expect(error.description.contains(says) && !error.description.contains("\n"), "\(error.description)")
            }
        }
    }

    @Test("a memory made for another model or size is refused, naming both")
    func refusesOtherModels() throws {
        let bank = Self.bank()
        try bank.check(model: "espnetv2-cityscapes", sha256: "ab12", width: 512, height: 256, dimension: 4, name: "m")
        #expect(throws: MemoryBankError.self) { try bank.check(model: "espnet-cityscapes", sha256: "ab12", width: 512, height: 256, dimension: 4, name: "m") }
        #expect(throws: MemoryBankError.self) { try bank.check(model: "espnetv2-cityscapes", sha256: "ff00", width: 512, height: 256, dimension: 4, name: "m") }
        do {
            try bank.check(model: "espnetv2-cityscapes", sha256: "ab12", width: 1024, height: 512, dimension: 4, name: "m")
            Issue.record("accepted another size")
        } catch {
            #expect(error.description.contains("512x256") && error.description.contains("1024x512"))
        }
    }

    @Test("the coreset takes one vector from each of five far-apart groups, and is the same for a seed")
    func coresetCovers() {
        let d = 32, groups = 5, perGroup = 200
        var random = SeededGenerator(seed: 3)
        var points = [Float]()
        for g in 0..<groups {
            for _ in 0..<perGroup {
                var v = [Float](repeating: 0, count: d)
                v[g] = 10
                for c in 0..<d { v[c] += Float(random.unit() - 0.5) * 0.5 }
                points += v
            }
        }
        let chosen = MemoryBank.coreset(points, count: groups * perGroup, dimension: d, target: groups, projected: 16, seed: 1)
        #expect(Set(chosen.map { $0 / perGroup }).count == groups, "\(chosen)")
        #expect(chosen == MemoryBank.coreset(points, count: groups * perGroup, dimension: d, target: groups, projected: 16, seed: 1))
        #expect(MemoryBank.coreset(Array(points.prefix(3 * d)), count: 3, dimension: d, target: 5) == [0, 1, 2])
    }

    @Test("with a prior that holds the object's look, the object is not novel; without it, it is")
    func priorCovers() {
        let d = RoadMemoryTests.d, gw = RoadMemoryTests.gw, gh = RoadMemoryTests.gh
        var objectLook = [Float](repeating: 0, count: d)
        objectLook[d - 1] = 1
        let prior = MemoryBank(header: .init(model: "m", modelSHA256: "", width: 1, height: 1, dimension: d, count: 1,
                                             sources: [], candidates: 1), vectors: objectLook)
        let object: Set<Int> = [2 * gw + 5, 3 * gw + 6]
        func objectNovelty(prior: MemoryBank?) -> Float {
            var memory = RoadMemory(settings: RoadMemory.Settings(capacity: 256, insertPerTick: 16, warmUp: 1, commitDelay: 1),
                                    interval: 0.1, prior: prior)
            var random = SeededGenerator(seed: 1)
            var seen: [Float] = []
            for t in 0..<80 {
                let present = t >= 40 ? object : []
                let reading = memory.step(RoadMemoryTests.frame(t, object: present, random: &random), drivable: RoadMemoryTests.everywhere,
                                          gridWidth: gw, gridHeight: gh, time: Double(t) * 0.1)
                if let novelty = reading.novelty, t >= 40 { seen += object.map { novelty[$0] } }
            }
            return seen.sorted()[seen.count / 2]
        }
        let without = objectNovelty(prior: nil), with = objectNovelty(prior: prior)
        #expect(without > 5, "without the prior: \(without)")
        #expect(with < 2, "with the prior: \(with)")
    }
}
