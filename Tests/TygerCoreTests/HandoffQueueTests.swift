import Testing
import TygerCore
import TygerTestSupport

private struct TestFailure: Error, Equatable {}

/// A waiter's fate, recorded by the test.
private enum Outcome: Equatable, Sendable {
    case pending
    case value(Int?)
    case pushed, failed, cancelled, otherError
}

private func outcome(of error: any Error) -> Outcome {
    if error is TestFailure { return .failed }
    if let e = error as? TygerCoreError, e.code == .cancelled { return .cancelled }
    return .otherError
}

@Suite struct HandoffQueueTests {
    @Test(arguments: [1, 3, 4, 7])
    func capacityIsExactEvenWhenNotAPowerOfTwo(capacity: Int) async throws {
        let queue = HandoffQueue<Int>(capacity: capacity)
        #expect(queue.capacity == capacity)
        for i in 0..<capacity { try await queue.push(i) }
        #expect(queue.queuedCount == capacity)
        queue._checkInvariants()
        // One more must wait.
        let extra = Locked(false)
        startThread {
            try? queue.pushBlocking(99)
            extra.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(150))
        #expect(extra.value == false)
        #expect(queue.queuedCount == capacity)
        queue._checkInvariants()
        #expect(try await queue.pop() == 0)
        #expect(await eventually(timeout: .seconds(60)) { extra.value })
        #expect(queue.queuedCount == capacity)
        var rest: [Int] = []
        for _ in 0..<capacity { rest.append(try #require(try await queue.pop())) }
        #expect(rest == Array(1..<capacity) + [99])
        queue._checkInvariants()
    }

    @Test func fifoOrderFromAThreadToATask() async throws {
        let queue = HandoffQueue<Int>(capacity: 4)
        startThread {
            for i in 0..<5000 { try? queue.pushBlocking(i) }
            queue.close()
        }
        var got: [Int] = []
        while let v = try await queue.pop() { got.append(v) }
        #expect(mismatch(got, 0..<5000) == nil)
    }

    @Test func fifoOrderFromATaskToAThread() async throws {
        let queue = HandoffQueue<Int>(capacity: 3)
        let consumer = Task {
            try await onThread { () -> [Int] in
                var got: [Int] = []
                while let v = try queue.popBlocking() { got.append(v) }
                return got
            }
        }
        for i in 0..<5000 { try await queue.push(i) }
        queue.close()
        #expect(mismatch(try await consumer.value, 0..<5000) == nil)
    }

    @Test func blockingPushOnAFullQueueWaitsForAPop() async throws {
        let queue = HandoffQueue<Int>(capacity: 2)
        try queue.pushBlocking(1)
        try queue.pushBlocking(2)
        let state = Locked(Outcome.pending)
        startThread {
            do {
                try queue.pushBlocking(3)
                state.withLock { $0 = .pushed }
            } catch { state.withLock { $0 = outcome(of: error) } }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(state.value == .pending)
        #expect(try await onThread { try queue.popBlocking() } == 1)
        #expect(await eventually(timeout: .seconds(60)) { state.value == .pushed })
        #expect(try await queue.pop() == 2)
        #expect(try await queue.pop() == 3)
    }

    @Test func asyncPushOnAFullQueueSuspendsUntilAPop() async throws {
        let queue = HandoffQueue<Int>(capacity: 1)
        try await queue.push(1)
        let state = Locked(Outcome.pending)
        let pusher = Task {
            try await queue.push(2)
            state.withLock { $0 = .pushed }
        }
        try await Task.sleep(for: .milliseconds(150))
        #expect(state.value == .pending)
        queue._checkInvariants()
        #expect(try await queue.pop() == 1)
        try await pusher.value
        #expect(state.value == .pushed)
        #expect(try await queue.pop() == 2)
    }

    @Test func closeDrainsThenReturnsNil() async throws {
        let queue = HandoffQueue<Int>(capacity: 4)
        for i in 0..<3 { try await queue.push(i) }
        queue.close()
        #expect(try await queue.pop() == 0)
        #expect(try queue.popBlocking() == 1)
        #expect(try await queue.pop() == 2)
        #expect(try await queue.pop() == nil)
        #expect(try queue.popBlocking() == nil)
        #expect(try await queue.pop() == nil)
        let e1 = try #require(throws: TygerCoreError.self) { try queue.pushBlocking(5) }
        #expect(e1.code == .cancelled)
        await #expect(throws: TygerCoreError.self) { try await queue.push(5) }
        queue._checkInvariants()
    }

    @Test func closeWakesWaitingPoppers() async throws {
        let queue = HandoffQueue<Int>(capacity: 2)
        let threadResult = Locked(Outcome.pending)
        startThread {
            do {
                let v = try queue.popBlocking()
                threadResult.withLock { $0 = .value(v) }
            } catch { threadResult.withLock { $0 = outcome(of: error) } }
        }
        let task = Task { try await queue.pop() }
        try await Task.sleep(for: .milliseconds(100))
        #expect(threadResult.value == .pending)
        queue.close()
        #expect(try await task.value == nil)
        #expect(await eventually(timeout: .seconds(60)) { threadResult.value == .value(nil) })
    }

    @Test func closeWakesBlockedPushers() async throws {
        let queue = HandoffQueue<Int>(capacity: 1)
        try queue.pushBlocking(1)
        let state = Locked(Outcome.pending)
        startThread {
            do {
                try queue.pushBlocking(2)
                state.withLock { $0 = .pushed }
            } catch { state.withLock { $0 = outcome(of: error) } }
        }
        try await Task.sleep(for: .milliseconds(100))
        queue.close()
        #expect(await eventually(timeout: .seconds(60)) { state.value != .pending })
        #expect(state.value == .cancelled)
        #expect(try await queue.pop() == 1)
        #expect(try await queue.pop() == nil)
    }

    @Test func failWakesEveryWaiterWithTheError() async throws {
        let empty = HandoffQueue<Int>(capacity: 2)
        let full = HandoffQueue<Int>(capacity: 1)
        try full.pushBlocking(0)
        let blockingPop = Locked(Outcome.pending)
        let blockingPush = Locked(Outcome.pending)
        startThread {
            do {
                _ = try empty.popBlocking()
                blockingPop.withLock { $0 = .otherError }
            } catch { blockingPop.withLock { $0 = outcome(of: error) } }
        }
        startThread {
            do {
                try full.pushBlocking(1)
                blockingPush.withLock { $0 = .pushed }
            } catch { blockingPush.withLock { $0 = outcome(of: error) } }
        }
        let asyncPop = Task { () -> Outcome in
            do {
                _ = try await empty.pop()
                return .otherError
            } catch { return outcome(of: error) }
        }
        let asyncPush = Task { () -> Outcome in
            do {
                try await full.push(2)
                return .pushed
            } catch { return outcome(of: error) }
        }
        try await Task.sleep(for: .milliseconds(150))
        #expect(blockingPush.value == .pending)
        empty.fail(TestFailure())
        full.fail(TestFailure())
        #expect(await asyncPop.value == .failed)
        #expect(await asyncPush.value == .failed)
        #expect(
            await eventually(timeout: .seconds(60)) { blockingPop.value == .failed && blockingPush.value == .failed }
        )
        // Queued elements are dropped and every later call throws the same error.
        #expect(full.queuedCount == 0)
        #expect(throws: TestFailure.self) { try full.popBlocking() }
        await #expect(throws: TestFailure.self) { try await full.pop() }
        #expect(throws: TestFailure.self) { try empty.pushBlocking(1) }
        await #expect(throws: TestFailure.self) { try await empty.push(1) }
        full._checkInvariants()
        empty._checkInvariants()
    }

    @Test func failAfterCloseStillFails() async throws {
        let queue = HandoffQueue<Int>(capacity: 2)
        try await queue.push(1)
        queue.close()
        queue.fail(TestFailure())
        await #expect(throws: TestFailure.self) { try await queue.pop() }
    }

    @Test func mixedThreadAndAsyncProducersAndConsumersUnderLoad() async throws {
        let queue = HandoffQueue<Int>(capacity: 8)
        let producers = 4
        let perProducer = 4000
        let running = Locked(true)
        // A checker hammers the invariants while everything runs.
        let checks = Locked(0)
        startThread {
            while running.value {
                queue._checkInvariants()
                checks.withLock { $0 += 1 }
                usleepMicroseconds(50)
            }
        }
        async let consumers: [[Int]] = withThrowingTaskGroup(of: [Int].self) { group in
            for c in 0..<4 {
                group.addTask {
                    if c % 2 == 0 {
                        return try await onThread {
                            var got: [Int] = []
                            while let v = try queue.popBlocking() { got.append(v) }
                            return got
                        }
                    }
                    var got: [Int] = []
                    while let v = try await queue.pop() { got.append(v) }
                    return got
                }
            }
            var all: [[Int]] = []
            for try await got in group { all.append(got) }
            return all
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for p in 0..<producers {
                group.addTask {
                    let values = (0..<perProducer).map { p * 1_000_000 + $0 }
                    if p % 2 == 0 {
                        try await onThread { for v in values { try queue.pushBlocking(v) } }
                    } else {
                        for v in values { try await queue.push(v) }
                    }
                }
            }
            try await group.waitForAll()
        }
        queue.close()
        let all = try await consumers
        running.withLock { $0 = false }
        #expect(all.reduce(0) { $0 + $1.count } == producers * perProducer)
        #expect(Set(all.joined()).count == producers * perProducer)
        // FIFO: each consumer sees every producer's values in increasing order.
        for got in all {
            for p in 0..<producers {
                let mine = got.filter { $0 / 1_000_000 == p }
                #expect(mismatch(mine, mine.sorted()) == nil)
            }
        }
        #expect(checks.value > 0)
        queue._checkInvariants()
    }
}
