import Testing
import TygerCore
import TygerIO
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// One chunk as the consumer saw it.
private struct Received: Sendable {
    var number: Int64
    var streamOffset: Int64
    var bytes: [UInt8]
    var at: ContinuousClock.Instant
}

/// Runs the chunker over `source` on its own thread and collects chunks on another, releasing each block.
private func runChunker(
    source: any ByteSource,
    blockSize: Int = 64 << 10,
    ringSlots: Int = 4,
    flushInterval: Duration?
) async throws -> (total: Int64, chunks: [Received], ring: BlockRing) {
    let ring = BlockRing(capacity: ringSlots, blockSize: blockSize)
    let output = HandoffQueue<Chunk>(capacity: ringSlots)
    // Both threads start at once (not through the cooperative pool, which other tests may keep busy), so the
    // arrival times measure the chunker, not the scheduler.
    let consumer = spawnThread {
        var got: [Received] = []
        while let chunk = try output.popBlocking() {
            got.append(
                Received(
                    number: chunk.number,
                    streamOffset: chunk.streamOffset,
                    bytes: Array(chunk.block.bytes),
                    at: ContinuousClock.now
                )
            )
            ring.release(chunk.block)
        }
        return got
    }
    let chunker = spawnThread {
        try Chunker.run(source: source, ring: ring, output: output, flushInterval: flushInterval)
    }
    return (try await chunker.value, try await consumer.value, ring)
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { try FileDescriptorOps.writeAll(fd, $0) }
}

@Suite struct ChunkerTests {
    @Test(.timeLimit(.minutes(3)))
    func trickleThroughAFIFOArrivesLineByLineWithinTheFlushInterval() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/trickle"
            try NamedPipe.create(at: path)
            async let readEnd = NamedPipe.openForReading(path)
            let writeEnd = try await NamedPipe.openForWriting(path)
            let readFD = try await readEnd
            defer { FileDescriptorOps.close(readFD) }
            let source = DescriptorSource(fd: readFD)
            #expect(source.supportsTimeouts)

            let lines = (0..<5).map { Array("line \($0): \(String(repeating: "x", count: 10 * $0))\n".utf8) }
            let writtenAt = Locked<[ContinuousClock.Instant]>([])
            startThread {
                let start = ContinuousClock.now
                for (i, line) in lines.enumerated() {
                    let due = start + .milliseconds(300 * i)
                    while ContinuousClock.now < due { usleepMilliseconds(5) }
                    writtenAt.withLock { $0.append(ContinuousClock.now) }
                    try? writeAll(writeEnd, line)
                }
                usleepMilliseconds(400)
                FileDescriptorOps.close(writeEnd)
            }
            let (total, chunks, ring) = try await runChunker(source: source, flushInterval: .milliseconds(200))

            #expect(total == Int64(lines.reduce(0) { $0 + $1.count }))
            try #require(
                chunks.count == lines.count,
                "chunks: \(chunks.map { String(decoding: $0.bytes, as: UTF8.self) })"
            )
            let times = writtenAt.value
            var offset: Int64 = 0
            for (i, chunk) in chunks.enumerated() {
                #expect(chunk.number == Int64(i))
                #expect(chunk.streamOffset == offset)
                #expect(chunk.bytes == lines[i], "chunk \(i) must be exactly line \(i)")
                offset += Int64(chunk.bytes.count)
                let latency = chunk.at - times[i]
                // Emitted by the flush timer (not by end of stream or a full block): at least the interval after the
                // first byte, and well within interval + slack.
                #expect(latency >= .milliseconds(190), "chunk \(i) after \(latency)")
                #expect(latency < .seconds(1), "chunk \(i) after \(latency)")
            }
            #expect(ring.freeCount == ring.capacity)
        }
    }

    @Test(arguments: [nil, Duration.milliseconds(1)])
    func regularFileGivesFullBlocksExceptTheLast(flushInterval: Duration?) async throws {
        try await withTemporaryDirectory { dir in
            let blockSize = 64 << 10
            let payload = Payload.random(count: 5 * blockSize + 1234, seed: 21)
            let path = dir + "/input"
            try TestFiles.write(payload, to: path)
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            try #require(fd >= 0)
            defer { FileDescriptorOps.close(fd) }
            let source = DescriptorSource(fd: fd)
            // A regular file never times out, so a flush interval does not apply to it.
            #expect(!source.supportsTimeouts)
            let (total, chunks, _) = try await runChunker(
                source: source,
                blockSize: blockSize,
                flushInterval: flushInterval
            )
            #expect(total == Int64(payload.count))
            #expect(chunks.map(\.bytes.count) == [blockSize, blockSize, blockSize, blockSize, blockSize, 1234])
            #expect(chunks.map(\.number) == Array(0..<6))
            #expect(chunks.map(\.streamOffset) == (0..<6).map { Int64($0 * blockSize) })
            #expect(mismatch(chunks.flatMap(\.bytes), payload) == nil)
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func pipeWithoutFlushIntervalFillsBlocksDespitePauses() async throws {
        let blockSize = 16 << 10
        let payload = Payload.random(count: 3 * blockSize + 500, seed: 22)
        let (r, w) = try makePipe()
        defer { FileDescriptorOps.close(r) }
        startThread {
            var offset = 0
            var writes = 0
            while offset < payload.count {
                let n = min(1000, payload.count - offset)
                try? writeAll(w, Array(payload[offset..<(offset + n)]))
                offset += n
                writes += 1
                if writes % 10 == 0 { usleepMilliseconds(20) }
            }
            FileDescriptorOps.close(w)
        }
        let (total, chunks, _) = try await runChunker(
            source: DescriptorSource(fd: r),
            blockSize: blockSize,
            flushInterval: nil
        )
        #expect(total == Int64(payload.count))
        #expect(chunks.map(\.bytes.count) == [blockSize, blockSize, blockSize, 500])
        #expect(mismatch(chunks.flatMap(\.bytes), payload) == nil)
    }

    @Test(.timeLimit(.minutes(3)))
    func randomWritesThroughAPipeWithFlushIntervalKeepEveryByteInOrder() async throws {
        let payload = Payload.random(count: 300_000, seed: 23)
        let (r, w) = try makePipe()
        defer { FileDescriptorOps.close(r) }
        startThread {
            var rng = SeededGenerator(seed: 5)
            var offset = 0
            while offset < payload.count {
                let n = min(Int(rng.next() % 20_000) + 1, payload.count - offset)
                try? writeAll(w, Array(payload[offset..<(offset + n)]))
                offset += n
                if rng.next() % 8 == 0 { usleepMilliseconds(Int(rng.next() % 30)) }
            }
            FileDescriptorOps.close(w)
        }
        let (total, chunks, _) = try await runChunker(
            source: DescriptorSource(fd: r),
            blockSize: 32 << 10,
            flushInterval: .milliseconds(10)
        )
        #expect(total == Int64(payload.count))
        #expect(chunks.allSatisfy { $0.bytes.count >= 1 && $0.bytes.count <= 32 << 10 })
        var offset: Int64 = 0
        for (i, c) in chunks.enumerated() {
            #expect(c.number == Int64(i))
            #expect(c.streamOffset == offset)
            offset += Int64(c.bytes.count)
        }
        #expect(mismatch(chunks.flatMap(\.bytes), payload) == nil)
    }

    @Test func emptySourceGivesNoChunks() async throws {
        let (total, chunks, ring) = try await runChunker(source: ArraySource([]), flushInterval: nil)
        #expect(total == 0)
        #expect(chunks.isEmpty)
        #expect(ring.freeCount == ring.capacity)
    }

    @Test(.timeLimit(.minutes(3)))
    func chunkerStopsReadingWhileEveryBlockIsInUse() async throws {
        let blockSize = 8 << 10
        let ring = BlockRing(capacity: 2, blockSize: blockSize)
        let output = HandoffQueue<Chunk>(capacity: 8)
        let read = LockedCounter()
        let (r, w) = try makePipe()
        defer {
            FileDescriptorOps.close(r)
            FileDescriptorOps.close(w)
        }
        #expect(FileDescriptorOps.enlargePipe(w, to: 1 << 20) ?? 0 >= 10 * blockSize)
        try writeAll(w, Payload.random(count: 10 * blockSize, seed: 24))  // fits in the enlarged pipe
        struct Stop: Error {}
        // A thread of its own from the start: a task would first need a free thread of the cooperative pool, which
        // other tests can keep busy for longer than the waits below.
        let result = spawnThread {
            try Chunker.run(
                source: DescriptorSource(fd: r),
                ring: ring,
                output: output,
                flushInterval: nil,
                bytesRead: read
            )
        }
        #expect(await eventually(timeout: .seconds(60)) { output.queuedCount == 2 })
        try await Task.sleep(for: .milliseconds(200))
        // Both blocks are out: the chunker waits for one instead of reading on.
        #expect(read.value == Int64(2 * blockSize))
        #expect(output.queuedCount == 2)
        let first = try #require(try await output.pop())
        ring.release(first.block)
        #expect(await eventually(timeout: .seconds(60)) { read.value == Int64(3 * blockSize) })
        try await Task.sleep(for: .milliseconds(100))
        #expect(read.value == Int64(3 * blockSize))
        ring.shutDown(Stop())
        await #expect(throws: Stop.self) { try await result.value }
    }

    @Test(.timeLimit(.minutes(3)))
    func failedOutputStopsTheChunker() async throws {
        struct Abort: Error {}
        let ring = BlockRing(capacity: 4, blockSize: 4096)
        let output = HandoffQueue<Chunk>(capacity: 4)
        output.fail(Abort())
        await #expect(throws: Abort.self) {
            try await onThread {
                try Chunker.run(
                    source: ArraySource(Payload.random(count: 10_000, seed: 1)),
                    ring: ring,
                    output: output,
                    flushInterval: nil
                )
            }
        }
    }

    @Test func sourceErrorPropagates() async throws {
        let ring = BlockRing(capacity: 4, blockSize: 4096)
        let output = HandoffQueue<Chunk>(capacity: 4)
        let error = await #expect(throws: TygerIOError.self) {
            try await onThread {
                try Chunker.run(
                    source: ArraySource(Payload.random(count: 10_000, seed: 1), maxRead: 1000, failAt: 5000),
                    ring: ring,
                    output: output,
                    flushInterval: nil
                )
            }
        }
        #expect(error?.code == .system)
    }
}
