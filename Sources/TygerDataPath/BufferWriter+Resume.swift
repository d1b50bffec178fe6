import TygerCore
public import TygerIO
public import TygerStorage

/// How a resumed write's input relates to the buffer.
public enum ResumedInput: Sendable {
    /// The input starts at the buffer's first byte and can be positioned: `seek(n)` moves it to byte `n`, after the
    /// bytes stored already (a file, `-i FILE`).
    case seekable(seek: @Sendable (Int64) throws -> Void)
    /// The input starts at the buffer's first byte and can only be read through (stdin from a pipe): the bytes
    /// stored already are read again and checked against the stored checksums before the write goes on.
    case resent
}

/// What a resumed write did.
public struct ResumeSummary: Sendable, Equatable {
    /// The bytes that were stored already when it started (and were not sent again).
    public var resumedAt: Int64
    /// What this write stored, `bytes` counting only the new bytes, `blobs` all of the buffer's data blobs.
    public var transfer: TransferSummary
}

extension BufferWriter {
    /// Continues a buffer whose write was interrupted (abandoned: its writer stopped without `.bufferend`) after its
    /// last stored blob (`buffer write --resume`), and ends it as ``write(from:to:options:bytesStored:)`` does.
    ///
    /// The buffer keeps its format and compression (from `.bufferstart`); the blocks are cut at the size of the
    /// stored blobs unless `blockSizeGiven`. A buffer with nothing stored is written from the start. Blobs the earlier
    /// writer stored after the first one missing (it stored them out of order) must be what this write stores.
    ///
    /// - Parameters:
    ///   - source: The same input as the interrupted write's, from its first byte.
    ///   - input: Whether to seek past the stored bytes or read them again and check them.
    ///   - blockSizeGiven: Whether `options.blockSize` was chosen by the user (else taken from the stored blobs).
    ///   - leaseWait: How long to wait for a writer's lease to be free: the lease of a writer over HTTP that was
    ///     killed runs out 8 s after its last renewal.
    ///   - acceptComplete: Whether a buffer already complete is a success (nothing to do, the input not read): an
    ///     attached `run exec` whose input was all stored before.
    /// - Throws: `BlobStoreError` `.containerNotFound`, `.leaseHeld` (a writer is at work); `TygerCoreError`
    ///   `.invalidArgument` when the buffer has ended (complete or failed), `.inputMismatch` when the input (or the
    ///   blocks it would be cut into) differs from what is stored (the buffer is left as it was, abandoned); then what
    ///   a write throws.
    public static func resume(
        from source: any ByteSource,
        to store: any BlobStore,
        options: WriteOptions = WriteOptions(),
        input: ResumedInput,
        blockSizeGiven: Bool = false,
        leaseWait: Duration = .seconds(20),
        acceptComplete: Bool = false,
        bytesStored: LockedCounter? = nil
    ) async throws -> ResumeSummary {
        guard try await store.containerExists() else {
            throw BlobStoreError(.containerNotFound, "the buffer does not exist")
        }
        let lease: any WriterLease
        do {
            lease = try await resumeLease(store, waitingUpTo: leaseWait)
        } catch let error as BlobStoreError where error.code == .leaseHeld {
            throw BlobStoreError(
                .leaseHeld,
                "a writer is writing this buffer: a write can be resumed once its writer has stopped"
            )
        } catch let error as BlobStoreError where error.code == .alreadyExists {
            if acceptComplete, let end = try await store.get(BufferBlobNames.end),
                BufferEndMetadata.decode(Array(end.bytes)) == .complete
            {
                return try await completeSummary(store)
            }
            throw TygerCoreError(.invalidArgument, "the buffer's write has ended: there is nothing to resume")
        }
        var options = options
        let prefix: StoredPrefix?
        do {
            if let end = try await store.get(BufferBlobNames.end) {
                if acceptComplete, BufferEndMetadata.decode(Array(end.bytes)) == .complete {
                    await release(lease)
                    return try await completeSummary(store)
                }
                throw TygerCoreError(
                    .invalidArgument,
                    BufferEndMetadata.decode(Array(end.bytes)) == .failed
                        ? "the buffer is marked failed: it cannot be resumed"
                        : "the buffer is complete: there is nothing to resume"
                )
            }
            if let startBlob = try await store.get(BufferBlobNames.start) {
                let start = try BufferStartMetadata.decode(Array(startBlob.bytes))
                options.format = start.format
                if start.format == .upstream || start.codec != "deflate" {
                    options.compression = .none
                } else if let level = start.level.flatMap(CompressionLevel.init(rawValue:)), level != .none {
                    options.compression = level
                } else if options.compression == .none {
                    options.compression = .fast
                }
                let scanned = try await StoredPrefix.scan(store, start: start)
                let ahead = try await storedAfterGap(store, prefix: scanned, window: max(64, 2 * options.dop))
                if !blockSizeGiven {
                    let seen = (scanned.blobs.map(\.rawLength) + ahead.map(\.blob.rawLength)).max()
                    options.blockSize = min(256 << 20, max(1024, start.blockSize ?? seen ?? options.blockSize))
                }
                try checkCut(ahead, blockSize: options.blockSize)
                switch input {
                case .seekable(let seek): try seek(scanned.bytes)
                case .resent: try await verifyResent(source, against: scanned, store: store)
                }
                if scanned.hasEndMarker { try await requireEnd(of: source, at: scanned.bytes) }
                prefix = scanned
            } else {
                prefix = nil
            }
        } catch {
            // Nothing was written: the buffer stays as it was (abandoned), to be resumed with the right input.
            await release(lease)
            throw error
        }
        let frozen = options
        let transfer = try await finish(lease: lease, store: store) {
            try await writeData(from: source, to: store, options: frozen, bytesStored: bytesStored, after: prefix)
        }
        return ResumeSummary(resumedAt: prefix?.bytes ?? 0, transfer: transfer)
    }

    /// What a complete buffer holds, as a resumed write that had nothing left to do.
    private static func completeSummary(_ store: any BlobStore) async throws -> ResumeSummary {
        guard let start = try await store.get(BufferBlobNames.start) else {
            return ResumeSummary(resumedAt: 0, transfer: TransferSummary(bytes: 0, blobs: 0, storedBytes: 0))
        }
        let prefix = try await StoredPrefix.scan(store, start: try BufferStartMetadata.decode(Array(start.bytes)))
        return ResumeSummary(
            resumedAt: prefix.bytes,
            transfer: TransferSummary(bytes: 0, blobs: prefix.nextBlob, storedBytes: 0)
        )
    }

    /// Takes the lease for a resumed write, waiting up to `wait` while a writer holds it.
    private static func resumeLease(
        _ store: any BlobStore,
        waitingUpTo wait: Duration
    ) async throws
        -> any WriterLease
    {
        let deadline = ContinuousClock.now + wait
        while true {
            do {
                return try await store.resumeWriterLease()
            } catch let error as BlobStoreError where error.code == .leaseHeld && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Puts a blob of a resumed write: a blob of that name stored already (by the earlier writer, out of order) must
    /// have the same checksum and chain value.
    static func putAgain(_ number: Int64, _ encoded: EncodedBlock, store: any BlobStore) async throws {
        let name = BlobPath.name(for: number)
        do {
            try await store.put(name, bytes: encoded.stored, metadata: encoded.metadata)
        } catch let error as BlobStoreError where error.code == .alreadyExists {
            guard try await store.holds(name, with: encoded.metadata) else {
                throw TygerCoreError(
                    .inputMismatch,
                    "blob \(name) was stored by the interrupted write with other bytes: the input differs from "
                        + "that write's, or its blocks were cut at another size or compressed otherwise"
                )
            }
        }
    }

    /// The blobs the interrupted write stored after the first one missing (its puts ran side by side), within
    /// `window` blobs of it; `last` says the blob is followed by the end marker.
    private static func storedAfterGap(
        _ store: any BlobStore,
        prefix: StoredPrefix,
        window: Int
    ) async throws
        -> [(number: Int64, blob: StoredPrefix.Blob, last: Bool)]
    {
        guard !prefix.hasEndMarker else { return [] }
        let first = prefix.nextBlob + 1
        let stats = try await StoredPrefix.inspect(store, first..<(first + Int64(window)))
        var found: [(Int64, StoredPrefix.Blob, Bool)] = []
        for number in stats.keys.sorted() {
            let blob = try StoredPrefix.describe(
                stats[number]!,
                name: BlobPath.name(for: number),
                format: prefix.start.format
            )
            if blob.rawLength == 0 { continue }  // the end marker
            let next = stats[number + 1].flatMap {
                try? StoredPrefix.describe($0, name: "", format: prefix.start.format)
            }
            found.append((number, blob, next?.rawLength == 0))
        }
        return found
    }

    /// The blobs stored after the gap were cut at `blockSize` (all but the last of the stream): this write must
    /// store the same blobs before them, so it must cut where the interrupted write did, which only full blocks
    /// allow (blobs cut short by the flush interval cannot be matched).
    ///
    /// - Throws: `TygerCoreError` `.inputMismatch` naming the blob.
    private static func checkCut(
        _ ahead: [(number: Int64, blob: StoredPrefix.Blob, last: Bool)],
        blockSize: Int
    ) throws {
        for stored in ahead
        where stored.blob.rawLength != blockSize && !(stored.last && stored.blob.rawLength < blockSize) {
            throw TygerCoreError(
                .inputMismatch,
                "blob \(BlobPath.name(for: stored.number)), stored by the interrupted write after a blob it did not "
                    + "store, holds \(stored.blob.rawLength) bytes, not the block size \(blockSize): the write cannot be "
                    + "resumed with these blocks (give the interrupted write's --block-size)"
            )
        }
    }

    /// Reads the stored part of the buffer again from `source` and checks it blob by blob: raw blobs against their
    /// checksums; compressed ones against the stored blob, inflated.
    private static func verifyResent(
        _ source: any ByteSource,
        against prefix: StoredPrefix,
        store: any BlobStore
    )
        async throws
    {
        guard let largest = prefix.blobs.map(\.rawLength).max() else { return }
        let buffer = HeapBytes(count: largest)
        var offset: Int64 = 0
        for (number, blob) in prefix.blobs.enumerated() {
            let name = BlobPath.name(for: Int64(number))
            let length = blob.rawLength
            let got = try await DedicatedThread.run {
                try readFully(source, into: UnsafeMutableRawBufferPointer(rebasing: buffer.memory[0..<length]))
            }
            let region = UnsafeMutableRawBufferPointer(rebasing: buffer.memory[0..<length])
            guard got == blob.rawLength else {
                throw TygerCoreError(
                    .inputMismatch,
                    "the input ended after \(offset + Int64(got)) bytes, but the buffer holds \(prefix.bytes) already: "
                        + "--resume needs the interrupted write's input"
                )
            }
            let bytes = UnsafeRawBufferPointer(region)
            let same: Bool
            switch (prefix.start.format == .upstream, blob.encoding) {
            case (true, _): same = Checksums.md5Base64(bytes) == blob.checksum
            case (false, .raw): same = Checksums.crc32cString(Checksums.crc32c(bytes)) == blob.checksum
            case (false, .deflate):
                guard let stored = try await store.get(name) else {
                    throw TygerCoreError(.missingBlob, "blob \(name) was there and is not any more")
                }
                let verified = try BlobCodec.verify(
                    stored.bytes,
                    metadata: stored.metadata,
                    format: prefix.start.format,
                    blobName: name
                )
                let inflated = HeapBytes(count: verified.rawLength)
                try BlobCodec.inflate(stored.bytes, into: inflated.memory, blobName: name)
                same = inflated.memory.elementsEqual(region)
            }
            guard same else {
                throw TygerCoreError(
                    .inputMismatch,
                    "the input differs from the buffer's stored bytes \(offset)–\(offset + Int64(blob.rawLength) - 1) "
                        + "(blob \(name)): --resume needs the interrupted write's input"
                )
            }
            offset += Int64(blob.rawLength)
        }
    }

    /// For a buffer whose every byte is stored (its end marker is): the input must end where the buffer does.
    private static func requireEnd(of source: any ByteSource, at bytes: Int64) async throws {
        let probe = HeapBytes(count: 1)
        let more = try await DedicatedThread.run { try readFully(source, into: probe.memory) }
        guard more == 0 else {
            throw TygerCoreError(
                .inputMismatch,
                "the input goes on after the buffer's \(bytes) bytes, all of which are stored (its end marker is): "
                    + "--resume needs the interrupted write's input"
            )
        }
    }

    /// Reads until `region` is full or the source ends; returns the bytes read.
    private static func readFully(_ source: any ByteSource, into region: UnsafeMutableRawBufferPointer) throws -> Int {
        var filled = 0
        while filled < region.count {
            switch try source.read(into: UnsafeMutableRawBufferPointer(rebasing: region[filled...]), waitAtMost: nil) {
            case .bytes(let n): filled += n
            case .endOfStream, .timedOut: return filled
            }
        }
        return filled
    }
}
