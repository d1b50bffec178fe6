import Testing
import TygerCore
import TygerIO
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

private func readAll(_ fd: Int32) throws -> [UInt8] {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = try buffer.withUnsafeMutableBytes { try FileDescriptorOps.read(fd, into: $0) }
        if n == 0 { return out }
        out += buffer[0..<n]
    }
}

/// Counts how many owners were released.
private final class Owner: Sendable {
    let released: LockedCounter
    init(_ released: LockedCounter) { self.released = released }
    deinit { released.add(1) }
}

/// Immutable heap bytes for output chunks.
private final class Bytes: @unchecked Sendable {
    // @unchecked: written once in init, then only read.
    let memory: UnsafeMutableRawBufferPointer
    init(_ bytes: [UInt8]) {
        memory = .allocate(byteCount: max(bytes.count, 1), alignment: 4096)
        memory.copyBytes(from: bytes)
    }
    deinit { memory.deallocate() }
}

@Suite struct DescriptorSourceTests {
    @Test func pipeReadTimesOutThenReadsThenEnds() throws {
        let (r, w) = try makePipe()
        defer { FileDescriptorOps.close(r) }
        let source = DescriptorSource(fd: r)
        #expect(source.supportsTimeouts)
        var buffer = [UInt8](repeating: 0, count: 100)
        let start = ContinuousClock.now
        let outcome = try buffer.withUnsafeMutableBytes { try source.read(into: $0, waitAtMost: .milliseconds(100)) }
        #expect(outcome == .timedOut)
        #expect(ContinuousClock.now - start >= .milliseconds(90))
        try Array("hello".utf8).withUnsafeBytes { try FileDescriptorOps.writeAll(w, $0) }
        #expect(try buffer.withUnsafeMutableBytes { try source.read(into: $0, waitAtMost: .seconds(5)) } == .bytes(5))
        #expect(Array(buffer.prefix(5)) == Array("hello".utf8))
        FileDescriptorOps.close(w)
        #expect(try buffer.withUnsafeMutableBytes { try source.read(into: $0, waitAtMost: nil) } == .endOfStream)
    }

    @Test func pipesAreEnlarged() throws {
        let (r, w) = try makePipe()
        defer {
            FileDescriptorOps.close(r)
            FileDescriptorOps.close(w)
        }
        _ = DescriptorSource(fd: r)
        // The kernel's pipe-max-size may be below 1 MiB, but never below the 64 KiB default.
        let size = try #require(FileDescriptorOps.enlargePipe(r, to: 1))
        #expect(size >= 64 << 10)
    }

    @Test func regularFileReadsToTheEnd() async throws {
        try await withTemporaryDirectory { dir in
            let payload = Payload.random(count: 100_000, seed: 3)
            try TestFiles.write(payload, to: dir + "/f")
            let fd = open(dir + "/f", O_RDONLY | O_CLOEXEC)
            defer { FileDescriptorOps.close(fd) }
            let source = DescriptorSource(fd: fd)
            #expect(!source.supportsTimeouts)
            var got: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 7000)
            while case .bytes(let n) = try buffer.withUnsafeMutableBytes({
                try source.read(into: $0, waitAtMost: .milliseconds(1))
            }) {
                got += buffer[0..<n]
            }
            #expect(mismatch(got, payload) == nil)
        }
    }

    @Test func readOfAClosedDescriptorThrows() {
        let source = DescriptorSource(fd: 987_654)
        var buffer = [UInt8](repeating: 0, count: 10)
        let error = #expect(throws: TygerIOError.self) {
            try buffer.withUnsafeMutableBytes { try source.read(into: $0, waitAtMost: nil) }
        }
        #expect(error?.errno == EBADF)
    }
}

@Suite struct GeneratedSourceTests {
    @Test(arguments: [0, 1, 63, 64, 65, 100_000])
    func yieldsTheGenStreamThenEnds(size: Int) throws {
        let source = GeneratedSource(size: Int64(size))
        #expect(!source.supportsTimeouts)
        var got: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4099)
        while case .bytes(let n) = try buffer.withUnsafeMutableBytes({ try source.read(into: $0, waitAtMost: nil) }) {
            #expect(n > 0)
            got += buffer[0..<n]
        }
        #expect(mismatch(got, Payload.generated(count: size)) == nil)
    }
}

@Suite struct DescriptorSinkTests {
    @Test(arguments: PipeWriteMode.allCases, [false, true])
    func writesIntoAPipe(mode: PipeWriteMode, immutable: Bool) async throws {
        let (r, w) = try makePipe()
        defer { FileDescriptorOps.close(r) }
        let payload = Payload.random(count: 3 << 20, seed: 9)
        let bytes = Bytes(payload)
        async let received = onThread { try readAll(r) }
        try await onThread {
            defer { FileDescriptorOps.close(w) }
            let sink = DescriptorSink(fd: w, mode: mode)
            var offset = 0
            while offset < payload.count {
                let n = min(700_000, payload.count - offset)
                try sink.write(
                    OutputChunk(
                        bytes: UnsafeRawBufferPointer(rebasing: bytes.memory[offset..<(offset + n)]),
                        immutablePages: immutable,
                        owner: bytes
                    )
                )
                offset += n
            }
            try sink.finish()
        }
        #expect(mismatch(try await received, payload) == nil)
    }

    @Test(arguments: PipeWriteMode.allCases)
    func vanishedReaderIsABrokenPipe(mode: PipeWriteMode) throws {
        FileDescriptorOps.ignoreSIGPIPE()
        let (r, w) = try makePipe()
        defer { FileDescriptorOps.close(w) }
        FileDescriptorOps.close(r)
        let bytes = Bytes(Payload.random(count: 8192, seed: 1))
        let sink = DescriptorSink(fd: w, mode: mode)
        let error = #expect(throws: TygerIOError.self) {
            try sink.write(OutputChunk(bytes: UnsafeRawBufferPointer(bytes.memory), immutablePages: true, owner: bytes))
        }
        #expect(error?.code == .brokenPipe)
        #expect(error?.errno == EPIPE)
    }

    @Test func writesARegularFile() async throws {
        try await withTemporaryDirectory { dir in
            let fd = open(dir + "/out", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            try #require(fd >= 0)
            let payload = Payload.random(count: 200_000, seed: 2)
            let bytes = Bytes(payload)
            let sink = DescriptorSink(fd: fd)
            try sink.write(
                OutputChunk(
                    bytes: UnsafeRawBufferPointer(rebasing: bytes.memory[0..<200_000]),
                    immutablePages: true,
                    owner: nil
                )
            )
            try sink.write(
                OutputChunk(bytes: UnsafeRawBufferPointer(start: nil, count: 0), immutablePages: false, owner: nil)
            )
            try sink.finish()
            FileDescriptorOps.close(fd)
            #expect(mismatch(try TestFiles.read(dir + "/out"), payload) == nil)
        }
    }
}

@Suite struct OutputPumpTests {
    @Test func writesChunksInOrderAndReleasesOwners() async throws {
        let sink = MemorySink()
        let queue = HandoffQueue<OutputChunk>(capacity: 2)
        let released = LockedCounter()
        let written = LockedCounter()
        let pieces = (0..<20).map { Payload.random(count: 1000 + $0, seed: UInt64($0)) }
        async let total = onThread { try OutputPump.run(input: queue, sink: sink, bytesWritten: written) }
        for piece in pieces {
            let bytes = Bytes(piece)
            // The owner keeps `bytes` alive; it must be dropped once written.
            final class Both: Sendable {
                let owner: Owner
                let bytes: Bytes
                init(_ o: Owner, _ b: Bytes) {
                    owner = o
                    bytes = b
                }
            }
            let both = Both(Owner(released), bytes)
            try await queue.push(
                OutputChunk(
                    bytes: UnsafeRawBufferPointer(rebasing: bytes.memory[0..<piece.count]),
                    immutablePages: false,
                    owner: both
                )
            )
        }
        queue.close()
        let expected = pieces.reduce(0) { $0 + $1.count }
        #expect(try await total == Int64(expected))
        #expect(written.value == Int64(expected))
        #expect(mismatch(sink.bytes, pieces.flatMap { $0 }) == nil)
        #expect(sink.finished)
        #expect(await eventually(timeout: .seconds(60)) { released.value == 20 })
    }

    @Test func sinkFailureFailsTheQueue() async throws {
        let sink = MemorySink(failAfter: 3000)
        let queue = HandoffQueue<OutputChunk>(capacity: 2)
        let piece = Bytes(Payload.random(count: 1000, seed: 1))
        let pump = Task { try await onThread { try OutputPump.run(input: queue, sink: sink) } }
        var pushed = 0
        do {
            for _ in 0..<100 {
                try await queue.push(
                    OutputChunk(
                        bytes: UnsafeRawBufferPointer(rebasing: piece.memory[0..<1000]),
                        immutablePages: false,
                        owner: piece
                    )
                )
                pushed += 1
            }
            Issue.record("pushes kept succeeding after the sink failed")
        } catch let error as TygerIOError {
            #expect(error.code == .brokenPipe)
        }
        #expect(pushed < 100)
        let error = await #expect(throws: TygerIOError.self) { try await pump.value }
        #expect(error?.code == .brokenPipe)
        #expect(sink.bytes.count == 3000)
        #expect(!sink.finished)
    }
}

@Suite struct DispatchIOTests {
    @Test(.timeLimit(.minutes(3)))
    func sourceAndSinkRoundTripThroughPipes() async throws {
        let payload = Payload.random(count: 2 << 20, seed: 77)
        let (r1, w1) = try makePipe()
        let (r2, w2) = try makePipe()
        defer {
            FileDescriptorOps.close(r1)
            FileDescriptorOps.close(r2)
        }
        // payload → w1 ─pipe─ r1 → DispatchIOSource → DispatchIOSink → w2 ─pipe─ r2 → received
        startThread {
            try? payload.withUnsafeBytes { try FileDescriptorOps.writeAll(w1, $0) }
            FileDescriptorOps.close(w1)
        }
        async let received = onThread { try readAll(r2) }
        try await onThread {
            let source = DispatchIOSource(fd: r1)
            let sink = DispatchIOSink(fd: w2)
            let buffer = Bytes([UInt8](repeating: 0, count: 256 << 10))
            while case .bytes(let n) = try source.read(into: buffer.memory, waitAtMost: nil) {
                try sink.write(
                    OutputChunk(
                        bytes: UnsafeRawBufferPointer(rebasing: buffer.memory[0..<n]),
                        immutablePages: false,
                        owner: nil
                    )
                )
            }
            try sink.finish()
        }
        // The sink's channel owns w2's lifetime only as a borrower; close our descriptor to end the stream.
        FileDescriptorOps.close(w2)
        #expect(mismatch(try await received, payload) == nil)
    }
}
