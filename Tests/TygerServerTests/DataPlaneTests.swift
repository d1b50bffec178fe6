import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TygerCore
import TygerServer
import TygerStorage

struct DataPlaneTests {
    static let write: Set<SignedURLPermission> = [.createBlob, .readBlob]
    static let read: Set<SignedURLPermission> = [.readBlob]

    @Test func putGetHeadKeepsBytesMetadataAndMD5() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let payload = pattern(300_000)
        let md5 = md5Base64(payload)
        let putURI = try fixture.blobURI("buf1", "00/000", Self.write)
        let getURI = try fixture.blobURI("buf1", "00/000", Self.read)
        try await fixture.withRouter { client in
            try await client.execute(
                uri: putURI,
                method: .put,
                headers: [
                    .contentMD5: md5, .xMsBlobContentMD5: md5, .meta("Cumulative_Hash_Chain"): "chain0",
                    .meta("encoding"): "none", .ifNoneMatch: "*",
                ],
                body: ByteBuffer(bytes: payload)
            ) { response in
                #expect(response.status == .created)
                #expect(response.headers[.eTag] != nil)
                #expect(response.headers[.contentMD5] == md5)
                #expect(response.headers[.requestID] != nil)
            }
            try await client.execute(uri: getURI, method: .get) { response in
                #expect(response.status == .ok)
                #expect(Array(buffer: response.body) == payload)
                #expect(response.headers[.contentLength] == "300000")
                #expect(response.headers[.contentMD5] == md5)
                #expect(response.headers[.meta("cumulative_hash_chain")] == "chain0")
                #expect(response.headers[.meta("encoding")] == "none")
                #expect(response.headers[values: .xMsBlobContentMD5].isEmpty)
                #expect(response.headers[HTTPField.Name("x-ms-blob-type")!] == "BlockBlob")
                #expect(response.headers[.acceptRanges] == "bytes")
                #expect(response.headers[.lastModified]?.hasSuffix(" GMT") == true)
            }
            try await client.execute(uri: getURI, method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.body.readableBytes == 0)
                #expect(response.headers[.contentLength] == "300000")
                #expect(response.headers[.contentMD5] == md5)
                #expect(response.headers[.meta("cumulative_hash_chain")] == "chain0")
            }
        }
        // The blob is a FileBlobStore blob: the CLI's file:// store reads it.
        let stored = try #require(try await fixture.app.buffers.store(for: "buf1").get("00/000"))
        #expect(Array(stored.bytes) == payload)
        #expect(
            stored.metadata
                == BlobMetadata(contentMD5: md5, properties: ["cumulative_hash_chain": "chain0", "encoding": "none"])
        )
    }

    @Test func blobsWrittenByTheFileStoreAreServed() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let bytes: [UInt8] = Array("Hello\n".utf8)
        try fixture.putBlob(
            "buf1",
            ".bufferstart",
            bytes,
            metadata: BlobMetadata(contentMD5: md5Base64(bytes), properties: ["crc32c": "0badf00d"])
        )
        let uri = try fixture.blobURI("buf1", ".bufferstart", Self.read)
        try await fixture.withRouter { client in
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "Hello\n")
                #expect(response.headers[.contentMD5] == "CffgLxKQviEdpweiZvFTsw==")
                #expect(response.headers[.meta("crc32c")] == "0badf00d")
            }
        }
    }

    @Test(arguments: [
        ("bytes=0-9", "0-9", 10), ("bytes=100-", "100-2999999", 2_999_900), ("bytes=-5", "2999995-2999999", 5),
        ("bytes=2999990-9999999", "2999990-2999999", 10), ("bytes=1048570-1048580", "1048570-1048580", 11),
    ])
    func rangedGetAnswers206(range: String, contentRange: String, length: Int) async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let payload = pattern(3_000_000)
        try fixture.putBlob("buf1", "00/000", payload, metadata: BlobMetadata(contentMD5: md5Base64(payload)))
        let uri = try fixture.blobURI("buf1", "00/000", Self.read)
        try await fixture.withRouter { client in
            for header in [HTTPField.Name.range, .xMsRange] {
                try await client.execute(uri: uri, method: .get, headers: [header: range]) { response in
                    #expect(response.status == .partialContent)
                    #expect(response.headers[.contentRange] == "bytes \(contentRange)/3000000")
                    #expect(response.headers[.contentLength] == String(length))
                    let start = Int(contentRange.split(separator: "-")[0])!
                    #expect(Array(buffer: response.body) == Array(payload[start..<start + length]))
                    // A range carries the whole blob's MD5 in x-ms-blob-content-md5, not in Content-MD5.
                    #expect(response.headers[.xMsBlobContentMD5] == md5Base64(payload))
                    #expect(response.headers[.contentMD5] == nil)
                }
            }
            // The whole blob is streamed in chunks when it is bigger than one.
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .ok)
                #expect(Array(buffer: response.body) == payload)
            }
            // x-ms-range-get-content-md5 returns the MD5 of the range.
            try await client.execute(
                uri: uri,
                method: .get,
                headers: [.xMsRange: "bytes=0-999", HTTPField.Name("x-ms-range-get-content-md5")!: "true"]
            ) { response in
                #expect(response.status == .partialContent)
                #expect(response.headers[.contentMD5] == md5Base64(Array(payload[0..<1000])))
            }
        }
    }

    @Test func rangeOnEmptyBlobIs416AndPlainGetIsEmpty() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        try await fixture.withRouter { client in
            try await client.execute(uri: try fixture.blobURI("buf1", "00/001", Self.write), method: .put) { response in
                #expect(response.status == .created)
            }
            let uri = try fixture.blobURI("buf1", "00/001", Self.read)
            try await client.execute(uri: uri, method: .get, headers: [.xMsRange: "bytes=0-33554431"]) { response in
                #expect(response.status == .rangeNotSatisfiable)
                #expect(response.headers[.xMsErrorCode] == "InvalidRange")
                #expect(response.headers[.contentRange] == "bytes */0")
                #expect(String(buffer: response.body).contains("<Code>InvalidRange</Code>"))
            }
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentLength] == "0")
                #expect(response.headers[.contentMD5] == "1B2M2Y8AsgTpgAmY7PhCfg==")
            }
        }
    }

    @Test func rangeStartingPastTheEndIs416AndMalformedRangeIs400() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        try await fixture.withRouter { client in
            try await client.execute(
                uri: try fixture.blobURI("buf1", "a", Self.write),
                method: .put,
                body: ByteBuffer(string: "0123456789")
            ) { #expect($0.status == .created) }
            let uri = try fixture.blobURI("buf1", "a", Self.read)
            try await client.execute(uri: uri, method: .get, headers: [.range: "bytes=10-20"]) { response in
                #expect(response.status == .rangeNotSatisfiable)
                #expect(response.headers[.contentRange] == "bytes */10")
            }
            for bad in ["bytes=5-2", "bytes=0-1,3-4", "items=0-1", "bytes=x-"] {
                try await client.execute(uri: uri, method: .get, headers: [.xMsRange: bad]) { response in
                    #expect(response.status == .badRequest, "\(bad)")
                    #expect(response.headers[.xMsErrorCode] == "InvalidHeaderValue")
                }
            }
        }
    }

    @Test func secondUploadIs409AndKeepsTheFirstBlob() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let uri = try fixture.blobURI("buf1", "00/000", Self.write)
        try await fixture.withRouter { client in
            try await client.execute(uri: uri, method: .put, body: ByteBuffer(string: "first")) {
                #expect($0.status == .created)
            }
            for headers: HTTPFields in [[.ifNoneMatch: "*"], [:]] {
                try await client.execute(uri: uri, method: .put, headers: headers, body: ByteBuffer(string: "second")) {
                    response in
                    #expect(response.status == .conflict)
                    #expect(response.headers[.xMsErrorCode] == "BlobAlreadyExists")
                    #expect(
                        String(buffer: response.body).hasPrefix(
                            #"<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobAlreadyExists</Code><Message>"#
                        )
                    )
                }
            }
            try await client.execute(uri: uri, method: .get) { #expect(String(buffer: $0.body) == "first") }
        }
        // No temporary files are left beside the blob.
        let names = try FileManager.default.contentsOfDirectory(
            atPath: fixture.app.buffers.directory(of: "buf1") + "/00"
        )
        #expect(names == ["000"])
    }

    @Test(arguments: [HTTPField.Name.contentMD5, .xMsBlobContentMD5])
    func md5MismatchIs400AndStoresNothing(header: HTTPField.Name) async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let uri = try fixture.blobURI("buf1", "00/000", Self.write)
        try await fixture.withRouter { client in
            try await client.execute(
                uri: uri,
                method: .put,
                headers: [header: md5Base64(Array("other".utf8))],
                body: ByteBuffer(string: "data")
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.xMsErrorCode] == "Md5Mismatch")
            }
            try await client.execute(
                uri: uri,
                method: .put,
                headers: [header: "not base64!"],
                body: ByteBuffer(string: "data")
            ) {
                response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.xMsErrorCode] == "InvalidMd5")
            }
            try await client.execute(uri: try fixture.blobURI("buf1", "00/000", Self.read), method: .head) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.xMsErrorCode] == "BlobNotFound")
                #expect(response.body.readableBytes == 0)
            }
        }
        let names = try FileManager.default.contentsOfDirectory(
            atPath: fixture.app.buffers.directory(of: "buf1") + "/00"
        )
        #expect(names.isEmpty)
    }

    @Test func nativeCRC32CIsVerified() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let payload = pattern(10_000)
        let crc = Checksums.crc32cString(Checksums.crc32c(payload))
        try await fixture.withRouter { client in
            try await client.execute(
                uri: try fixture.blobURI("buf1", "00/000", Self.write),
                method: .put,
                headers: [.meta("crc32c"): "00000000"],
                body: ByteBuffer(bytes: payload)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.xMsErrorCode] == "Crc32cMismatch")
            }
            try await client.execute(
                uri: try fixture.blobURI("buf1", "00/000", Self.write),
                method: .put,
                headers: [.meta("crc32c"): "xyz"],
                body: ByteBuffer(bytes: payload)
            ) { response in
                #expect(response.headers[.xMsErrorCode] == "InvalidMetadata")
            }
            try await client.execute(
                uri: try fixture.blobURI("buf1", "00/000", Self.write),
                method: .put,
                headers: [.meta("crc32c"): crc],
                body: ByteBuffer(bytes: payload)
            ) { response in
                #expect(response.status == .created)
                // Native blobs are checked by CRC32C; MD5 is only computed when the client sends one.
                #expect(response.headers[.contentMD5] == nil)
            }
        }
    }

    @Test func missingContainerAndBlob() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        try await fixture.withRouter { client in
            try await client.execute(
                uri: try fixture.blobURI("nothere", "00/000", Self.write),
                method: .put,
                body: ByteBuffer(string: "x")
            ) {
                response in
                #expect(response.status == .notFound)
                #expect(response.headers[.xMsErrorCode] == "ContainerNotFound")
            }
            try await client.execute(uri: try fixture.blobURI("nothere", "00/000", Self.read), method: .get) {
                response in
                #expect(response.status == .notFound)
                #expect(response.headers[.xMsErrorCode] == "ContainerNotFound")
                #expect(String(buffer: response.body).contains("<Code>ContainerNotFound</Code>"))
            }
            try await client.execute(uri: try fixture.blobURI("buf1", "00/000", Self.read), method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.xMsErrorCode] == "BlobNotFound")
            }
        }
        #expect(!fixture.app.buffers.exists("nothere"))
    }

    @Test func containerLifecycleNeedsContainerPermissions() async throws {
        let fixture = try ServerFixture()
        try await fixture.withRouter { client in
            let create = "/containers/buf2?restype=container&" + (try fixture.query("buf2", [.createContainer]))
            let head = "/containers/buf2?" + (try fixture.query("buf2", [.readContainer]))
            let delete = "/containers/buf2?" + (try fixture.query("buf2", [.deleteContainer]))
            try await client.execute(uri: head, method: .head) {
                #expect($0.headers[.xMsErrorCode] == "ContainerNotFound")
            }
            // Blob permissions do not create containers.
            try await client.execute(uri: "/containers/buf2?" + (try fixture.query("buf2", Self.write)), method: .put) {
                response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.xMsErrorCode] == "AuthorizationPermissionMismatch")
            }
            try await client.execute(uri: create, method: .put) { #expect($0.status == .created) }
            try await client.execute(uri: create, method: .put) { response in
                #expect(response.status == .conflict)
                #expect(response.headers[.xMsErrorCode] == "ContainerAlreadyExists")
            }
            try await client.execute(uri: head, method: .head) { #expect($0.status == .ok) }
            try await client.execute(
                uri: try fixture.blobURI("buf2", "00/000", Self.write),
                method: .put,
                body: ByteBuffer(string: "x")
            ) {
                #expect($0.status == .created)
            }
            try await client.execute(uri: delete, method: .delete) { #expect($0.status == .accepted) }
            try await client.execute(uri: head, method: .head) { #expect($0.status == .notFound) }
            try await client.execute(uri: delete, method: .delete) {
                #expect($0.headers[.xMsErrorCode] == "ContainerNotFound")
            }
        }
        #expect(!fixture.app.buffers.exists("buf2"))
    }

    @Test func unsupportedOperationsAndBadHeadersAreRefused() async throws {
        let fixture = try ServerFixture(maxBlobSize: 1000)
        try fixture.makeContainer("buf1")
        try await fixture.withRouter { client in
            let uri = try fixture.blobURI("buf1", "b", Self.write)
            try await client.execute(uri: uri + "&comp=appendblock", method: .put, body: ByteBuffer(string: "x")) {
                response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.xMsErrorCode] == "UnsupportedQueryParameter")
            }
            try await client.execute(
                uri: uri,
                method: .put,
                headers: [.meta("bad-key"): "v"],
                body: ByteBuffer(string: "x")
            ) {
                #expect($0.headers[.xMsErrorCode] == "InvalidMetadata")
            }
            try await client.execute(
                uri: uri,
                method: .put,
                headers: [HTTPField.Name("x-ms-blob-type")!: "PageBlob"],
                body: ByteBuffer(string: "x")
            ) { #expect($0.headers[.xMsErrorCode] == "InvalidHeaderValue") }
            try await client.execute(uri: uri, method: .put, body: ByteBuffer(bytes: pattern(1001))) { response in
                #expect(response.status == .contentTooLarge)
                #expect(response.headers[.xMsErrorCode] == "RequestBodyTooLarge")
            }
            try await client.execute(uri: uri, method: .put, headers: [.ifMatch: "*"], body: ByteBuffer(string: "x")) {
                #expect($0.status == .preconditionFailed)
            }
        }
    }

    @Test func conditionalGets() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        try await fixture.withRouter { client in
            var eTag = ""
            try await client.execute(
                uri: try fixture.blobURI("buf1", "c", Self.write),
                method: .put,
                body: ByteBuffer(string: "abc")
            ) {
                eTag = $0.headers[.eTag] ?? ""
            }
            let uri = try fixture.blobURI("buf1", "c", Self.read)
            try await client.execute(uri: uri, method: .get, headers: [.ifMatch: eTag]) { #expect($0.status == .ok) }
            try await client.execute(uri: uri, method: .get, headers: [.ifMatch: "\"0xother\""]) { response in
                #expect(response.status == .preconditionFailed)
                #expect(response.headers[.xMsErrorCode] == "ConditionNotMet")
            }
            try await client.execute(uri: uri, method: .get, headers: [.ifNoneMatch: eTag]) {
                #expect($0.status == .notModified)
            }
        }
    }
}
