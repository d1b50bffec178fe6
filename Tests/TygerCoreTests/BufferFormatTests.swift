import Testing
import TygerCore
import TygerTestSupport

@Suite struct BufferFormatTests {
    @Test func upstreamBufferStartIsExactlyTheGoMarshal() {
        let bytes = BufferStartMetadata(format: .upstream).encoded()
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"version":"0.3.0"}"#)
        #expect(bytes.count == 19)
    }

    @Test(arguments: [BufferFormat.native, .upstream])
    func bufferStartRoundTrips(format: BufferFormat) throws {
        let codec: String? = format == .native ? "deflate" : nil
        let decoded = try BufferStartMetadata.decode(BufferStartMetadata(format: format, codec: codec).encoded())
        #expect(decoded.format == format)
        #expect(decoded.codec == codec)
    }

    @Test func nativeBufferStartNamesItsChecksumAndCodec() throws {
        let text = String(decoding: BufferStartMetadata(format: .native, codec: "none").encoded(), as: UTF8.self)
        #expect(text.contains(#""version":"native-1""#))
        #expect(text.contains(#""checksum":"crc32c""#))
        #expect(text.contains(#""codec":"none""#))
    }

    @Test func unknownVersionIsUnsupported() throws {
        let error = try #require(throws: TygerCoreError.self) {
            try BufferStartMetadata.decode(Array(#"{"version":"0.4.0"}"#.utf8))
        }
        #expect(error.code == .unsupportedFormat)
        #expect(error.message.contains("unsupported format buffer version '0.4.0'"))
    }

    @Test func unknownNativeChecksumIsUnsupported() throws {
        let error = try #require(throws: TygerCoreError.self) {
            try BufferStartMetadata.decode(Array(#"{"version":"native-1","checksum":"xxhash"}"#.utf8))
        }
        #expect(error.code == .unsupportedFormat)
    }

    @Test(arguments: [
        "", "{", "[]", #"{"version":1}"#, #"{"other":"0.3.0"}"#, "version=0.3.0", #"{"version":"0.3.0"} x"#,
    ])
    func malformedBufferStartIsCorrupt(text: String) throws {
        let error = try #require(throws: TygerCoreError.self) { try BufferStartMetadata.decode(Array(text.utf8)) }
        // `{"version":1}` parses as JSON with a non-string version: either way it is not a known version.
        #expect(error.code == .corruptMetadata || error.code == .unsupportedFormat)
    }

    @Test func toleratesWhitespaceInBufferStart() throws {
        let decoded = try BufferStartMetadata.decode(Array("{ \"version\" : \"0.3.0\" }\n".utf8))
        #expect(decoded.format == .upstream)
    }

    @Test func bufferEndDocuments() {
        #expect(String(decoding: BufferEndMetadata.encoded(.complete), as: UTF8.self) == #"{"status":"complete"}"#)
        #expect(String(decoding: BufferEndMetadata.encoded(.failed), as: UTF8.self) == #"{"status":"failed"}"#)
        #expect(BufferEndMetadata.decode(BufferEndMetadata.encoded(.failed)) == .failed)
        #expect(BufferEndMetadata.decode(BufferEndMetadata.encoded(.complete)) == .complete)
        // Upstream treats any other value as complete.
        #expect(BufferEndMetadata.decode(Array(#"{"status":"weird"}"#.utf8)) == .complete)
        #expect(BufferEndMetadata.decode(Array("garbage".utf8)) == .complete)
    }

    @Test(arguments: [
        ("native", BufferFormat.native), ("NATIVE", .native), ("native-1", .native), ("0.3.0", .upstream),
        ("upstream", .upstream), ("0.3", .upstream),
    ])
    func formatNames(name: String, format: BufferFormat) {
        #expect(BufferFormat(name: name) == format)
    }

    @Test(arguments: ["", "0.4", "0.3.1", "gzip"])
    func unknownFormatNames(name: String) {
        #expect(BufferFormat(name: name) == nil)
    }
}

@Suite struct BlobMetadataTests {
    @Test func jsonRoundTripsAwkwardValues() throws {
        let metadata = BlobMetadata(
            contentMD5: "CffgLxKQviEdpweiZvFTsw==",
            properties: [
                "cumulative_hash_chain": "2mCt+MKkf0AT8hYI3Edjmv5oYPpnNq7Lv4ZeFVlIN7c=", "quote": "a\"b",
                "slash": "a\\b",
                "newline": "x\ny\r\t", "control": "\u{01}\u{1F}", "unicode": "grüße ✓", "empty": "",
            ]
        )
        let decoded = try BlobMetadata.decodeJSON(metadata.encodedJSON())
        #expect(decoded == metadata)
        #expect(decoded.hashChain == "2mCt+MKkf0AT8hYI3Edjmv5oYPpnNq7Lv4ZeFVlIN7c=")
    }

    @Test func jsonIsReadableByAStandardParser() throws {
        var metadata = BlobMetadata(contentMD5: "abc=")
        metadata.hashChain = "chain"
        let parts = FileBlobFile.Parts(data: [], metadataJSON: metadata.encodedJSON())
        #expect(try parts.metadata() == ["content-md5": "abc=", "meta:cumulative_hash_chain": "chain"])
    }

    @Test(arguments: ["", "{", "not json", #"{"a":}"#, #"{"a":"b",}"#, #"{"a":"b"}}"#])
    func rejectsInvalidJSON(text: String) throws {
        let error = try #require(throws: TygerCoreError.self) { try BlobMetadata.decodeJSON(Array(text.utf8)) }
        #expect(error.code == .corruptMetadata)
    }

    @Test func ignoresUnknownKeysAndAcceptsEscapes() throws {
        let decoded = try BlobMetadata.decodeJSON(Array(#"{"other":"x","meta:k":"\u0041\n","n":12,"b":true}"#.utf8))
        #expect(decoded.contentMD5 == nil)
        #expect(decoded.properties == ["k": "A\n"])
    }
}
