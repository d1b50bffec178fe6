import Testing
import TygerCore
import TygerDataPath
import TygerIO
import TygerStorage
import TygerTestSupport

@Suite(.timeLimit(.minutes(3))) struct WriterLifecycleTests {
    /// How long a reader may take to notice a dead writer or a cancel. The poll behind it is about a second; the bound
    /// is wide so that a loaded machine (the rest of the suite runs beside these tests) cannot fail it, while a reader
    /// that waits for good still does.
    static let noticeBound = Duration.seconds(60)

    @Test(arguments: StoreKind.allCases)
    func aSecondWriteToTheSameBufferFails(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            let input = Payload.random(count: 100_000, seed: 1)
            try await writeBuffer(input, to: t.store)
            let error = await #expect(throws: TygerCoreError.self) {
                try await writeBuffer(Payload.random(count: 10, seed: 2), to: t.store)
            }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("buffer cannot be overwritten") == true)
            // The refused writer left the buffer as it was: complete and readable.
            let end = try #require(try await t.blob(BufferBlobNames.end))
            #expect(BufferEndMetadata.decode(end.bytes) == .complete)
            #expect(mismatch(try await readBuffer(t.store), input) == nil)
            #expect(await writerGone(t.store))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aSecondConcurrentWriterFailsWithLeaseHeld(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            let prefix = Payload.random(count: 5000, seed: 3)
            let gate = GateSource(prefix: prefix)
            var options = testWriteOptions()
            options.flushInterval = .milliseconds(20)
            let first = Task { try await BufferWriter.write(from: gate, to: t.store, options: options) }
            // Wait until the first writer has started and stored its first (flushed) block.
            #expect(await eventually(timeout: .seconds(60)) { (try? await t.store.get("00/000")) != nil })
            #expect(try await t.store.writerState() == .active)
            let error = await #expect(throws: BlobStoreError.self) {
                try await writeBuffer([1, 2, 3], to: t.store)
            }
            #expect(error?.code == .leaseHeld)
            gate.release()
            let summary = try await first.value
            #expect(summary.bytes == 5000)
            #expect(try await readBuffer(t.store) == prefix)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aFailingSourceMarksTheBufferFailed(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            let source = ArraySource(Payload.random(count: 500_000, seed: 4), maxRead: 10_000, failAt: 200_000)
            let error = await #expect(throws: TygerIOError.self) {
                try await BufferWriter.write(from: source, to: t.store, options: testWriteOptions())
            }
            #expect(error?.message.contains("injected read failure") == true)
            let end = try #require(try await t.blob(BufferBlobNames.end))
            #expect(String(decoding: end.bytes, as: UTF8.self) == #"{"status":"failed"}"#)
            #expect(await writerGone(t.store))
            let readFailure = await readError(t.store)
            #expect(coreCode(readFailure) == .bufferFailed)
            #expect("\(readFailure!)".contains("the buffer is in a permanently failed state"))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aFailedBufferWithoutDataIsReportedFailed(kind: StoreKind) async throws {
        // As the control plane marks a cancelled run's buffer: `.bufferend` failed and nothing else.
        try await TestStore.with(kind) { t in
            try t.replace(BufferBlobNames.end, with: (BufferEndMetadata.encoded(.failed), BlobMetadata()))
            let error = await readError(t.store)
            #expect(coreCode(error) == .bufferFailed)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aWriterThatDiesMidStreamIsReportedAbandonedNotWaitedForForever(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            // A writer that took the lease, wrote the start and two blobs, then went away.
            let input = Payload.random(count: 2 * 16384, seed: 5)
            let lease = try await t.store.acquireWriterLease()
            let codec = BlobCodec(format: .native)
            var chain = HashChain()
            func putBlob(_ name: String, _ bytes: [UInt8]) throws {
                let blob = bytes.withUnsafeBytes { raw -> ([UInt8], BlobMetadata) in
                    var e = codec.encode(raw, scratch: nil)
                    e.metadata.hashChain = chain.append(e.checksum)
                    return (Array(e.stored), e.metadata)
                }
                try t.replace(name, with: blob)
            }
            try t.replace(
                BufferBlobNames.start,
                with: (BufferStartMetadata(format: .native, codec: "none").encoded(), BlobMetadata())
            )
            try putBlob("00/000", Array(input[0..<16384]))
            try putBlob("00/001", Array(input[16384...]))

            let sink = MemorySink()
            let reader = Task { try await BufferReader.read(from: t.store, to: sink, options: testReadOptions()) }
            // The reader delivers what exists and then waits for more while the writer lives.
            #expect(await eventually(timeout: .seconds(60)) { sink.bytes.count == input.count })
            try await Task.sleep(for: .milliseconds(200))
            #expect(mismatch(sink.bytes, input) == nil)
            let died = ContinuousClock.now
            await lease.release()  // the writer's death, as the store sees it
            let error = await #expect(throws: TygerCoreError.self) { try await reader.value }
            #expect(error?.code == .bufferAbandoned)
            #expect(error?.message.contains("writer stopped") == true)
            #expect(ContinuousClock.now - died < Self.noticeBound)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func anAbandonedBufferYieldsItsStoredBlobsBeforeTheError(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            // A writer that stored three blobs and died: the reader finds it already gone. Fetches of the blobs
            // after the third fail at once; they must not pre-empt the three sound blobs.
            let input = Payload.random(count: 3 * 16384, seed: 14)
            let gate = GateSource(prefix: input)
            var options = testWriteOptions(blockSize: 16384)
            options.flushInterval = .milliseconds(20)
            let writer = Task { try await BufferWriter.write(from: gate, to: t.store, options: options) }
            #expect(await eventually(timeout: .seconds(60)) { (try? await t.store.get("00/002")) != nil })
            // Kill it the hard way: take the lease away without `.bufferend`.
            if let memory = t.memory {
                memory._abandonLease()
            }
            writer.cancel()
            gate.release()
            _ = try? await writer.value
            // A cancelled writer writes `.bufferend` failed; remove it to model a writer that died without a word.
            try t.replace(BufferBlobNames.end, with: nil)
            try t.replace(BlobPath.name(for: 3), with: nil)
            #expect(await writerGone(t.store))
            for delay in [0, 30] {
                let sink = MemorySink(delayMilliseconds: delay)
                let error = await #expect(throws: TygerCoreError.self) {
                    try await BufferReader.read(from: t.store, to: sink, options: testReadOptions(dop: 16))
                }
                #expect(error?.code == .bufferAbandoned)
                #expect(mismatch(sink.bytes, input) == nil)
            }
        }
    }

    @Test func aWriterThatDiesBeforeTheStartIsReportedAbandoned() async throws {
        try await TestStore.with(.memory) { t in
            let lease = try await t.store.acquireWriterLease()
            let reader = Task { await readError(t.store) }
            try await Task.sleep(for: .milliseconds(100))
            t.memory!._abandonLease()  // the lease dropped without release(), as when a process dies
            _ = lease
            #expect(coreCode(await reader.value) == .bufferAbandoned)
        }
    }

    @Test func readerCanBeCancelledWhileWaitingForAWriter() async throws {
        try await TestStore.with(.file) { t in
            let lease = try await t.store.acquireWriterLease()
            defer { Task { await lease.release() } }
            let reader = Task {
                try await BufferReader.read(from: t.store, to: MemorySink(), options: testReadOptions())
            }
            try await Task.sleep(for: .milliseconds(200))
            let start = ContinuousClock.now
            reader.cancel()
            await #expect(throws: (any Error).self) { try await reader.value }
            #expect(ContinuousClock.now - start < Self.noticeBound)
        }
    }

    @Test func writerCanBeCancelledWhileItsSourceIsQuiet() async throws {
        try await TestStore.with(.memory) { (t: TestStore) async throws in
            let gate = GateSource(prefix: [1, 2, 3])
            let writer = Task { try await BufferWriter.write(from: gate, to: t.store, options: testWriteOptions()) }
            #expect(await eventually(timeout: .seconds(60)) { (try? await t.store.get(BufferBlobNames.start)) != nil })
            writer.cancel()
            await #expect(throws: (any Error).self) { try await writer.value }
            gate.release()  // let the chunker thread finish
            // Cancelled (a signal), not failed: the buffer is left abandoned, for `buffer write --resume`.
            #expect(try await t.blob(BufferBlobNames.end) == nil)
            #expect(coreCode(await readError(t.store)) == .bufferAbandoned)
        }
    }

    @Test func sinkFailureStopsTheReader() async throws {
        try await TestStore.with(.file) { t in
            try await writeBuffer(Payload.random(count: 1 << 20, seed: 6), to: t.store)
            let sink = MemorySink(failAfter: 100_000)
            let error = await #expect(throws: TygerIOError.self) {
                try await BufferReader.read(from: t.store, to: sink, options: testReadOptions())
            }
            #expect(error?.code == .brokenPipe)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func missingBufferIsReported(kind: StoreKind) async throws {
        let store: any BlobStore =
            kind == .memory
            ? InMemoryBlobStore(createContainer: false) : FileBlobStore(directory: "/tmp/tyger-no-such-buffer-\(kind)")
        let error = await readError(store)
        #expect((error as? BlobStoreError)?.code == .containerNotFound)
        var options = testWriteOptions()
        options.createContainer = false
        let writeFailure = await #expect(throws: BlobStoreError.self) {
            try await BufferWriter.write(from: ArraySource([1]), to: store, options: options)
        }
        #expect(writeFailure?.code == .containerNotFound)
    }

    @Test func writerCreatesAMissingFileBuffer() async throws {
        try await withTemporaryDirectory { dir in
            let store = FileBlobStore(directory: dir + "/a/b/c")
            try await writeBuffer([7, 8, 9], to: store)
            #expect(try await readBuffer(store) == [7, 8, 9])
        }
    }
}
