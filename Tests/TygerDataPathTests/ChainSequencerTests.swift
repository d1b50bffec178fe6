import Testing
import TygerCore
import TygerTestSupport

@testable import TygerDataPath

@Suite(.timeLimit(.minutes(3))) struct ChainSequencerTests {
    @Test func linksOutOfOrderGiveTheInOrderChain() async throws {
        let count = 200
        let checksums = (0..<count).map { Reference.crc32cString(Payload.random(count: 8, seed: UInt64($0))) }
        var expected: [String] = []
        var chain = Reference.chainInitialValue
        for c in checksums {
            chain = Reference.chainLink(previous: chain, checksum: c)
            expected.append(chain)
        }
        let sequencer = ChainSequencer()
        var order = Array(0..<count)
        var rng = SeededGenerator(seed: 42)
        order.shuffle(using: &rng)
        let values = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for n in order {
                group.addTask { (n, try await sequencer.link(Int64(n), checksum: checksums[n])) }
            }
            var out = [String](repeating: "", count: count)
            for try await (n, v) in group { out[n] = v }
            return out
        }
        #expect(values == expected)
        #expect(sequencer.linked == Int64(count))
    }

    @Test func failWakesWaitersAndLaterLinks() async throws {
        struct Broken: Error {}
        let sequencer = ChainSequencer()
        // Blob 1 waits for blob 0, which never comes.
        let waiter = Task { try await sequencer.link(1, checksum: "aaaaaaaa") }
        try await Task.sleep(for: .milliseconds(100))
        sequencer.fail(Broken())
        await #expect(throws: Broken.self) { try await waiter.value }
        await #expect(throws: Broken.self) { try await sequencer.link(0, checksum: "bbbbbbbb") }
        #expect(sequencer.linked == 0)
    }
}
