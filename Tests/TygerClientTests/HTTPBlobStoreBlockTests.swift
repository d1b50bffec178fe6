import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TygerCore
import TygerModel
import TygerStorage
import TygerTestSupport

@testable import TygerClient

/// `HTTPBlobStore` sending blobs past its threshold as blocks, against the built `tyger-server` (its debug log tells
/// how many blocks it staged).
struct HTTPBlobStoreBlockTests {
    /// Runs `body` with a server, a new buffer's directory, and stores over its write URL: one that sends blobs over
    /// 100,000 bytes in 32 KiB blocks, one with the default sizes.
    func withBuffer(
        _ body: (_ blocks: HTTPBlobStore, _ plain: HTTPBlobStore, _ directory: String, _ server: ServerProcess)
            async throws -> Void
    ) async throws {
        let home = TemporaryDirectory()
        let data = home.path + "/data"
        try await withServer(dataDirectory: data, arguments: ["--tcp", "127.0.0.1:0", "--log-level", "debug"]) {
            server in
            let token = try await TygerServerBinary.createToken(dataDirectory: data)
            let endpoint = try ServiceURL(try #require(server.tcpEndpoint))
            let access = try await HTTPTransport.withTransport(bearerToken: token) { transport in
                let control = ControlPlaneClient(server: endpoint, transport: transport)
                let buffer = try await control.createBuffer(Buffer())
                return (buffer.id, try await control.bufferAccess(id: buffer.id, writeable: true))
            }
            try await HTTPTransport.withTransport { transport in
                let url = try ServiceURL(access.1.uri)
                let blocks = HTTPBlobStore(
                    containerURL: url,
                    transport: transport,
                    retryPolicy: quickRetries,
                    blockUploadThreshold: 100_000,
                    blockSize: 32 << 10
                )
                let plain = HTTPBlobStore(containerURL: url, transport: transport, retryPolicy: quickRetries)
                try await body(blocks, plain, data + "/buffers/" + access.0, server)
            }
        }
    }

    /// `put` of an array (through memory the call owns).
    /// A store of the test server's buffer `b1` that sends blobs over 1000 bytes in 256-byte blocks.
    private static func smallBlockStore(_ server: TestHTTPServer, _ transport: HTTPTransport) throws -> HTTPBlobStore {
        HTTPBlobStore(
            containerURL: try ServiceURL(server.baseURL + "/containers/b1?sig=x"),
            transport: transport,
            retryPolicy: quickRetries,
            blockUploadThreshold: 1000,
            blockSize: 256
        )
    }

    static func put(_ store: HTTPBlobStore, _ name: String, _ bytes: [UInt8], _ metadata: BlobMetadata) async throws {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        try await store.put(name, bytes: UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count]), metadata: metadata)
    }

    static func stagedCount(_ server: ServerProcess) -> Int {
        server.log.components(separatedBy: "block staged").count - 1
    }

    @Test(.timeLimit(.minutes(2))) func blobsOverTheThresholdGoUpAsBlocksAndReadBack() async throws {
        try await withBuffer { blocks, plain, directory, server in
            // The 0.3.0 format: an MD5 (each block carries its own), the hash chain.
            let payload = Payload.random(count: 300_001, seed: 7)
            let md5 = Checksums.md5Base64(payload)
            let metadata = BlobMetadata(contentMD5: md5, properties: ["cumulative_hash_chain": "link0"])
            try await Self.put(blocks, "00/000", payload, metadata)
            #expect(Self.stagedCount(server) == 10, "300,001 bytes in 32 KiB blocks")
            let stored = try #require(try await plain.get("00/000"))
            #expect(Array(stored.bytes) == payload)
            #expect(stored.metadata == metadata)
            // What the server keeps is what `tyger buffer read file://` reads, without staged blocks left over.
            let local = try #require(try await FileBlobStore(directory: directory).get("00/000"))
            #expect(Array(local.bytes) == payload && local.metadata == metadata)
            #expect(!TestFiles.exists(directory + "/" + FileBlobStore.stagedBlocksFolder))

            // A retried put whose commit landed is accepted; another blob of the same name is not.
            try await Self.put(blocks, "00/000", payload, metadata)
            let other = BlobMetadata(contentMD5: md5, properties: ["cumulative_hash_chain": "link1"])
            await #expect(throws: BlobStoreError.self) {
                try await Self.put(blocks, "00/000", payload, other)
            }

            // The native format: no MD5, the CRC32C checked by the server over the assembled blob.
            let crc = payload.withUnsafeBytes { Checksums.crc32cString(Checksums.crc32c($0)) }
            let native = BlobMetadata(contentMD5: nil, properties: ["crc32c": crc])
            try await Self.put(blocks, "00/001", payload, native)
            let nativeStored = try #require(try await plain.get("00/001"))
            #expect(Array(nativeStored.bytes) == payload)
            #expect(nativeStored.metadata.properties["crc32c"] == crc)
            let wrong = BlobMetadata(contentMD5: nil, properties: ["crc32c": "00000000"])
            let error = await #expect(throws: TygerClientError.self) {
                try await Self.put(blocks, "00/002", payload, wrong)
            }
            #expect(error?.errorCode == "Crc32cMismatch")
            #expect(try await plain.head("00/002") == nil)
            // A wrong MD5 is caught too (by the server, over the whole blob).
            let badMD5 = BlobMetadata(contentMD5: Checksums.md5Base64([1]), properties: [:])
            await #expect(throws: TygerCoreError.self) {
                try await Self.put(blocks, "00/003", payload, badMD5)
            }

            // At or under the threshold: one Put Blob.
            let before = Self.stagedCount(server)
            let small = Array(payload[0..<100_000])
            let smallMetadata = BlobMetadata(contentMD5: Checksums.md5Base64(small), properties: [:])
            try await Self.put(blocks, "00/004", small, smallMetadata)
            #expect(Self.stagedCount(server) == before)
            #expect(try await plain.head("00/004") == smallMetadata)
        }
    }

    /// Servers of this project from before block uploads answer Put Block with 400 `UnsupportedQueryParameter`,
    /// where one Put Blob of the whole blob works: the store falls back to it for that blob, and keeps to it for the
    /// blobs after it.
    @Test func aServerWithoutPutBlockGetsOnePutBlobFromThenOn() async throws {
        let payload = Payload.random(count: 3000, seed: 9)
        let md5 = Checksums.md5Base64(payload)
        let metadata = BlobMetadata(contentMD5: md5, properties: ["cumulative_hash_chain": "link0"])
        try await TestHTTPServer.withServer({ request, _ in
            guard !request.uri.contains("comp=") else {
                return .init(
                    status: .badRequest,
                    headers: ["x-ms-error-code": "UnsupportedQueryParameter"],
                    body: "<Error><Code>UnsupportedQueryParameter</Code></Error>"
                )
            }
            return .init(status: .created)
        }) { server in
            try await HTTPTransport.withTransport { transport in
                let store = try Self.smallBlockStore(server, transport)
                try await Self.put(store, "00/000", payload, metadata)
                try await Self.put(store, "00/001", payload, metadata)
            }
            let requests = server.requests
            #expect(
                requests.map { "\($0.method) \($0.uri.split(separator: "?")[0]) \($0.uri.contains("comp=block"))" } == [
                    "PUT /containers/b1/00/000 true", "PUT /containers/b1/00/000 false",
                    "PUT /containers/b1/00/001 false",
                ]
            )
            for put in requests.dropFirst() {
                #expect(Array(put.body.readableBytesView) == payload)
                #expect(put.headers.first(name: "Content-MD5") == md5)
                #expect(put.headers.first(name: "x-ms-meta-cumulative_hash_chain") == "link0")
                #expect(put.headers.first(name: "If-None-Match") == "*")
            }
        }
    }

    /// Other 400s to a Put Block (here a block ID the server does not take) fail the put: no sign of an older
    /// server, and no Put Blob follows.
    @Test func otherRefusalsOfAPutBlockFailThePut() async throws {
        let payload = Payload.random(count: 3000, seed: 10)
        try await TestHTTPServer.withServer({ _, _ in
            .init(status: .badRequest, headers: ["x-ms-error-code": "InvalidQueryParameterValue"])
        }) { server in
            try await HTTPTransport.withTransport { transport in
                let store = try Self.smallBlockStore(server, transport)
                let error = await #expect(throws: TygerClientError.self) {
                    try await Self.put(store, "00/000", payload, BlobMetadata())
                }
                #expect(error?.errorCode == "InvalidQueryParameterValue")
            }
            #expect(server.requests.count == 1)
        }
    }

    @Test func theDefaultThresholdIsAzures() {
        #expect(HTTPBlobStore.singlePutLimit == 64 << 20)
        #expect(HTTPBlobStore.stagedBlockSize <= 100 << 20, "within the server's block limit")
    }
}
