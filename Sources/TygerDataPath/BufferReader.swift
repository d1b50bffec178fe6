import TygerCore
public import TygerIO
public import TygerStorage

/// The read pipeline: a buffer into a byte sink.
///
/// ```
/// window of gets (≤ dop, ≤ memory budget) ─▶ verify checksum + inflate (parallel) ─▶ chain check (in order)
///   ─▶ bounded queue ─▶ (dedicated thread: OutputPump) ─▶ sink
/// ```
/// A blob that is not there yet is polled for with backoff while the writer is alive. The reader stops at the empty
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
                    options: options
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
        while true {
            if let blob = try await store.get(BufferBlobNames.start) {
                return try BufferStartMetadata.decode(Array(blob.bytes))
            }
            if try await monitor.status() == .failed { throw failedError }
            if try await store.writerState() == .gone, try await store.get(BufferBlobNames.start) == nil {
                throw abandonedError
            }
            try await Task.sleep(for: options.backoff(attempt))
            attempt += 1
        }
    }

    static let failedError = TygerCoreError(.bufferFailed, "the buffer is in a permanently failed state")
    static let abandonedError = TygerCoreError(
        .bufferAbandoned,
        "the buffer's writer stopped without finishing it (no .bufferend): the buffer is incomplete"
    )

    /// A blob fetched, verified and decoded, or known to be absent after the end.
    private enum Fetched: Sendable {
        case blob(OutputChunk, VerifiedBlob)
        case absent
        /// Fetching or verifying the blob failed.
        case failed(any Error)
    }

    private static func emitBlobs(
        store: any BlobStore,
        format: BufferFormat,
        monitor: EndMonitor,
        output: HandoffQueue<OutputChunk>,
        options: ReadOptions
    ) async throws -> Int64 {
        try await withThrowingTaskGroup(of: (Int64, Fetched).self) { group in
            var nextToLaunch: Int64 = 0
            var nextToEmit: Int64 = 0
            var ready: [Int64: Fetched] = [:]
            var chain = HashChain()
            let window = Int64(options.window)
            func launch() {
                let number = nextToLaunch
                nextToLaunch += 1
                group.addTask {
                    // Errors are positional: reported when the reader reaches this blob, after every blob before it
                    // is written, so the output is always the longest sound prefix (not whatever raced ahead).
                    do {
                        return (
                            number,
                            try await fetch(number, store: store, format: format, monitor: monitor, options: options)
                        )
                    } catch {
                        return (number, .failed(error))
                    }
                }
            }
            while nextToLaunch < window { launch() }
            while let (number, fetched) = try await group.next() {
                ready[number] = fetched
                while let item = ready.removeValue(forKey: nextToEmit) {
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
                        return nextToEmit
                    }
                    try await output.push(chunk)
                    nextToEmit += 1
                    launch()
                }
            }
            throw TygerCoreError(.missingBlob, "the buffer ended without its end-marker blob")
        }
    }

    private static func fetch(
        _ number: Int64,
        store: any BlobStore,
        format: BufferFormat,
        monitor: EndMonitor,
        options: ReadOptions
    ) async throws -> Fetched {
        let name = BlobPath.name(for: number)
        var attempt = 0
        while true {
            if let blob = try await store.get(name) {
                let (chunk, verified) = try decode(blob, name: name, format: format)
                return .blob(chunk, verified)
            }
            switch try await monitor.status() {
            case .failed: throw failedError
            case .complete: return .absent
            case nil: break
            }
            if try await store.writerState() == .gone {
                // The writer may have finished between our checks: look once more before calling it dead.
                if let blob = try await store.get(name) {
                    let (chunk, verified) = try decode(blob, name: name, format: format)
                    return .blob(chunk, verified)
                }
                switch try await monitor.status() {
                case .failed: throw failedError
                case .complete: return .absent
                case nil: throw abandonedError
                }
            }
            try await Task.sleep(for: options.backoff(attempt))
            attempt += 1
        }
    }

    /// Verifies a blob and turns it into output: the stored bytes themselves, or a freshly inflated copy.
    private static func decode(
        _ blob: StoredBlob,
        name: String,
        format: BufferFormat
    ) throws -> (OutputChunk, VerifiedBlob) {
        let verified = try BlobCodec.verify(blob.bytes, metadata: blob.metadata, format: format, blobName: name)
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
