public import TygerCore
public import TygerStorage

/// The blobs of a buffer that are stored one after another from the first, learned from their metadata alone
/// (``BlobStore/inspect(_:)``: no blob's bytes are fetched), with the hash chain checked over them: where a resumed
/// write continues and where a read from an offset starts.
///
/// Each blob's checksum and chain value are in its metadata (the native format's CRC32C, the 0.3.0 format's
/// Content-MD5), so the chain is verified from the first blob on, as a whole read would; only the bytes of the blobs
/// skipped are not checked against their checksums.
public struct StoredPrefix: Sendable {
    /// One stored blob of the prefix.
    public struct Blob: Sendable, Equatable {
        /// The checksum string that enters the hash chain.
        public var checksum: String
        /// How the stored bytes are encoded.
        public var encoding: BlobEncoding
        /// The decoded length.
        public var rawLength: Int
    }

    /// The buffer's `.bufferstart`.
    public var start: BufferStartMetadata
    /// The data blobs `0..<blobs.count`, in order, without the end marker.
    public var blobs: [Blob] = []
    /// The chain value after the last of `blobs`.
    public var chain = HashChain()
    /// Their decoded bytes in all.
    public var bytes: Int64 = 0
    /// Whether the empty end-marker blob follows them: every byte of the buffer is stored.
    public var hasEndMarker = false

    /// The blob number after the prefix's data blobs.
    public var nextBlob: Int64 { Int64(blobs.count) }

    /// Reads the prefix of the buffer in `store`, stopping at the first blob not stored, at the end marker, or at the
    /// first blob that reaches `offset` bytes (without it: it is the one a read from `offset` starts in).
    ///
    /// - Parameters:
    ///   - start: The buffer's decoded `.bufferstart`.
    ///   - offset: Stop once the prefix holds this many bytes or the next blob would pass them; `nil` for all.
    ///   - concurrency: Metadata requests in flight.
    /// - Throws: `TygerCoreError` `.hashChainMismatch` or `.corruptMetadata` for blobs whose metadata is missing or
    ///   does not chain; the store's errors.
    public static func scan(
        _ store: any BlobStore,
        start: BufferStartMetadata,
        upTo offset: Int64? = nil,
        concurrency: Int = 32
    ) async throws -> StoredPrefix {
        var prefix = StoredPrefix(start: start)
        var next: Int64 = 0
        while true {
            let first = next
            let stats = try await inspect(store, first..<(first + Int64(concurrency)))
            for number in first..<(first + Int64(concurrency)) {
                guard let stat = stats[number] else { return prefix }
                let name = BlobPath.name(for: number)
                let blob = try describe(stat, name: name, format: start.format)
                var chain = prefix.chain
                chain.append(blob.checksum)
                guard stat.metadata.hashChain == chain.value else {
                    throw TygerCoreError(
                        .hashChainMismatch,
                        stat.metadata.hashChain == nil
                            ? "blob \(name): expected x-ms-meta-cumulative_hash_chain metadata missing"
                            : "hash chain mismatch at blob \(name): blobs are missing, reordered or replaced"
                    )
                }
                if blob.rawLength == 0 {
                    prefix.hasEndMarker = true
                    return prefix
                }
                if let offset, prefix.bytes + Int64(blob.rawLength) > offset { return prefix }
                prefix.chain = chain
                prefix.blobs.append(blob)
                prefix.bytes += Int64(blob.rawLength)
                if let offset, prefix.bytes == offset { return prefix }
            }
            next = first + Int64(concurrency)
        }
    }

    /// The metadata of blobs `numbers`, asked for all at once: those that are stored.
    static func inspect(_ store: any BlobStore, _ numbers: Range<Int64>) async throws -> [Int64: BlobStat] {
        try await withThrowingTaskGroup(of: (Int64, BlobStat?).self) { group in
            for number in numbers {
                group.addTask { (number, try await store.inspect(BlobPath.name(for: number))) }
            }
            var stats: [Int64: BlobStat] = [:]
            for try await (number, stat) in group { if let stat { stats[number] = stat } }
            return stats
        }
    }

    /// A blob's checksum, encoding and decoded length as its metadata (and stored length) declare them
    /// (``BlobCodec/declared(_:storedLength:format:blobName:)``).
    ///
    /// - Throws: `TygerCoreError` `.corruptMetadata` (or `.corruptBlob`) when the metadata the format needs is missing
    ///   or malformed.
    static func describe(_ stat: BlobStat, name: String, format: BufferFormat) throws -> Blob {
        let declared = try BlobCodec.declared(
            stat.metadata,
            storedLength: stat.storedLength,
            format: format,
            blobName: name
        )
        return Blob(checksum: declared.checksum, encoding: declared.encoding, rawLength: declared.rawLength)
    }
}
