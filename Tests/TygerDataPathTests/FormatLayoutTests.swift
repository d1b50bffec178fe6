import Testing
import TygerCore
import TygerDataPath
import TygerStorage
import TygerTestSupport

@Suite struct FormatLayoutTests {
    @Test(arguments: StoreKind.allCases, [BufferFormat.native, .upstream])
    func storedChecksumsAndChainMatchAnIndependentComputation(kind: StoreKind, format: BufferFormat) async throws {
        try await TestStore.with(kind) { t in
            let input = Payload.random(count: 3 * 16384 + 100, seed: 12)
            let summary = try await writeBuffer(
                input,
                to: t.store,
                options: testWriteOptions(format: format, blockSize: 16384)
            )
            #expect(summary.blobs == 4)
            var chain = Reference.chainInitialValue
            var data: [UInt8] = []
            for n in 0...summary.blobs {
                let blob = try #require(try await t.blob(BlobPath.name(for: n)))
                let checksum: String
                if format == .upstream {
                    checksum = Reference.md5Base64(blob.bytes)
                    #expect(blob.metadata.contentMD5 == checksum)
                } else {
                    checksum = Reference.crc32cString(blob.bytes)
                    #expect(blob.metadata.properties["crc32c"] == checksum)
                    #expect(blob.metadata.properties["encoding"] == "raw")
                    #expect(blob.metadata.properties["raw_length"] == String(blob.bytes.count))
                }
                chain = Reference.chainLink(previous: chain, checksum: checksum)
                #expect(blob.metadata.hashChain == chain, "blob \(n)")
                data += blob.bytes
            }
            #expect(mismatch(data, input) == nil)
        }
    }

    @Test func upstreamHelloBufferCarriesThePublishedChain() async throws {
        try await TestStore.with(.memory) { t in
            try await writeBuffer(Array("Hello\n".utf8), to: t.store, options: testWriteOptions(format: .upstream))
            let blob = try #require(try await t.blob("00/000"))
            #expect(blob.metadata.contentMD5 == "CffgLxKQviEdpweiZvFTsw==")
            #expect(blob.metadata.hashChain == "2mCt+MKkf0AT8hYI3Edjmv5oYPpnNq7Lv4ZeFVlIN7c=")
            let end = try #require(try await t.blob("00/001"))
            #expect(end.bytes.isEmpty)
            #expect(end.metadata.contentMD5 == "1B2M2Y8AsgTpgAmY7PhCfg==")
            #expect(
                end.metadata.hashChain
                    == Reference.chainLink(
                        previous: "2mCt+MKkf0AT8hYI3Edjmv5oYPpnNq7Lv4ZeFVlIN7c=",
                        checksum: "1B2M2Y8AsgTpgAmY7PhCfg=="
                    )
            )
            #expect(try await readBuffer(t.store) == Array("Hello\n".utf8))
        }
    }

    @Test func upstreamFormatOnDiskIsCompatible() async throws {
        // Checked from the files, with a standard JSON parser, as another implementation would see them.
        try await TestStore.with(.file) { t in
            let input = Payload.compressible(count: 2 * 8192 + 5, seed: 1)
            let summary = try await writeBuffer(
                input,
                to: t.store,
                options: testWriteOptions(format: .upstream, blockSize: 8192)
            )
            #expect(summary.blobs == 3)
            let dir = t.directory

            let start = try FileBlobFile.read(dir + "/.bufferstart")
            #expect(String(decoding: start.data, as: UTF8.self) == #"{"version":"0.3.0"}"#)
            #expect(try start.metadata() == ["content-md5": "jRl6v+tdX5RbfseHVtVXDw=="])

            var chain = Reference.chainInitialValue
            for n in Int64(0)..<3 {
                let parts = try FileBlobFile.read(dir + "/" + BlobPath.name(for: n))
                chain = Reference.chainLink(previous: chain, checksum: Reference.md5Base64(parts.data))
                #expect(
                    try parts.metadata() == [
                        "content-md5": Reference.md5Base64(parts.data), "meta:cumulative_hash_chain": chain,
                    ]
                )
                #expect(!parts.data.isEmpty)
            }
            let terminal = try FileBlobFile.read(dir + "/00/003")
            #expect(terminal.data.isEmpty)
            chain = Reference.chainLink(previous: chain, checksum: "1B2M2Y8AsgTpgAmY7PhCfg==")
            #expect(
                try terminal.metadata() == [
                    "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "meta:cumulative_hash_chain": chain,
                ]
            )

            let end = try FileBlobFile.read(dir + "/.bufferend")
            #expect(String(decoding: end.data, as: UTF8.self) == #"{"status":"complete"}"#)
            #expect(try end.metadata() == ["content-md5": Reference.md5Base64(Array(#"{"status":"complete"}"#.utf8))])

            // Nothing else in the buffer but the lock file.
            #expect(
                TestFiles.regularFiles(under: dir)
                    == [".bufferend", ".bufferstart", ".writer.lock", "00/000", "00/001", "00/002", "00/003"]
            )
        }
    }

    @Test func emptyInputIsJustTheEndMarker() async throws {
        for format in [BufferFormat.native, .upstream] {
            try await TestStore.with(.file) { t in
                let summary = try await writeBuffer([], to: t.store, options: testWriteOptions(format: format))
                #expect(summary.blobs == 0)
                let marker = try FileBlobFile.read(t.directory + "/00/000")
                #expect(marker.data.isEmpty)
                #expect(try marker.metadata()["meta:cumulative_hash_chain"] != nil)
                #expect(!TestFiles.exists(t.directory + "/00/001"))
                #expect(try await readBuffer(t.store).isEmpty)
            }
        }
    }

    @Test func nativeBufferStartNamesTheFormat() async throws {
        try await TestStore.with(.memory) { t in
            try await writeBuffer([1, 2, 3], to: t.store)
            let start = try #require(try await t.blob(BufferBlobNames.start))
            let text = String(decoding: start.bytes, as: UTF8.self)
            #expect(text == #"{"version":"native-1","checksum":"crc32c","codec":"none","blockSize":65536}"#)
            #expect(start.metadata.contentMD5 == Reference.md5Base64(start.bytes))
        }
    }

    @Test func unsupportedVersionIsRefused() async throws {
        try await TestStore.with(.memory) { t in
            try t.replace(".bufferstart", with: (Array(#"{"version":"0.4.0"}"#.utf8), BlobMetadata()))
            let error = await readError(t.store)
            #expect(coreCode(error) == .unsupportedFormat)
            #expect("\(error!)".contains("unsupported format buffer version '0.4.0'"))
        }
    }
}
