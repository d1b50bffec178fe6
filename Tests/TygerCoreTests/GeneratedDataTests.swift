import Testing
import TygerCore
import TygerTestSupport

@Suite struct GeneratedDataTests {
    private func generated(count: Int, offset: Int64 = 0) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { GeneratedData.fill($0, streamOffset: offset) }
        return out
    }

    private func sha256Hex(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { Checksums.sha256Hex($0) } }

    @Test func sha256Of32MiBMatchesUpstreamVector() {
        #expect(
            sha256Hex(generated(count: 32 << 20)) == "b997630f9de63d635b4f686f6e4d9827d253bcf3e0ee204186095486ff64793c"
        )
    }

    @Test func sha256Of3MiBMatchesUpstreamVector() {
        #expect(
            sha256Hex(generated(count: 3 << 20)) == "09d7daed99c15bcee48dfa269c7597a1036a371c90100dda6f4fdcfe7ab79385"
        )
    }

    @Test func patternIsColonPlusIndexModulo64() {
        let bytes = generated(count: 200)
        #expect(mismatch(bytes, Payload.generated(count: 200)) == nil)
        #expect(String(decoding: bytes.prefix(8), as: UTF8.self) == ":;<=>?@A")
        #expect(bytes[63] == UInt8(ascii: "y"))
        #expect(bytes[64] == UInt8(ascii: ":"))
    }

    @Test func fillAtArbitraryOffsetsEqualsSlicesOfTheStream() {
        let streamLength = 70_000
        let stream = generated(count: streamLength)
        var rng = SeededGenerator(seed: 64)
        for _ in 0..<300 {
            let offset = Int(rng.next() % UInt64(streamLength))
            let count = Int(rng.next() % UInt64(streamLength - offset + 1))
            if let m = mismatch(generated(count: count, offset: Int64(offset)), stream[offset..<(offset + count)]) {
                Issue.record("offset \(offset) count \(count): \(m)")
            }
        }
    }

    @Test(arguments: [Int64(1 << 32) + 5, Int64(1) << 50, Int64.max - 1000])
    func fillAtHugeOffsets(offset: Int64) {
        #expect(mismatch(generated(count: 777, offset: offset), Payload.generated(count: 777, offset: offset)) == nil)
    }

    @Test func emptyFillIsHarmless() {
        #expect(generated(count: 0, offset: 12345).isEmpty)
    }
}
