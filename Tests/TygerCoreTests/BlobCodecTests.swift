import Testing
import TygerCore
import TygerTestSupport

/// One encoded block, copied out of the codec's scratch memory.
struct Encoded {
    var stored: [UInt8]
    var checksum: String
    var metadata: BlobMetadata
}

func encode(_ codec: BlobCodec, _ raw: [UInt8], blockSize: Int? = nil) -> Encoded {
    let size = BlobCodec.scratchSize(blockSize: blockSize ?? max(raw.count, 1), compression: codec.compression)
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 64)
    defer { scratch.deallocate() }
    return raw.withUnsafeBytes { bytes in
        let e = codec.encode(bytes, scratch: size > 0 ? scratch : nil)
        return Encoded(stored: Array(e.stored), checksum: e.checksum, metadata: e.metadata)
    }
}

/// Verifies and decodes a stored blob the way the reader does.
func decode(
    _ stored: [UInt8],
    metadata: BlobMetadata,
    format: BufferFormat
) throws -> (raw: [UInt8], verified: VerifiedBlob) {
    let verified = try stored.withUnsafeBytes {
        try BlobCodec.verify($0, metadata: metadata, format: format, blobName: "00/000")
    }
    switch verified.encoding {
    case .raw:
        return (stored, verified)
    case .deflate:
        var out = [UInt8](repeating: 0, count: verified.rawLength)
        try stored.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { try BlobCodec.inflate(s, into: $0, blobName: "00/000") }
        }
        return (out, verified)
    }
}

@Suite struct BlobCodecTests {
    @Test(arguments: CompressionLevel.allCases, [0, 1, 100, 4096, 65536, 300_001])
    func nativeRoundTripOfCompressibleData(compression: CompressionLevel, count: Int) throws {
        let raw = Payload.compressible(count: count, seed: UInt64(count))
        let codec = BlobCodec(format: .native, compression: compression)
        let e = encode(codec, raw)
        let p = e.metadata.properties
        #expect(p["crc32c"] == Reference.crc32cString(e.stored))
        #expect(e.checksum == p["crc32c"])
        #expect(p["raw_length"] == String(count))
        #expect(e.metadata.contentMD5 == nil)
        if compression == .none || count == 0 {
            #expect(p["encoding"] == "raw")
            #expect(mismatch(e.stored, raw) == nil)
        } else if count >= 4096 {
            #expect(p["encoding"] == "deflate")
            #expect(e.stored.count < count / 2)
        }
        let (decoded, verified) = try decode(e.stored, metadata: e.metadata, format: .native)
        #expect(mismatch(decoded, raw) == nil)
        #expect(verified.rawLength == count)
        #expect(verified.checksum == e.checksum)
    }

    @Test(arguments: [CompressionLevel.fast, .best])
    func randomDataIsStoredRaw(compression: CompressionLevel) throws {
        // Deflate cannot save 5% on random bytes, so the blob is kept raw.
        let raw = Payload.random(count: 65536, seed: 99)
        let e = encode(BlobCodec(format: .native, compression: compression), raw)
        #expect(e.metadata.properties["encoding"] == "raw")
        #expect(mismatch(e.stored, raw) == nil)
        #expect(mismatch(try decode(e.stored, metadata: e.metadata, format: .native).raw, raw) == nil)
    }

    @Test(arguments: [CompressionLevel.fast, .best])
    func fivePercentRule(compression: CompressionLevel) throws {
        // Uniform bytes below 200 (drawn by rejection, so uniform) carry log2(200) = 7.64 bits each: no coder can save 5% on them, so they stay raw.
        let barely = Array(Payload.random(count: 150_000, seed: 5).filter { $0 < 200 }.prefix(100_000))
        let e1 = encode(BlobCodec(format: .native, compression: compression), barely)
        #expect(e1.metadata.properties["encoding"] == "raw")
        #expect(mismatch(e1.stored, barely) == nil)
        // Bytes below 64 carry 6 bits: deflate saves about 25%, so the deflated form is kept, within the bound.
        let sixBits = Payload.random(count: 100_000, seed: 6).map { $0 % 64 }
        let e2 = encode(BlobCodec(format: .native, compression: compression), sixBits)
        #expect(e2.metadata.properties["encoding"] == "deflate")
        #expect(Double(e2.stored.count) <= Double(sixBits.count) * BlobCodec.minimumSavings)
        #expect(mismatch(try decode(e2.stored, metadata: e2.metadata, format: .native).raw, sixBits) == nil)
    }

    @Test func withoutScratchMemoryNothingIsCompressed() {
        let raw = Payload.compressible(count: 10_000, seed: 1)
        let e = raw.withUnsafeBytes { bytes in
            let encoded = BlobCodec(format: .native, compression: .fast).encode(bytes, scratch: nil)
            return Encoded(stored: Array(encoded.stored), checksum: encoded.checksum, metadata: encoded.metadata)
        }
        #expect(e.metadata.properties["encoding"] == "raw")
        #expect(mismatch(e.stored, raw) == nil)
    }

    @Test func scratchSize() {
        #expect(BlobCodec.scratchSize(blockSize: 1 << 20, compression: .none) == 0)
        #expect(BlobCodec.scratchSize(blockSize: 1 << 20, compression: .fast) > 1 << 20)
        #expect(BlobCodec.scratchSize(blockSize: 1 << 20, compression: .best) > 1 << 20)
    }

    @Test(arguments: [0, 6, 5000])
    func upstreamEncodingUsesContentMD5(count: Int) throws {
        let raw = count == 6 ? Array("Hello\n".utf8) : Payload.random(count: count, seed: 3)
        let e = encode(BlobCodec(format: .upstream), raw)
        #expect(mismatch(e.stored, raw) == nil)
        #expect(e.metadata.contentMD5 == Reference.md5Base64(raw))
        #expect(e.checksum == e.metadata.contentMD5)
        #expect(e.metadata.properties.isEmpty)
        if count == 6 { #expect(e.checksum == "CffgLxKQviEdpweiZvFTsw==") }
        if count == 0 { #expect(e.checksum == "1B2M2Y8AsgTpgAmY7PhCfg==") }
        let (decoded, verified) = try decode(e.stored, metadata: e.metadata, format: .upstream)
        #expect(mismatch(decoded, raw) == nil)
        #expect(verified.rawLength == count)
    }

    @Test(arguments: [BufferFormat.native, .upstream])
    func flippedByteIsAChecksumMismatch(format: BufferFormat) throws {
        let raw = Payload.random(count: 1000, seed: 4)
        let e = encode(BlobCodec(format: format), raw)
        var damaged = e.stored
        damaged[500] ^= 0x40
        let error = try #require(throws: TygerCoreError.self) {
            try decode(damaged, metadata: e.metadata, format: format)
        }
        #expect(error.code == .checksumMismatch)
    }

    @Test func flippedByteInADeflatedBlobIsCaughtBeforeInflating() throws {
        let raw = Payload.compressible(count: 20_000, seed: 4)
        let e = encode(BlobCodec(format: .native, compression: .fast), raw)
        try #require(e.metadata.properties["encoding"] == "deflate")
        var damaged = e.stored
        damaged[damaged.count / 2] ^= 0x01
        let error = try #require(throws: TygerCoreError.self) {
            try decode(damaged, metadata: e.metadata, format: .native)
        }
        #expect(error.code == .checksumMismatch)
    }

    @Test func missingChecksumMetadataIsCorruptMetadata() throws {
        let raw = Payload.random(count: 10, seed: 4)
        var native = encode(BlobCodec(format: .native), raw).metadata
        native.properties["crc32c"] = nil
        #expect(throws: TygerCoreError.self) { try decode(raw, metadata: native, format: .native) }
        let e1 = try #require(throws: TygerCoreError.self) { try decode(raw, metadata: native, format: .native) }
        #expect(e1.code == .corruptMetadata)
        let e2 = try #require(throws: TygerCoreError.self) {
            try decode(raw, metadata: BlobMetadata(), format: .upstream)
        }
        #expect(e2.code == .corruptMetadata)
        #expect(e2.message.contains("expected Content-MD5 header missing"))
    }

    @Test func badEncodingOrLengthMetadata() throws {
        let raw = Payload.random(count: 10, seed: 4)
        var m = encode(BlobCodec(format: .native), raw).metadata
        m.properties["encoding"] = "zstd"
        #expect(
            try #require(throws: TygerCoreError.self) { try decode(raw, metadata: m, format: .native) }.code
                == .corruptMetadata
        )
        m = encode(BlobCodec(format: .native), raw).metadata
        m.properties["raw_length"] = "eleven"
        #expect(
            try #require(throws: TygerCoreError.self) { try decode(raw, metadata: m, format: .native) }.code
                == .corruptMetadata
        )
        m.properties["raw_length"] = "11"
        #expect(
            try #require(throws: TygerCoreError.self) { try decode(raw, metadata: m, format: .native) }.code
                == .corruptBlob
        )
    }

    @Test func deflateStreamWithWrongLengthIsCorrupt() throws {
        let raw = Payload.compressible(count: 20_000, seed: 8)
        let e = encode(BlobCodec(format: .native, compression: .best), raw)
        try #require(e.metadata.properties["encoding"] == "deflate")
        for wrong in [19_999, 20_001] {
            var m = e.metadata
            m.properties["raw_length"] = String(wrong)
            let error = try #require(throws: TygerCoreError.self) { try decode(e.stored, metadata: m, format: .native) }
            #expect(error.code == .corruptBlob, "raw_length \(wrong)")
        }
    }

    @Test func garbageDeflateStreamIsCorrupt() throws {
        // A blob whose CRC matches (the writer's checksum is over garbage) but whose stream does not inflate.
        let garbage = Payload.random(count: 300, seed: 11)
        let m = BlobMetadata(properties: [
            "crc32c": Reference.crc32cString(garbage), "encoding": "deflate", "raw_length": "1000",
        ])
        let error = try #require(throws: TygerCoreError.self) { try decode(garbage, metadata: m, format: .native) }
        #expect(error.code == .corruptBlob)
        // Truncated valid stream.
        let e = encode(BlobCodec(format: .native, compression: .fast), Payload.compressible(count: 20_000, seed: 1))
        try #require(e.metadata.properties["encoding"] == "deflate")
        let cut = Array(e.stored.prefix(e.stored.count - 10))
        var m2 = e.metadata
        m2.properties["crc32c"] = Reference.crc32cString(cut)
        #expect(
            try #require(throws: TygerCoreError.self) { try decode(cut, metadata: m2, format: .native) }.code
                == .corruptBlob
        )
    }

    @Test func nativeMetadataWithoutEncodingDefaultsToRaw() throws {
        let raw = Payload.random(count: 64, seed: 2)
        let m = BlobMetadata(properties: ["crc32c": Reference.crc32cString(raw)])
        let (decoded, verified) = try decode(raw, metadata: m, format: .native)
        #expect(mismatch(decoded, raw) == nil)
        #expect(verified.encoding == .raw)
        #expect(verified.rawLength == 64)
    }
}
