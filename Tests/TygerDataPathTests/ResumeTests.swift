import Synchronization
import Testing
import TygerCore
import TygerDataPath
import TygerIO
import TygerStorage
import TygerTestSupport

/// A lost connection, as the HTTP clients report one after their retries.
private struct LinkLost: TransferInterruption, CustomStringConvertible {
    var interruptsTransfer: Bool { true }
    var description: String { "test: the link is lost" }
}

/// A store whose link drops: from the `dropAt`-th blob put on, every put fails as a lost connection does. The puts
/// run in parallel, so the blobs stored by then need not be the first ones: later blobs may be stored after a gap.
private final class DroppingLinkStore: BlobStore {
    let base: any BlobStore
    let dropAt: Int
    private let puts = Mutex(0)

    init(_ base: any BlobStore, dropAt: Int) {
        self.base = base
        self.dropAt = dropAt
    }

    var location: String { base.location }
    func containerExists() async throws -> Bool { try await base.containerExists() }
    func createContainer() async throws { try await base.createContainer() }
    func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws {
        if !name.hasPrefix(".") {
            let n = puts.withLock { n in
                n += 1
                return n
            }
            if n >= dropAt { throw LinkLost() }
        }
        try await base.put(name, bytes: bytes, metadata: metadata)
    }
    func get(_ name: String) async throws -> StoredBlob? { try await base.get(name) }
    func head(_ name: String) async throws -> BlobMetadata? { try await base.head(name) }
    func inspect(_ name: String) async throws -> BlobStat? { try await base.inspect(name) }
    func sync() async throws { try await base.sync() }
    func acquireWriterLease() async throws -> any WriterLease { try await base.acquireWriterLease() }
    func resumeWriterLease() async throws -> any WriterLease { try await base.resumeWriterLease() }
    func writerState() async throws -> WriterState { try await base.writerState() }
}

/// An in-memory input that can be positioned, as a file can.
private final class SeekableSource: ByteSource {
    let bytes: [UInt8]
    let position = Mutex(0)
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var supportsTimeouts: Bool { false }
    func read(into buffer: UnsafeMutableRawBufferPointer, waitAtMost: Duration?) throws -> ReadOutcome {
        position.withLock { position in
            let n = min(buffer.count, 50_000, bytes.count - position)
            if n <= 0 { return .endOfStream }
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + position, byteCount: n) }
            position += n
            return .bytes(n)
        }
    }
    func seek(_ offset: Int64) { position.withLock { $0 = Int(offset) } }
}

/// A write of `payload` that loses its link at a seeded point; returns how many data blobs it stored.
private func interruptedWrite(
    _ payload: [UInt8],
    to store: any BlobStore,
    seed: UInt64,
    dropAt: Int? = nil,
    options: WriteOptions
) async throws -> Int {
    var random = SeededGenerator(seed: seed)
    let blobs = (payload.count + options.blockSize - 1) / options.blockSize
    let dropAt = dropAt ?? Int.random(in: 1...max(1, blobs), using: &random)
    await #expect(throws: LinkLost.self) {
        try await BufferWriter.write(
            from: ArraySource(payload, maxRead: 50_000),
            to: DroppingLinkStore(store, dropAt: dropAt),
            options: options
        )
    }
    var stored = 0
    while try await store.head(BlobPath.name(for: Int64(stored))) != nil { stored += 1 }
    return stored
}

struct ResumeTests {
    static let formats: [(BufferFormat, CompressionLevel)] = [
        (.native, .none), (.native, .fast), (.native, .best), (.upstream, .none),
    ]

    @Test(arguments: StoreKind.allCases, 0..<4)
    func writesInterruptedAtSeededPointsResumeToTheSameBytes(kind: StoreKind, format: Int) async throws {
        let (bufferFormat, compression) = Self.formats[format]
        for seed in UInt64(1)...6 {
            try await TestStore.with(kind) { t in
                // Half random (incompressible), half text: compressed blobs of both kinds.
                let payload =
                    Payload.random(count: 700_000 + Int(seed) * 37_111, seed: seed)
                    + Array(String(repeating: "line of text \(seed)\n", count: 40_000).utf8)
                let options = testWriteOptions(format: bufferFormat, compression: compression)
                let stored = try await interruptedWrite(payload, to: t.store, seed: seed, options: options)
                // Interrupted, not failed: no `.bufferend`, and readers say the writer stopped.
                #expect(try await t.store.get(BufferBlobNames.end) == nil)
                #expect(coreCode(await readError(t.store)) == .bufferAbandoned)
                // A file is positioned after the stored bytes; a pipe's are read again and checked.
                let seekable = seed.isMultiple(of: 2)
                let source = SeekableSource(payload)
                let resumed = try await BufferWriter.resume(
                    from: source,
                    to: t.store,
                    options: testWriteOptions(),
                    input: seekable ? .seekable(seek: { source.seek($0) }) : .resent
                )
                #expect(resumed.resumedAt + resumed.transfer.bytes == Int64(payload.count), "seed \(seed)")
                #expect(
                    resumed.resumedAt == min(Int64(stored) * Int64(options.blockSize), Int64(payload.count)),
                    "seed \(seed)"
                )
                #expect(try await readBuffer(t.store) == payload, "seed \(seed), \(stored) blobs stored before")
                let start = try #require(try await t.store.get(BufferBlobNames.start))
                #expect(try BufferStartMetadata.decode(Array(start.bytes)).format == bufferFormat)
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aResumeWithOtherInputIsRefusedAndTheBufferStaysResumable(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            let payload = Payload.random(count: 1_000_000, seed: 9)
            var options = testWriteOptions(compression: .fast)
            options.dop = 1
            // One put at a time: blobs 0 to 3 are stored.
            #expect(try await interruptedWrite(payload, to: t.store, seed: 3, dropAt: 5, options: options) == 4)
            var other = payload
            other[70_000] ^= 1  // in the second blob
            let error = await #expect(throws: TygerCoreError.self) {
                try await BufferWriter.resume(from: ArraySource(other), to: t.store, input: .resent)
            }
            #expect(error?.code == .inputMismatch)
            #expect(error?.message.contains("the input differs from the buffer's stored bytes") == true, "\(error!)")
            let short = await #expect(throws: TygerCoreError.self) {
                try await BufferWriter.resume(from: ArraySource(Array(payload[0..<1000])), to: t.store, input: .resent)
            }
            #expect(short?.message.contains("the input ended after 1000 bytes") == true, "\(short!)")
            // Nothing was written: the same input still resumes it.
            #expect(try await t.store.get(BufferBlobNames.end) == nil)
            _ = try await BufferWriter.resume(from: ArraySource(payload), to: t.store, input: .resent)
            #expect(try await readBuffer(t.store) == payload)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aReaderWithAResumeWindowFollowsTheResumedWrite(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            let payload = Payload.random(count: 900_000, seed: 21)
            var options = testWriteOptions()
            options.dop = 1
            _ = try await interruptedWrite(payload, to: t.store, seed: 21, dropAt: 4, options: options)
            var readOptions = testReadOptions()
            readOptions.resumeWindow = .seconds(60)
            let reader = Task { try await readBuffer(t.store, options: readOptions) }
            try await Task.sleep(for: .milliseconds(500))
            _ = try await BufferWriter.resume(from: ArraySource(payload), to: t.store, input: .resent)
            #expect(try await reader.value == payload)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func blobsStoredAfterAGapMustBeCutAsThisWriteCutsThem(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            let payload = Payload.random(count: 500_000, seed: 22)
            try await writeBuffer(payload, to: t.store)
            // The interrupted write stored blobs 0, 1 and 3 (side by side), not 2, nor the end.
            for name in ["00/002", "00/004", "00/005", "00/006", "00/007", BufferBlobNames.end] {
                try t.replace(name, with: nil)
            }
            var other = testWriteOptions()
            other.blockSize = 32 << 10
            let refused = await #expect(throws: TygerCoreError.self) {
                try await BufferWriter.resume(
                    from: ArraySource(payload),
                    to: t.store,
                    options: other,
                    input: .resent,
                    blockSizeGiven: true
                )
            }
            #expect(refused?.code == .inputMismatch, "\(refused!)")
            #expect(refused?.message.contains("not the block size 32768") == true, "\(refused!)")
            #expect(try await t.store.get(BufferBlobNames.end) == nil)
            // With the stored block size (from `.bufferstart`), blob 3 is stored again as it was.
            let resumed = try await BufferWriter.resume(from: ArraySource(payload), to: t.store, input: .resent)
            #expect(resumed.resumedAt == 2 * 65536)
            #expect(try await readBuffer(t.store) == payload)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func endedBuffersAreNotResumed(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            try await writeBuffer([1, 2, 3], to: t.store)
            let complete = await #expect(throws: TygerCoreError.self) {
                try await BufferWriter.resume(from: ArraySource([1, 2, 3]), to: t.store, input: .resent)
            }
            #expect(complete?.message == "the buffer is complete: there is nothing to resume")
            // An attached run exec takes a complete input as done, without reading its input.
            let done = try await BufferWriter.resume(
                from: ArraySource([9]),
                to: t.store,
                input: .resent,
                acceptComplete: true
            )
            #expect(done.resumedAt == 3 && done.transfer.bytes == 0)
        }
        try await TestStore.with(kind) { t in
            let source = ArraySource(Payload.random(count: 300_000, seed: 2), failAt: 100_000)
            await #expect(throws: TygerIOError.self) {
                try await BufferWriter.write(from: source, to: t.store, options: testWriteOptions())
            }
            let failed = await #expect(throws: TygerCoreError.self) {
                try await BufferWriter.resume(from: ArraySource([]), to: t.store, input: .resent)
            }
            #expect(failed?.message == "the buffer is marked failed: it cannot be resumed")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aCancelledWriteLeavesTheBufferAbandoned(kind: StoreKind) async throws {
        try await TestStore.with(kind) { (t: TestStore) async throws in
            let gate = GateSource(prefix: Payload.random(count: 200_000, seed: 5))
            let writer = Task {
                try await BufferWriter.write(from: gate, to: t.store, options: testWriteOptions())
            }
            #expect(await eventually(timeout: .seconds(30)) { (try? await t.store.get("00/002")) != nil })
            writer.cancel()
            gate.release()
            _ = await writer.result
            #expect(try await t.store.get(BufferBlobNames.end) == nil)
            #expect(coreCode(await readError(t.store)) == .bufferAbandoned)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func readsFromAnOffsetGiveTheRestOfTheBuffer(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            let payload = Payload.random(count: 600_000, seed: 12)
            try await writeBuffer(payload, to: t.store, options: testWriteOptions(compression: .fast))
            let block = 64 << 10
            var random = SeededGenerator(seed: 12)
            let offsets =
                [1, block - 1, block, block + 1, payload.count - 1, payload.count]
                + (0..<6).map { _ in Int.random(in: 0..<payload.count, using: &random) }
            for offset in offsets {
                var options = testReadOptions()
                options.offset = Int64(offset)
                #expect(
                    try await readBuffer(t.store, options: options) == Array(payload[offset...]),
                    "offset \(offset)"
                )
            }
            var past = testReadOptions()
            past.offset = Int64(payload.count + 1)
            let error = await readError(t.store, options: past)
            #expect("\(error!)".contains("is past the buffer's end (it holds 600000 bytes)"), "\(error!)")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func theChainOfTheBlobsPassedOverIsStillChecked(kind: StoreKind) async throws {
        try await TestStore.with(kind) { t in
            let payload = Payload.random(count: 400_000, seed: 13)
            try await writeBuffer(payload, to: t.store)
            // Blob 1 swapped with blob 0's copy: its chain no longer follows from blob 0.
            let first = try #require(try await t.blob("00/000"))
            try t.replace("00/001", with: first)
            var options = testReadOptions()
            options.offset = 300_000
            #expect(coreCode(await readError(t.store, options: options)) == .hashChainMismatch)
        }
    }
}
