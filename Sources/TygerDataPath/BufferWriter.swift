import TygerCore
public import TygerIO
public import TygerStorage

#if canImport(Glibc)
private import Glibc
#endif

/// The write pipeline: a byte source into a buffer.
///
/// ```
/// source ──(dedicated thread: Chunker)──▶ ring of blocks ──▶ dop tasks: checksum/compress ─▶ chain (in order) ─▶ put
/// ```
/// 1. The chunker reads the source into fixed-size blocks taken from a `BlockRing`; it stops reading while every
///    block is in use (back-pressure), and flushes a partial block after the flush interval.
/// 2. `dop` tasks take blocks in stream order, compute the checksum (and the deflated form), get the blob's chain
///    value from the `ChainSequencer`, and put the blob. The block goes back to the ring when its lease is dropped.
///    The upstream format's MD5 is costlier: one hashing task per core hashes the waiting blocks side by side and
///    hands them to `dop` put tasks.
/// 3. After the source ends: the empty end-marker blob, `sync()` (durability), then `.bufferend` `complete`.
/// Any failure aborts every stage and writes `.bufferend` `failed`, so readers stop with a clear error, except an
/// interruption (``isInterruption(_:)``: a signal, a lost link), which lets go of the lease without `.bufferend`: the
/// buffer is then abandoned, which readers report as clearly, and a resumed write (`resume`) can continue it.
public enum BufferWriter {
    /// Writes everything `source` yields into the buffer held by `store`.
    ///
    /// - Parameters:
    ///   - source: The bytes; read on a dedicated thread.
    ///   - store: The buffer's blob store.
    ///   - options: Block size, dop, flush interval, format, compression.
    ///   - bytesRead: Counts raw bytes as they are stored (for progress).
    /// - Returns: What was written.
    /// - Throws: `BlobStoreError` `.leaseHeld` (another writer), `TygerCoreError` `.invalidArgument` ("buffer cannot be
    ///   overwritten" when it already holds data), the source's or store's errors, or `CancellationError`. After the
    ///   lease is taken, every failure marks the buffer failed.
    public static func write(
        from source: any ByteSource,
        to store: any BlobStore,
        options: WriteOptions = WriteOptions(),
        bytesStored: LockedCounter? = nil
    ) async throws -> TransferSummary {
        precondition(options.blockSize > 0 && options.dop > 0, "block size and dop must be positive")
        if try await !store.containerExists() {
            guard options.createContainer else {
                throw BlobStoreError(.containerNotFound, "the buffer does not exist")
            }
            try await store.createContainer()
        }
        let lease = try await store.acquireWriterLease()
        do {
            if try await store.head(BufferBlobNames.start) != nil {
                throw TygerCoreError(
                    .invalidArgument,
                    "buffer cannot be overwritten: it already holds data (buffers are write-once)"
                )
            }
        } catch {
            await release(lease)
            throw error
        }
        return try await finish(lease: lease, store: store) {
            try await writeData(from: source, to: store, options: options, bytesStored: bytesStored, after: nil)
        }
    }

    /// Runs `body` (the data), then makes it durable and ends the buffer `complete`; on a failure ends it `failed`,
    /// on an interruption lets it be abandoned. Releases `lease` in every case.
    static func finish(
        lease: any WriterLease,
        store: any BlobStore,
        _ body: () async throws -> TransferSummary
    ) async throws -> TransferSummary {
        do {
            let summary = try await body()
            try await store.sync()
            try await putMetadata(BufferEndMetadata.encoded(.complete), name: BufferBlobNames.end, store: store)
            await release(lease)
            return summary
        } catch {
            if !isInterruption(error), (error as? TygerCoreError)?.code != .inputMismatch {
                // Best effort: the original error is what the caller needs to see.
                try? await putMetadata(BufferEndMetadata.encoded(.failed), name: BufferBlobNames.end, store: store)
            }
            await release(lease)
            throw error
        }
    }

    /// Releases the writer lease even when the write's task was cancelled (a signal): the release is a request to the
    /// store (an S3 lease object is only ever removed so), which a cancelled task's client would not send.
    static func release(_ lease: any WriterLease) async {
        await Task { await lease.release() }.value
    }

    /// Whether `error` stopped the write without anything being wrong with its data or its buffer: cancellation
    /// (a signal), or a link that failed after the retries (``TransferInterruption``). Such a write leaves the buffer
    /// abandoned instead of failed, so that it can be resumed.
    public static func isInterruption(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        if let error = error as? TygerCoreError { return error.code == .cancelled }
        if let error = error as? any TransferInterruption { return error.interruptsTransfer }
        return false
    }

    /// Cores available to this process (hashing workers for the upstream format).
    static let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    static func putMetadata(_ bytes: [UInt8], name: String, store: any BlobStore) async throws {
        let md5 = Checksums.md5Base64(bytes)
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        try await store.put(
            name,
            bytes: UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count]),
            metadata: BlobMetadata(contentMD5: md5)
        )
    }

    /// Writes the data blobs and the end marker: from the first (after `.bufferstart`), or after `prefix`, the blobs
    /// an earlier writer stored (a resumed write, whose source is positioned after them).
    static func writeData(
        from source: any ByteSource,
        to store: any BlobStore,
        options: WriteOptions,
        bytesStored: LockedCounter?,
        after prefix: StoredPrefix?
    ) async throws -> TransferSummary {
        let codec = BlobCodec(format: options.format, compression: options.compression)
        if prefix == nil {
            let native = options.format == .native
            let start = BufferStartMetadata(
                format: options.format,
                codec: native ? (options.compression == .none ? "none" : "deflate") : nil,
                level: native && options.compression != .none ? options.compression.rawValue : nil,
                blockSize: native ? options.blockSize : nil
            )
            try await putMetadata(
                start.encoded(),
                name: BufferBlobNames.start,
                store: store
            )
        }
        // A resumed write may find blobs after the first missing one (the earlier writer stored them out of order):
        // each must be what this write would store.
        let resuming = prefix != nil
        let put: @Sendable (Int64, EncodedBlock) async throws -> Void = { number, encoded in
            if resuming {
                try await putAgain(number, encoded, store: store)
            } else {
                try await store.put(BlobPath.name(for: number), bytes: encoded.stored, metadata: encoded.metadata)
            }
        }

        let ring = BlockRing(capacity: options.effectiveRingSlots, blockSize: options.blockSize)
        let chunks = HandoffQueue<Chunk>(capacity: options.effectiveRingSlots)
        let sequencer = ChainSequencer(first: prefix?.nextBlob ?? 0, chain: prefix?.chain ?? HashChain())
        let stored = LockedCounter()
        let raw = LockedCounter()
        let abort: @Sendable (any Error) -> Void = { error in
            chunks.fail(error)
            ring.shutDown(error)
            sequencer.fail(error)
        }
        // The chunker gets its own thread and is not awaited: if the pipeline fails while it is blocked reading
        // (a terminal, a FIFO), it notices on its next push and exits.
        DedicatedThread.start(name: "tyger-chunker") {
            do {
                try Chunker.run(
                    source: source,
                    ring: ring,
                    output: chunks,
                    flushInterval: options.flushInterval,
                    firstNumber: prefix?.nextBlob ?? 0,
                    firstOffset: prefix?.bytes ?? 0
                )
            } catch {
                abort(error)
            }
        }
        let scratchSize = BlobCodec.scratchSize(blockSize: options.blockSize, compression: options.compression)
        try await withTaskCancellationHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                if codec.format == .upstream {
                    // MD5 is the bottleneck: one hashing stage per core feeds `dop` put tasks, so hashing never waits
                    // for a put.
                    let puts = HandoffQueue<PendingPut>(capacity: options.effectiveRingSlots)
                    group.addTask {
                        try await withThrowingTaskGroup(of: Void.self) { hashers in
                            for _ in 0..<max(1, min(options.dop, Self.cores)) {
                                hashers.addTask {
                                    do {
                                        try await hashBlocks(
                                            from: chunks,
                                            codec: codec,
                                            ring: ring,
                                            sequencer: sequencer,
                                            to: puts
                                        )
                                    } catch {
                                        // At once, not after the other hashers: they may be waiting on the queues.
                                        puts.fail(error)
                                        abort(error)
                                        throw error
                                    }
                                }
                            }
                            try await hashers.waitForAll()
                        }
                        puts.close()
                    }
                    for _ in 0..<options.dop {
                        group.addTask {
                            do {
                                while let pending = try await puts.pop() {
                                    try await put(pending.number, pending.encoded)
                                    stored.add(Int64(pending.encoded.stored.count))
                                    raw.add(Int64(pending.lease.block.count))
                                    bytesStored?.add(Int64(pending.lease.block.count))
                                }
                            } catch {
                                puts.fail(error)
                                abort(error)
                                throw error
                            }
                        }
                    }
                    try await group.waitForAll()
                    return
                }
                for _ in 0..<options.dop {
                    group.addTask {
                        let scratch: UnsafeMutableRawBufferPointer? =
                            scratchSize > 0 ? .allocate(byteCount: scratchSize, alignment: 64) : nil
                        defer { scratch?.deallocate() }
                        do {
                            while let chunk = try await chunks.pop() {
                                let lease = BlockLease(chunk.block, ring: ring)
                                var encoded = codec.encode(lease.block.bytes, scratch: scratch)
                                encoded.metadata.hashChain = try await sequencer.link(
                                    chunk.number,
                                    checksum: encoded.checksum
                                )
                                try await put(chunk.number, encoded)
                                stored.add(Int64(encoded.stored.count))
                                raw.add(Int64(chunk.block.count))
                                bytesStored?.add(Int64(chunk.block.count))
                                withExtendedLifetime(lease) {}
                            }
                        } catch {
                            abort(error)
                            throw error
                        }
                    }
                }
                try await group.waitForAll()
            }
        } onCancel: {
            abort(CancellationError())
        }
        try Task.checkCancellation()
        // The end marker: an empty blob numbered after the last data blob, chained like the others.
        let count = sequencer.linked
        var end = codec.encode(UnsafeRawBufferPointer(start: nil, count: 0), scratch: nil)
        end.metadata.hashChain = try await sequencer.link(count, checksum: end.checksum)
        try await put(count, end)
        return TransferSummary(bytes: raw.value, blobs: count, storedBytes: stored.value)
    }

    /// A hashed upstream-format block waiting for its put; the lease holds the block until the put is done.
    private struct PendingPut: Sendable {
        let number: Int64
        let lease: BlockLease
        let encoded: EncodedBlock
    }

    /// The hashing stage of the upstream format: takes the blocks already waiting (up to `Checksums.md5Lanes`, MD5 is
    /// sequential within a blob but not across blobs), hashes them side by side, links them into the chain in order
    /// and queues their puts.
    private static func hashBlocks(
        from chunks: HandoffQueue<Chunk>,
        codec: BlobCodec,
        ring: BlockRing,
        sequencer: ChainSequencer,
        to puts: HandoffQueue<PendingPut>
    ) async throws {
        while let first = try await chunks.pop() {
            var batch = [first]
            while batch.count < Checksums.md5Lanes, let next = chunks.tryPop() { batch.append(next) }
            let leases = batch.map { BlockLease($0.block, ring: ring) }
            let md5s = Checksums.md5Base64(multi: leases.map { $0.block.bytes })
            for (i, chunk) in batch.enumerated() {
                var encoded = codec.encode(leases[i].block.bytes, scratch: nil, precomputedMD5: md5s[i])
                encoded.metadata.hashChain = try await sequencer.link(chunk.number, checksum: encoded.checksum)
                try await puts.push(PendingPut(number: chunk.number, lease: leases[i], encoded: encoded))
            }
        }
    }
}
