private import CTygerNative

/// How the native format compresses blobs.
public enum CompressionLevel: String, Sendable, CaseIterable {
    /// Store every blob raw.
    case none
    /// zlib-format deflate with isa-l igzip level 1 (0.6–1.5 GB/s per core).
    case fast
    /// zlib-format deflate with zlib level 9 (tens of MB/s: for archival, not streaming).
    case best

    var deflateLevel: Int32 {
        switch self {
        case .none: 0
        case .fast: 1
        case .best: 9
        }
    }
}

/// The encoding of one stored blob.
public enum BlobEncoding: String, Sendable {
    case raw
    case deflate
}

/// The result of encoding one block: the bytes to store, their checksum string and metadata.
public struct EncodedBlock: @unchecked Sendable {
    // @unchecked: `stored` points into the caller's block or scratch memory, which the pipeline keeps alive and
    // unshared until the blob is stored.
    /// The bytes to store: the raw block, or the scratch buffer holding the deflated form.
    public var stored: UnsafeRawBufferPointer
    /// The checksum string that enters the hash chain (base64 MD5 or hex CRC32C).
    public var checksum: String
    /// Metadata to store with the blob; the pipeline adds the chain value.
    public var metadata: BlobMetadata
}

/// What verification learned about a stored blob.
public struct VerifiedBlob: Sendable {
    /// The checksum string that enters the hash chain.
    public var checksum: String
    /// How the stored bytes are encoded.
    public var encoding: BlobEncoding
    /// Length of the decoded bytes.
    public var rawLength: Int
    /// The chain value the writer stored, if any.
    public var storedChain: String?
}

/// Encodes blocks into blobs and verifies blobs, for one buffer format.
///
/// Stateless and `Sendable`: the pipeline calls it from many tasks at once. The hash chain is kept by the caller,
/// in blob order.
public struct BlobCodec: Sendable {
    public let format: BufferFormat
    public let compression: CompressionLevel
    /// A deflated blob is kept only if it is at most this fraction of the raw size.
    public static let minimumSavings = 0.95

    /// - Precondition: the upstream format has no compression.
    public init(format: BufferFormat, compression: CompressionLevel = .none) {
        precondition(format == .native || compression == .none, "the 0.3.0 format cannot be compressed")
        self.format = format
        self.compression = compression
    }

    /// The scratch capacity `encode` needs for blocks of `blockSize` bytes (0 when not compressing).
    public static func scratchSize(blockSize: Int, compression: CompressionLevel) -> Int {
        compression == .none ? 0 : tyger_deflate_bound(blockSize)
    }

    /// Encodes one block.
    ///
    /// - Parameters:
    ///   - raw: The block's bytes.
    ///   - scratch: Memory for the deflated form, at least `scratchSize` bytes; ignored when not compressing.
    ///   - precomputedMD5: The block's base64 MD5 when the caller hashed several blocks at once (upstream format).
    /// - Returns: What to store. `stored` aliases `raw` or `scratch`.
    public func encode(_ raw: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer?) -> EncodedBlock {
        encode(raw, scratch: scratch, precomputedMD5: nil)
    }

    /// Encodes one block whose MD5 the caller may already have computed (see `Checksums.md5Base64(multi:)`).
    public func encode(
        _ raw: UnsafeRawBufferPointer,
        scratch: UnsafeMutableRawBufferPointer?,
        precomputedMD5: String?
    ) -> EncodedBlock {
        if format == .upstream {
            let md5 = precomputedMD5 ?? Checksums.md5Base64(raw)
            return EncodedBlock(stored: raw, checksum: md5, metadata: BlobMetadata(contentMD5: md5))
        }
        var stored = raw
        var encoding = BlobEncoding.raw
        if compression != .none, raw.count > 0, let scratch, let out = scratch.baseAddress, let input = raw.baseAddress
        {
            var outLength = 0
            let limit = min(scratch.count, Int(Double(raw.count) * Self.minimumSavings))
            let rc = tyger_deflate(compression.deflateLevel, input, raw.count, out, limit, &outLength)
            if rc == 0, outLength <= limit {
                stored = UnsafeRawBufferPointer(start: out, count: outLength)
                encoding = .deflate
            }
        }
        let crc = Checksums.crc32cString(Checksums.crc32c(stored))
        let metadata = BlobMetadata(properties: [
            BlobMetadata.Key.crc32c: crc,
            BlobMetadata.Key.encoding: encoding.rawValue,
            BlobMetadata.Key.rawLength: String(raw.count),
        ])
        return EncodedBlock(stored: stored, checksum: crc, metadata: metadata)
    }

    /// Checks a stored blob against its own checksum metadata.
    ///
    /// Works for either format whatever `format` this codec was made for, keyed by the metadata present.
    /// - Parameter precomputedMD5: The stored bytes' base64 MD5 when the caller hashed several blobs at once
    ///   (upstream format).
    /// - Throws: `TygerCoreError` `.checksumMismatch` when the bytes do not match, `.corruptMetadata` when the
    ///   checksum, encoding or length metadata is missing or malformed.
    public static func verify(
        _ stored: UnsafeRawBufferPointer,
        metadata: BlobMetadata,
        format: BufferFormat,
        blobName: String,
        precomputedMD5: String? = nil
    ) throws -> VerifiedBlob {
        let declared = try declared(metadata, storedLength: stored.count, format: format, blobName: blobName)
        if format == .upstream {
            let actual = precomputedMD5 ?? Checksums.md5Base64(stored)
            guard actual == declared.checksum else {
                throw TygerCoreError(.checksumMismatch, "blob \(blobName): MD5 mismatch (stored data is corrupt)")
            }
        } else {
            let actual = Checksums.crc32cString(Checksums.crc32c(stored))
            guard actual == declared.checksum else {
                throw TygerCoreError(.checksumMismatch, "blob \(blobName): CRC32C mismatch (stored data is corrupt)")
            }
        }
        return declared
    }

    /// What a blob's metadata (and the length of its stored bytes) declare: its checksum, encoding, decoded length
    /// and chain value, without its bytes (``verify(_:metadata:format:blobName:precomputedMD5:)`` then checks them;
    /// a resumed transfer passes over the blobs before its offset so).
    ///
    /// - Throws: `TygerCoreError` `.corruptMetadata` when the checksum, encoding or length metadata is missing or
    ///   malformed, `.corruptBlob` when a raw blob's length is not the one declared.
    public static func declared(
        _ metadata: BlobMetadata,
        storedLength: Int,
        format: BufferFormat,
        blobName: String
    ) throws -> VerifiedBlob {
        if format == .upstream {
            guard let expected = metadata.contentMD5 else {
                throw TygerCoreError(.corruptMetadata, "blob \(blobName): expected Content-MD5 header missing")
            }
            return VerifiedBlob(
                checksum: expected,
                encoding: .raw,
                rawLength: storedLength,
                storedChain: metadata.hashChain
            )
        }
        let p = metadata.properties
        guard let expected = p[BlobMetadata.Key.crc32c] else {
            throw TygerCoreError(.corruptMetadata, "blob \(blobName): crc32c metadata missing")
        }
        guard let encoding = BlobEncoding(rawValue: p[BlobMetadata.Key.encoding] ?? "raw") else {
            throw TygerCoreError(
                .corruptMetadata,
                "blob \(blobName): unknown encoding '\(p[BlobMetadata.Key.encoding]!)'"
            )
        }
        guard let rawLength = Int(p[BlobMetadata.Key.rawLength] ?? String(storedLength)), rawLength >= 0 else {
            throw TygerCoreError(.corruptMetadata, "blob \(blobName): malformed raw_length metadata")
        }
        if encoding == .raw, rawLength != storedLength {
            throw TygerCoreError(
                .corruptBlob,
                "blob \(blobName): raw length \(rawLength) but \(storedLength) bytes stored"
            )
        }
        return VerifiedBlob(
            checksum: expected,
            encoding: encoding,
            rawLength: rawLength,
            storedChain: metadata.hashChain
        )
    }

    /// Inflates a deflated blob into `output`, which must be exactly `rawLength` bytes.
    ///
    /// - Throws: `TygerCoreError` `.corruptBlob` when the stream is corrupt or does not decode to exactly
    ///   `output.count` bytes.
    public static func inflate(
        _ stored: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        blobName: String
    ) throws {
        guard let input = stored.baseAddress else {
            throw TygerCoreError(.corruptBlob, "blob \(blobName): empty deflate stream")
        }
        var outLength = 0
        // Exactly the declared room: a stream that decodes to more is refused as an overflow, never truncated.
        let rc: Int32
        if let out = output.baseAddress {
            rc = tyger_inflate(input, stored.count, out, output.count, &outLength)
        } else {
            var byte: UInt8 = 0
            rc = tyger_inflate(input, stored.count, &byte, 0, &outLength)
        }
        guard rc == 0, outLength == output.count else {
            throw TygerCoreError(.corruptBlob, "blob \(blobName): deflate stream is corrupt or has the wrong length")
        }
    }
}
