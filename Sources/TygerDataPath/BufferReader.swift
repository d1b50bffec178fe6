import Synchronization
import TygerCore
public import TygerIO
public import TygerStorage

/// The read pipeline: a buffer into a byte sink.
///
/// ```
/// window of gets (≤ dop, ≤ memory budget) ─▶ verify checksum + inflate (parallel) ─▶ chain check (in order)
///   ─▶ bounded queue ─▶ (dedicated thread: OutputPump) ─▶ sink
/// ```
/// A blob that is not there yet is waited for while the writer is alive: for up to `blobWait` at a time where the
/// store can wait (a long poll, a look every 5 ms on disk), else polled for with backoff. The reader stops at the empty
/// end-marker blob; it fails clearly when `.bufferend` says `failed`, when a blob before the end is missing, and when
/// the writer's lease is gone without `.bufferend` (the writer died) — it never waits forever on a dead writer.
public enum BufferReader {
    /// Reads the buffer held by `store` into `sink`.
    ///
    /// - Returns: What was read.
    /// - Throws: `TygerCoreError` (`.bufferFailed`, `.bufferAbandoned`, `.missingBlob`, `.checksumMismatch`,
    ///   `.hashChainMismatch`, `.corruptBlob`, `.unsupportedFormat`), `BlobStoreError` (`.containerNotFound`, ...),
    ///   `TygerIOError` `.brokenPipe` when the sink's reader went away, or `CancellationError`.
    public static func read(
        from store: any BlobStore,
        to sink: any ByteSink,
        options: ReadOptions = ReadOptions(),
        bytesWritten: LockedCounter? = nil
    ) async throws -> TransferSummary {
        guard try await store.containerExists() else {
            throw BlobStoreError(.containerNotFound, "the buffer does not exist")
        }
        let monitor = EndMonitor(store: store)
        let start = try await waitForStart(store: store, monitor: monitor, options: options)
        // From an offset: the blobs before it are passed over by their metadata (their chain still checked), and
        // the read starts with the blob that holds the offset.
        var first = Resumption()
        if options.offset > 0 {
            let prefix = try await StoredPrefix.scan(store, start: start, upTo: options.offset)
            first = Resumption(blob: prefix.nextBlob, chain: prefix.chain, skip: options.offset - prefix.bytes)
        }
        let output = HandoffQueue<OutputChunk>(capacity: 4)
        let counter = bytesWritten ?? LockedCounter()
        async let pumped = DedicatedThread.run(name: "tyger-output") {
            try OutputPump.run(input: output, sink: sink, bytesWritten: counter)
        }
        let blobs: Int64
        do {
            blobs = try await withTaskCancellationHandler {
                try await emitBlobs(
                    store: store,
                    format: start.format,
                    monitor: monitor,
                    output: output,
                    options: options,
                    from: first
                )
            } onCancel: {
                output.fail(CancellationError())
            }
            output.close()
        } catch {
            // Everything queued is verified and in order (errors are positional): let the pump write it, then report
            // the error. After a sink failure or cancellation the queue is already failed and this returns at once.
            output.close()
            _ = try? await pumped
            throw error
        }
        let bytes = try await pumped
        return TransferSummary(bytes: bytes, blobs: blobs, storedBytes: bytes)
    }

    private static func waitForStart(
        store: any BlobStore,
        monitor: EndMonitor,
        options: ReadOptions
    ) async throws
        -> BufferStartMetadata
    {
        var attempt = 0
        let abandoned = AbandonedSince()
        while true {
            let started = ContinuousClock.now
            let look = try await store.awaitBlob(BufferBlobNames.start, upTo: options.blobWait)
            if case .found(let blob) = look { return try BufferStartMetadata.decode(Array(blob.bytes)) }
            if try await monitor.status() == .failed { throw failedError }
            if try await store.writerState() == .gone, try await store.get(BufferBlobNames.start) == nil {
                if abandoned.windowPassed(options.resumeWindow) { throw abandonedError }
            } else {
                abandoned.writerBack()
            }
            if backsOff(after: look, started: started, options: options) {
                try await Task.sleep(for: options.backoff(attempt))
                attempt += 1
            }
        }
    }

    /// Whether a look for a blob that is not there is followed by the backoff before the next: after a store that
    /// could not wait, or one that answered well before its wait (the buffer's end is there), so that no request
    /// follows another at once; not after a full wait.
    private static func backsOff(after look: BlobWait, started: ContinuousClock.Instant, options: ReadOptions) -> Bool {
        switch look {
        case .found: false
        case .lookedOnce: true
        case .waited: ContinuousClock.now - started < options.blobWait / 4
        }
    }

    /// How long a run's input buffer, found abandoned, waits for its write to be resumed (`run exec --attach`)
    /// before the run fails: 10 minutes.
    public static let runInputResumeWindow: Duration = .seconds(600)

    /// Since when a reader has found its buffer abandoned: reported as such once ``ReadOptions/resumeWindow`` has
    /// passed without a resumed write (a writer at work again resets it).
    private final class AbandonedSince: Sendable {
        private let since = Mutex<ContinuousClock.Instant?>(nil)

        /// Notes that the buffer is abandoned now; whether the window has passed.
        func windowPassed(_ window: Duration) -> Bool {
            guard window > .zero else { return true }
            let now = ContinuousClock.now
            return since.withLock { since in
                if since == nil { since = now }
                return now - since! >= window
            }
        }

        func writerBack() { since.withLock { $0 = nil } }
    }

    static let failedError = TygerCoreError(.bufferFailed, "the buffer is in a permanently failed state")
    static let abandonedError = TygerCoreError(
        .bufferAbandoned,
        "the buffer's writer stopped without finishing it (no .bufferend): the buffer is incomplete "
            + "(`tyger buffer write --resume` continues it)"
    )

    /// A blob fetched, verified and decoded, or known to be absent after the end.
    private enum Outcome: Sendable {
        case blob(OutputChunk, VerifiedBlob)
        /// An upstream-format blob whose MD5 is not checked yet (see `verifyWaitingMD5s`).
        case unverified(StoredBlob)
        case absent
        /// Fetching or verifying the blob failed.
        case failed(any Error)
    }

    /// Outcomes of finished fetch tasks not yet taken by the emitting loop.
    private final class Finished: Sendable {
        let outcomes = Mutex<[Int64: Outcome]>([:])

        func takeAll() -> [Int64: Outcome] {
            outcomes.withLock { outcomes in
                defer { outcomes.removeAll(keepingCapacity: true) }
                return outcomes
            }
        }
    }

    /// Where a read starts: the first blob to fetch, the chain value before it, and the bytes of the stream to pass
    /// over from there on.
    private struct Resumption {
        var blob: Int64 = 0
        var chain = HashChain()
        var skip: Int64 = 0
    }

    private static func emitBlobs(
        store: any BlobStore,
        format: BufferFormat,
        monitor: EndMonitor,
        output: HandoffQueue<OutputChunk>,
        options: ReadOptions,
        from first: Resumption
    ) async throws -> Int64 {
        let fetcher = Fetcher(store: store, format: format, monitor: monitor, options: options)
        fetcher.nextToEmit.add(first.blob)
        // Fetch tasks leave their outcome here as they finish, so each turn takes every finished one at once (the
        // group's results come one per `next()`): upstream blobs can then be hashed in runs.
        let finished = Finished()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            var nextToLaunch = first.blob
            var nextToEmit = first.blob
            var ready: [Int64: Outcome] = [:]
            var chain = first.chain
            var skip = first.skip
            let window = first.blob + Int64(options.window)
            func launch() {
                let number = nextToLaunch
                nextToLaunch += 1
                group.addTask {
                    // Errors are positional: reported when the reader reaches this blob, after every blob before it
                    // is written, so the output is always the longest sound prefix (not whatever raced ahead).
                    let outcome: Outcome
                    do {
                        outcome = try await fetcher.fetch(number)
                    } catch {
                        outcome = .failed(error)
                    }
                    finished.outcomes.withLock { $0[number] = outcome }
                }
            }
            while nextToLaunch < window { launch() }
            while try await group.next() != nil {
                ready.merge(finished.takeAll()) { old, _ in old }
                while let item = verifyWaitingMD5s(in: &ready, from: nextToEmit, format: format) {
                    let name = BlobPath.name(for: nextToEmit)
                    if case .failed(let error) = item { throw error }
                    guard case .blob(let chunk, let verified) = item else {
                        throw TygerCoreError(
                            .missingBlob,
                            "blob number \(nextToEmit) (\(name)) was expected to exist but does not"
                        )
                    }
                    chain.append(verified.checksum)
                    guard verified.storedChain == chain.value else {
                        throw TygerCoreError(
                            .hashChainMismatch,
                            verified.storedChain == nil
                                ? "blob \(name): expected x-ms-meta-cumulative_hash_chain metadata missing"
                                : "hash chain mismatch at blob \(name): blobs are missing, reordered or replaced"
                        )
                    }
                    if verified.rawLength == 0 {
                        group.cancelAll()
                        // A writer that failed after storing the end-marker blob (its sync or its `.bufferend`
                        // `complete` failed) marked the buffer failed: the reader reports it too.
                        if try await monitor.status() == .failed { throw failedError }
                        if skip > 0 {
                            throw TygerCoreError(
                                .invalidArgument,
                                "the offset \(options.offset) is past the buffer's end "
                                    + "(it holds \(options.offset - skip) bytes)"
                            )
                        }
                        return nextToEmit
                    }
                    if skip >= Int64(chunk.bytes.count) {
                        skip -= Int64(chunk.bytes.count)
                    } else if skip > 0 {
                        var rest = chunk
                        rest.bytes = UnsafeRawBufferPointer(rebasing: chunk.bytes[Int(skip)...])
                        rest.immutablePages = false  // no longer page-aligned
                        skip = 0
                        try await output.push(rest)
                    } else {
                        try await output.push(chunk)
                    }
                    nextToEmit += 1
                    fetcher.nextToEmit.add(1)
                    launch()
                }
            }
            throw TygerCoreError(.missingBlob, "the buffer ended without its end-marker blob")
        }
    }

    /// What fetching a blob needs, shared by the fetch tasks of one read.
    private struct Fetcher: Sendable {
        let store: any BlobStore
        let format: BufferFormat
        let monitor: EndMonitor
        let options: ReadOptions
        /// The next blob to emit: only it and the one after wait on the store (a long poll, a look every 5 ms); the
        /// fetches further ahead look with the usual backoff until they are among those two, so that a reader waiting
        /// for a slow writer keeps two waits going, not its whole window.
        let nextToEmit = LockedCounter()
        /// Whether the store waited for a blob once (``BlobWait/waited``): stores that cannot wait are polled with
        /// the backoff, every fetch alike.
        let storeWaits = LockedCounter()
        /// Since when the buffer has been found abandoned, for ``ReadOptions/resumeWindow``.
        let abandoned = AbandonedSince()

        func fetch(_ number: Int64) async throws -> Outcome {
            let name = BlobPath.name(for: number)
            var attempt = 0
            while true {
                let eager = number <= nextToEmit.value + 1 || storeWaits.value == 0
                let started = ContinuousClock.now
                let look: BlobWait
                if eager {
                    look = try await store.awaitBlob(name, upTo: options.blobWait)
                    if case .waited = look, storeWaits.value == 0 { storeWaits.add(1) }
                } else {
                    look = try await store.get(name).map { .found($0) } ?? .lookedOnce
                }
                if case .found(let blob) = look { return try decode(blob, name: name) }
                switch try await monitor.status() {
                case .failed: throw failedError
                case .complete:
                    // The write may have stored this blob and ended between the look above and the status: look
                    // once more before calling it absent (a concurrent reader failed with "expected to exist").
                    if let blob = try await store.get(name) { return try decode(blob, name: name) }
                    return .absent
                case nil: break
                }
                if try await store.writerState() == .gone {
                    // The writer may have finished between our checks: look once more before calling it dead.
                    if let blob = try await store.get(name) { return try decode(blob, name: name) }
                    switch try await monitor.status() {
                    case .failed: throw failedError
                    case .complete: return .absent
                    case nil: if abandoned.windowPassed(options.resumeWindow) { throw abandonedError }
                    }
                } else {
                    abandoned.writerBack()
                }
                guard BufferReader.backsOff(after: look, started: started, options: options) else { continue }
                let until = ContinuousClock.now + options.backoff(attempt)
                attempt += 1
                if eager {
                    try await Task.sleep(for: until - ContinuousClock.now)
                } else {
                    // Ahead of the next two: the usual backoff between looks, but it becomes one of them at once.
                    while ContinuousClock.now < until, number > nextToEmit.value + 1 {
                        try await Task.sleep(for: min(until - ContinuousClock.now, .milliseconds(50)))
                    }
                }
            }
        }

        private func decode(_ blob: StoredBlob, name: String) throws -> Outcome {
            // MD5 is sequential within a blob: upstream blobs are checked later, side by side (`verifyWaitingMD5s`).
            if format == .upstream { return .unverified(blob) }
            let (chunk, verified) = try BufferReader.decode(blob, name: name, format: format, precomputedMD5: nil)
            return .blob(chunk, verified)
        }
    }

    /// Takes blob `number`'s outcome out of `ready`, verified. When it is an unchecked upstream blob, the run of
    /// unchecked blobs of the same length that follows it (up to `Checksums.md5Lanes`) is hashed with it, side by
    /// side: the slower the hashing, the longer the runs that wait, so the rate adapts to the load.
    private static func verifyWaitingMD5s(
        in ready: inout [Int64: Outcome],
        from number: Int64,
        format: BufferFormat
    ) -> Outcome? {
        guard case .unverified(let first) = ready[number] else { return ready.removeValue(forKey: number) }
        var run: [StoredBlob] = [first]
        while run.count < Checksums.md5Lanes, case .unverified(let next) = ready[number + Int64(run.count)],
            next.bytes.count == first.bytes.count
        {
            run.append(next)
        }
        let digests = Checksums.md5Base64(multi: run.map(\.bytes))
        for (i, blob) in run.enumerated() {
            let n = number + Int64(i)
            do {
                let (chunk, verified) = try decode(
                    blob,
                    name: BlobPath.name(for: n),
                    format: format,
                    precomputedMD5: digests[i]
                )
                ready[n] = .blob(chunk, verified)
            } catch {
                ready[n] = .failed(error)
            }
        }
        return ready.removeValue(forKey: number)
    }

    /// Verifies a blob and turns it into output: the stored bytes themselves, or a freshly inflated copy.
    private static func decode(
        _ blob: StoredBlob,
        name: String,
        format: BufferFormat,
        precomputedMD5: String?
    ) throws -> (OutputChunk, VerifiedBlob) {
        let verified = try BlobCodec.verify(
            blob.bytes,
            metadata: blob.metadata,
            format: format,
            blobName: name,
            precomputedMD5: precomputedMD5
        )
        switch verified.encoding {
        case .raw:
            return (OutputChunk(bytes: blob.bytes, immutablePages: blob.isMapped, owner: blob), verified)
        case .deflate:
            let inflated = HeapBytes(count: verified.rawLength)
            try BlobCodec.inflate(blob.bytes, into: inflated.memory, blobName: name)
            return (
                OutputChunk(bytes: UnsafeRawBufferPointer(inflated.memory), immutablePages: false, owner: inflated),
                verified
            )
        }
    }
}

/// Heap memory owned by an object, freed with it.
final class HeapBytes: @unchecked Sendable {
    // @unchecked: written once while the pipeline owns it exclusively, then only read.
    let memory: UnsafeMutableRawBufferPointer
    private let allocation: UnsafeMutableRawBufferPointer
    init(count: Int) {
        allocation = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
        memory = UnsafeMutableRawBufferPointer(rebasing: allocation[0..<count])
    }
    deinit { allocation.deallocate() }
}
