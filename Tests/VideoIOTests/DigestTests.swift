import Foundation
import Testing
import TestKit
@testable import VideoIO

@Suite("SHA-256 through libavutil")
struct DigestTests {
    @Test("the FIPS 180-2 examples: empty input, \"abc\", and the 448-bit message fed in two pieces")
    func standardVectors() {
        #expect(SHA256Digest().hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var abc = SHA256Digest()
        abc.update(Data("abc".utf8))
        #expect(abc.hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var long = SHA256Digest()
        long.update(Data("abcdbcdecdefdefgefghfghighij".utf8))
        long.update(Data("hijkijkljklmklmnlmnomnopnopq".utf8))
        #expect(long.hex() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("a file larger than one read (the 2.6 MB fox clip) hashes as coreutils' sha256sum does")
    func fileAgainstCoreutils() throws {
        let clip = Shared.path("data/videos/solidWhiteRight.mp4")
        let tool = try #require(RoadwatchBinary.which("sha256sum"))
        let reference = try RoadwatchBinary.runProgram(tool, [clip])
        #expect(reference.status == 0)
        let expected = String(reference.stdout.prefix(64))
        #expect(try SHA256Digest.hex(ofFile: URL(fileURLWithPath: clip)) == expected)
        #expect(throws: (any Error).self) { try SHA256Digest.hex(ofFile: URL(fileURLWithPath: "/nonexistent/file")) }
    }
}
