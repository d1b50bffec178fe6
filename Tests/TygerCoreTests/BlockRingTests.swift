import Testing
import TygerCore
import TygerTestSupport

private struct Shutdown: Error {}

@Suite struct BlockRingTests {
    @Test func blocksAreDistinctAlignedAndSized() throws {
        let ring = BlockRing(capacity: 5, blockSize: 8192)
        #expect(ring.freeCount == 5)
        var blocks: [Block] = []
        for _ in 0..<5 { blocks.append(try #require(try ring.acquireBlocking())) }
        #expect(ring.freeCount == 0)
        #expect(Set(blocks.map(\.index)) == Set(0..<5))
        let starts = blocks.map { Int(bitPattern: $0.memory.baseAddress!) }.sorted()
        for (i, start) in starts.enumerated() {
            #expect(start % 4096 == 0)
            if i > 0 { #expect(start - starts[i - 1] >= 8192) }
        }
        for b in blocks {
            #expect(b.memory.count == 8192)
            #expect(b.count == 0)
            #expect(b.bytes.isEmpty)
        }
        for b in blocks { ring.release(b) }
        #expect(ring.freeCount == 5)
        ring._checkInvariants()
    }

    @Test func releaseResetsTheCountAndAcquireCountsBalance() async throws {
        let ring = BlockRing(capacity: 3, blockSize: 4096)
        var b = try #require(try await ring.acquire())
        b.memory[0] = 7
        b.count = 100
        #expect(b.bytes.count == 100)
        #expect(ring.freeCount == 2)
        ring.release(b)
        #expect(ring.freeCount == 3)
        var seen = 0
        for _ in 0..<3 {
            let again = try #require(try ring.acquireBlocking())
            #expect(again.count == 0)
            seen += 1
            #expect(ring.freeCount == 3 - seen)
        }
        ring._checkInvariants()
    }

    @Test func acquireOnAnEmptyRingWaitsForARelease() async throws {
        let ring = BlockRing(capacity: 2, blockSize: 4096)
        let a = try #require(try ring.acquireBlocking())
        let b = try #require(try ring.acquireBlocking())
        let got = Locked<[Int]>([])
        startThread {
            if let block = try? ring.acquireBlocking() { got.withLock { $0.append(block.index) } }
        }
        let task = Task {
            if let block = try await ring.acquire() { got.withLock { $0.append(block.index) } }
        }
        try await Task.sleep(for: .milliseconds(150))
        #expect(got.value.isEmpty)
        ring.release(a)
        #expect(await eventually(timeout: .seconds(60)) { got.value.count == 1 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(got.value == [a.index])
        ring.release(b)
        try await task.value
        #expect(await eventually(timeout: .seconds(60)) { got.value.count == 2 })
        #expect(Set(got.value) == [a.index, b.index])
        #expect(ring.freeCount == 0)
    }

    @Test func shutDownWakesWaitersAndFailsLaterAcquires() async throws {
        let ring = BlockRing(capacity: 1, blockSize: 4096)
        let held = try #require(try ring.acquireBlocking())
        let threadError = Locked<Bool?>(nil)
        startThread {
            do {
                _ = try ring.acquireBlocking()
                threadError.withLock { $0 = false }
            } catch { threadError.withLock { $0 = error is Shutdown } }
        }
        let task = Task { () -> Bool in
            do {
                _ = try await ring.acquire()
                return false
            } catch { return error is Shutdown }
        }
        try await Task.sleep(for: .milliseconds(100))
        ring.shutDown(Shutdown())
        #expect(await task.value)
        #expect(await eventually(timeout: .seconds(60)) { threadError.value == true })
        #expect(throws: Shutdown.self) { try ring.acquireBlocking() }
        ring.release(held)  // harmless after shutdown
    }

    @Test func concurrentHoldersNeverShareABlock() async throws {
        let capacity = 4
        let ring = BlockRing(capacity: capacity, blockSize: 4096)
        let held = Locked(Set<Int>())
        let maxHeld = Locked(0)
        let violations = Locked(0)
        let acquisitions = Locked(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<6 {
                group.addTask {
                    @Sendable func use(_ block: Block) {
                        var block = block
                        let fresh = held.withLock { $0.insert(block.index).inserted }
                        if !fresh { violations.withLock { $0 += 1 } }
                        maxHeld.withLock { $0 = max($0, held.value.count) }
                        // Write a signature and check nobody else changed it.
                        block.memory.storeBytes(of: UInt32(worker), toByteOffset: 0, as: UInt32.self)
                        block.count = 4
                        if block.memory.load(fromByteOffset: 0, as: UInt32.self) != UInt32(worker) {
                            violations.withLock { $0 += 1 }
                        }
                        held.withLock { _ = $0.remove(block.index) }
                        acquisitions.withLock { $0 += 1 }
                        ring.release(block)
                    }
                    if worker % 2 == 0 {
                        try await onThread {
                            for _ in 0..<2000 {
                                guard let b = try ring.acquireBlocking() else { return }
                                use(b)
                                ring._checkInvariants()
                            }
                        }
                    } else {
                        for _ in 0..<2000 {
                            guard let b = try await ring.acquire() else { return }
                            use(b)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(violations.value == 0)
        #expect(maxHeld.value <= capacity)
        #expect(acquisitions.value == 6 * 2000)
        #expect(ring.freeCount == capacity)
        ring._checkInvariants()
    }
}
