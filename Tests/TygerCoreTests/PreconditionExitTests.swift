import Testing
import TygerCore

/// Programmer errors stop the process with a precondition failure, checked in child processes.
@Suite struct PreconditionExitTests {
    @Test func negativeBlobNumber() async {
        await #expect(processExitsWith: .failure) { _ = BlobPath.name(for: -1) }
    }

    @Test func emptyQueue() async {
        await #expect(processExitsWith: .failure) { _ = HandoffQueue<Int>(capacity: 0) }
    }

    @Test func emptyRing() async {
        await #expect(processExitsWith: .failure) { _ = BlockRing(capacity: 0, blockSize: 4096) }
        await #expect(processExitsWith: .failure) { _ = BlockRing(capacity: 2, blockSize: 0) }
    }

    @Test func compressedUpstreamFormat() async {
        await #expect(processExitsWith: .failure) { _ = BlobCodec(format: .upstream, compression: .fast) }
    }

    @Test func validShapesDoNotTrap() async {
        await #expect(processExitsWith: .success) {
            _ = BlobPath.name(for: 0)
            _ = HandoffQueue<Int>(capacity: 1)
            _ = BlockRing(capacity: 1, blockSize: 1)
            _ = BlobCodec(format: .upstream)
        }
    }
}
