import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import Testing
import TygerCore
import TygerStorage
import TygerTestSupport

@testable import TygerServer

/// Put Block and Put Block List, driven through the router over a real data directory.
struct DataPlaneBlockTests {
    static let write = DataPlaneTests.write
    static let read = DataPlaneTests.read

    static func id(_ text: String) -> String { Base64.encode(Array(text.utf8)) }

    /// `?…&comp=block&blockid=…` with the ID percent-encoded.
    static func blockURI(_ uri: String, _ id: String) -> String {
        uri + "&comp=block&blockid="
            + id.replacingOccurrences(of: "+", with: "%2B").replacingOccurrences(of: "/", with: "%2F")
            .replacingOccurrences(of: "=", with: "%3D")
    }

    static func list(_ entries: [(String, String)]) -> ByteBuffer {
        var xml = "<?xml version='1.0' encoding='utf-8'?>\n<BlockList>"
        for (tag, id) in entries { xml += "<\(tag)>\(id)</\(tag)>" }
        return ByteBuffer(string: xml + "</BlockList>")
    }

    /// The staged-blocks folder of a buffer, and what is in it.
    static func stagedFiles(_ fixture: ServerFixture, _ id: String) -> [String] {
        TestFiles.regularFiles(under: fixture.app.buffers.directory(of: id) + "/" + FileBlobStore.stagedBlocksFolder)
    }

    @Test func blocksAreAssembledInListOrderWithPutBlobsMetadataAndChecks() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let payload = pattern(700_000)
        let pieces = [Array(payload[0..<300_000]), Array(payload[300_000..<600_000]), Array(payload[600_000...])]
        let ids = ["block-0", "block-1", "block-2"].map(Self.id)
        let uri = try fixture.blobURI("buf1", "00/000", Self.write)
        let md5 = md5Base64(payload)
        try await fixture.withRouter { client in
            // Staged out of order, one of them twice (the second replaces the first).
            for i in [2, 0, 1, 1] {
                try await client.execute(
                    uri: Self.blockURI(uri, ids[i]),
                    method: .put,
                    headers: [.contentMD5: md5Base64(pieces[i]), HTTPField.Name("x-ms-version")!: "2021-08-06"],
                    body: ByteBuffer(bytes: pieces[i])
                ) { response in
                    #expect(response.status == .created)
                    #expect(response.headers[.contentMD5] == md5Base64(pieces[i]))
                    #expect(response.headers[HTTPField.Name("x-ms-request-id")!] != nil)
                    #expect(response.headers[HTTPField.Name("x-ms-version")!] == "2021-08-06")
                }
            }
            #expect(Self.stagedFiles(fixture, "buf1").count == 3)
            // Not a blob until committed.
            try await client.execute(uri: try fixture.blobURI("buf1", "00/000", Self.read), method: .get) {
                #expect($0.status == .notFound)
            }
            let body = Self.list([("Latest", ids[0]), ("Uncommitted", ids[1]), ("Latest", ids[2])])
            try await client.execute(
                uri: uri + "&comp=blocklist",
                method: .put,
                headers: [
                    .xMsBlobContentMD5: md5, .meta("cumulative_hash_chain"): "chain0", .ifNoneMatch: "*",
                    .contentMD5: Checksums.md5Base64(Array(buffer: body)),
                ],
                body: body
            ) { response in
                #expect(response.status == .created)
                #expect(response.headers[.eTag] != nil)
                // As Azure: the Content-MD5 of a Put Block List answer is the block list's.
                #expect(response.headers[.contentMD5] == Checksums.md5Base64(Array(buffer: body)))
            }
            try await client.execute(uri: try fixture.blobURI("buf1", "00/000", Self.read), method: .get) { response in
                #expect(response.status == .ok)
                #expect(Array(buffer: response.body) == payload)
                #expect(response.headers[.contentMD5] == md5)
                #expect(response.headers[.meta("cumulative_hash_chain")] == "chain0")
            }
            // Write-once: a second commit, and staging on the committed blob, are refused as a second Put Blob is.
            try await client.execute(uri: uri + "&comp=blocklist", method: .put, body: body) { response in
                #expect(response.status == .conflict)
                #expect(response.headers[.xMsErrorCode] == "BlobAlreadyExists")
            }
            try await client.execute(uri: Self.blockURI(uri, ids[0]), method: .put, body: ByteBuffer(string: "x")) {
                #expect($0.status == .conflict)
                #expect($0.headers[.xMsErrorCode] == "BlobAlreadyExists")
            }
        }
        let stored = try #require(try await fixture.app.buffers.store(for: "buf1").get("00/000"))
        #expect(Array(stored.bytes) == payload)
        #expect(stored.metadata == BlobMetadata(contentMD5: md5, properties: ["cumulative_hash_chain": "chain0"]))
        #expect(Self.stagedFiles(fixture, "buf1").isEmpty, "staged blocks are removed after the commit")
        #expect(!TestFiles.exists(fixture.app.buffers.directory(of: "buf1") + "/" + FileBlobStore.stagedBlocksFolder))
    }

    @Test func theNativeFormatsCRC32CIsCheckedOverTheAssembledBlob() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let payload = pattern(50_000)
        let crc = payload.withUnsafeBytes { Checksums.crc32cString(Checksums.crc32c($0)) }
        let uri = try fixture.blobURI("buf1", "00/000", Self.write)
        try await fixture.withRouter { client in
            for (i, part) in [payload[0..<20_000], payload[20_000...]].enumerated() {
                try await client.execute(
                    uri: Self.blockURI(uri, Self.id("b\(i)")),
                    method: .put,
                    body: ByteBuffer(bytes: Array(part))
                ) { #expect($0.status == .created) }
            }
            let body = Self.list([("Latest", Self.id("b0")), ("Latest", Self.id("b1"))])
            // The blocks in the wrong order: the CRC32C does not match, nothing is stored, the blocks stay.
            let swapped = Self.list([("Latest", Self.id("b1")), ("Latest", Self.id("b0"))])
            try await client.execute(
                uri: uri + "&comp=blocklist",
                method: .put,
                headers: [.meta("crc32c"): crc],
                body: swapped
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.xMsErrorCode] == "Crc32cMismatch")
            }
            #expect(try fixture.app.buffers.store(for: "buf1").openBlob("00/000") == nil)
            try await client.execute(
                uri: uri + "&comp=blocklist",
                method: .put,
                headers: [.meta("crc32c"): crc],
                body: body
            ) { #expect($0.status == .created) }
        }
        let stored = try #require(try await fixture.app.buffers.store(for: "buf1").get("00/000"))
        #expect(Array(stored.bytes) == payload)
        #expect(stored.metadata.properties["crc32c"] == crc)
    }

    @Test func badBlocksAndBlockListsGetAzuresErrors() async throws {
        let fixture = try ServerFixture(maxBlobSize: 1000)
        try fixture.makeContainer("buf1")
        let uri = try fixture.blobURI("buf1", "b", Self.write)
        try await fixture.withRouter { client in
            func put(_ target: String, _ body: ByteBuffer, headers: HTTPFields = [:]) async throws -> (Int, String?) {
                try await client.execute(uri: target, method: .put, headers: headers, body: body) { response in
                    (Int(response.status.code), response.headers[.xMsErrorCode])
                }
            }
            let x = ByteBuffer(string: "x")
            // Block IDs: missing, not base64, empty, over 64 bytes.
            #expect(try await put(uri + "&comp=block", x) == (400, "InvalidQueryParameterValue"))
            #expect(try await put(uri + "&comp=block&blockid=%21%21", x) == (400, "InvalidQueryParameterValue"))
            #expect(try await put(uri + "&comp=block&blockid=", x) == (400, "InvalidQueryParameterValue"))
            let long = Self.id(String(repeating: "a", count: 65))
            #expect(try await put(Self.blockURI(uri, long), x) == (400, "InvalidQueryParameterValue"))
            #expect(try await put(Self.blockURI(uri, Self.id(String(repeating: "a", count: 64))), x) == (201, nil))
            // Every block of a blob has an ID of the same length.
            #expect(try await put(Self.blockURI(uri, Self.id("short")), x) == (400, "InvalidBlobOrBlock"))
            // A block over the limit (here the 1000-byte blob limit), by Content-Length or streamed.
            let id = Self.id(String(repeating: "b", count: 64))
            #expect(
                try await put(Self.blockURI(uri, id), ByteBuffer(bytes: pattern(1001))) == (413, "RequestBodyTooLarge")
            )
            // A wrong Content-MD5: refused, not staged.
            #expect(
                try await put(Self.blockURI(uri, id), x, headers: [.contentMD5: md5Base64(Array("y".utf8))])
                    == (400, "Md5Mismatch")
            )
            #expect(
                try await put(
                    Self.blockURI(uri, id),
                    x,
                    headers: [HTTPField.Name("x-ms-content-crc64")!: "AAAAAAAAAAA="]
                )
                    == (400, "UnsupportedHeader")
            )
            let staged = Self.id(String(repeating: "a", count: 64))
            // Block lists: a block that is not staged (never, or refused above), a Committed entry (a write-once
            // blob has no committed blocks), bad XML, too many blocks, too many bytes.
            #expect(try await put(uri + "&comp=blocklist", Self.list([("Latest", id)])) == (400, "InvalidBlockList"))
            #expect(
                try await put(uri + "&comp=blocklist", Self.list([("Committed", staged)])) == (400, "InvalidBlockList")
            )
            #expect(try await put(uri + "&comp=blocklist", Self.list([("Latest", "%%%")])) == (400, "InvalidBlockList"))
            #expect(
                try await put(uri + "&comp=blocklist", ByteBuffer(string: "<BlockList><Latest>")) == (
                    400, "InvalidXmlDocument"
                )
            )
            #expect(try await put(uri + "&comp=blocklist", ByteBuffer(string: "{}")) == (400, "InvalidXmlDocument"))
            let tooMany = Self.list(Array(repeating: ("Latest", staged), count: 50_001))
            #expect(try await put(uri + "&comp=blocklist", tooMany) == (400, "BlockListTooLong"))
            let tooBig = Self.list(Array(repeating: ("Latest", staged), count: 1001))  // 1001 bytes > 1000
            #expect(try await put(uri + "&comp=blocklist", tooBig) == (413, "RequestBodyTooLarge"))
            let huge = ByteBuffer(bytes: [UInt8](repeating: 0x20, count: (8 << 20) + 1))
            #expect(try await put(uri + "&comp=blocklist", huge) == (413, "RequestBodyTooLarge"))
            #expect(
                try await put(
                    uri + "&comp=blocklist",
                    Self.list([("Latest", staged)]),
                    headers: [.contentMD5: md5Base64([1])]
                )
                    == (400, "Md5Mismatch")
            )
            // Other comp= operations are still refused.
            #expect(try await put(uri + "&comp=appendblock", x) == (400, "UnsupportedQueryParameter"))
            // A read URL cannot stage or commit.
            let readURI = try fixture.blobURI("buf1", "b", Self.read)
            #expect(try await put(Self.blockURI(readURI, staged), x).0 == 403)
            #expect(try await put(readURI + "&comp=blocklist", Self.list([("Latest", staged)])).0 == 403)
            // After all that, the staged block still commits; an empty list makes an empty blob.
            #expect(
                try await put(uri + "&comp=blocklist", Self.list([("Latest", staged), ("Latest", staged)])) == (
                    201, nil
                )
            )
            let emptyURI = try fixture.blobURI("buf1", "e", Self.write)
            #expect(try await put(emptyURI + "&comp=blocklist", ByteBuffer(string: "<BlockList />")) == (201, nil))
        }
        let store = fixture.app.buffers.store(for: "buf1")
        let blob = try #require(try await store.get("b"))  // kept: its bytes live as long as it does
        #expect(Array(blob.bytes) == Array("xx".utf8))
        let empty = try #require(try await store.get("e"))
        #expect(empty.bytes.isEmpty)
    }

    @Test func uncommittedBlocksGoWithTheBufferAndAtTheNextServerStart() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        try fixture.makeContainer("buf2")
        try await fixture.withRouter { client in
            for buffer in ["buf1", "buf2"] {
                let uri = try fixture.blobURI(buffer, "00/000", Self.write)
                try await client.execute(
                    uri: Self.blockURI(uri, Self.id("a")),
                    method: .put,
                    body: ByteBuffer(string: "x")
                ) { #expect($0.status == .created) }
            }
            let delete = "/containers/buf1?" + (try fixture.query("buf1", [.deleteContainer]))
            try await client.execute(uri: delete, method: .delete) { #expect($0.status == .accepted) }
        }
        #expect(!fixture.app.buffers.exists("buf1"))
        // Blocks of this process stay while it runs; those of a process that is gone (a previous server) go at the
        // start's cleanup, with their folders.
        let root = fixture.app.buffers.root
        #expect(FileBlobStore.removeStaleTemporaryFiles(under: root).isEmpty)
        let staged = try #require(Self.stagedFiles(fixture, "buf2").first)
        let folder = fixture.app.buffers.directory(of: "buf2") + "/" + FileBlobStore.stagedBlocksFolder
        let stale = folder + "/" + staged.replacingOccurrences(of: ".tmp-\(getpid())-", with: ".tmp-\(deadPID())-")
        try FileManager.default.moveItem(atPath: folder + "/" + staged, toPath: stale)
        #expect(FileBlobStore.removeStaleTemporaryFiles(under: root) == [stale])
        #expect(!TestFiles.exists(folder), "the emptied staging folders are removed")
    }

    /// A client retries a Put Block List whose answer it did not get; the retry can be admitted while the first
    /// attempt is still at work, and that attempt's commit takes the blob's blocks. The retry must then answer as
    /// for any committed blob (409 `BlobAlreadyExists`, which the client accepts after comparing the blob's checksum
    /// and chain), not 400 `InvalidBlockList`. Driven through the router with a request body held back until the
    /// first attempt has committed.
    @Test func aRetriedBlockListWhoseFirstAttemptCommittedMeanwhileFindsTheBlob() async throws {
        let fixture = try ServerFixture()
        try fixture.makeContainer("buf1")
        let uri = try fixture.blobURI("buf1", "00/000", Self.write)
        let responder = fixture.app.buildRouter().buildResponder()
        @Sendable func put(_ target: String, _ body: RequestBody) async throws -> (Int, String?) {
            let head = HTTPRequest(method: .put, scheme: "http", authority: "localhost", path: target)
            var logger = Logger(label: "test")
            logger[metadataKey: "hb.request.id"] = "\(UInt64.random(in: 0 ... .max))"
            let source = ApplicationRequestContextSource(channel: NIOAsyncTestingChannel(), logger: logger)
            let response = try await responder.respond(
                to: Request(head: head, body: body),
                context: AppRequestContext(source: source)
            )
            return (Int(response.status.code), response.headers[.xMsErrorCode])
        }
        let id = Self.id("block-0")
        let list = Self.list([("Latest", id)])
        #expect(try await put(Self.blockURI(uri, id), RequestBody(buffer: ByteBuffer(string: "x"))) == (201, nil))

        let held = HeldBody(list)
        async let retry = put(uri + "&comp=blocklist", RequestBody(asyncSequence: held))
        await held.requested()  // the retry is admitted and reads its body
        #expect(try await put(uri + "&comp=blocklist", RequestBody(buffer: list)) == (201, nil))
        held.release()
        #expect(try await retry == (409, "BlobAlreadyExists"))
        let stored = try #require(try await fixture.app.buffers.store(for: "buf1").get("00/000"))
        #expect(Array(stored.bytes) == Array("x".utf8))
    }

    /// A PID that no process has now.
    private func deadPID() -> Int32 {
        var pid: Int32 = 999_999
        while kill(pid, 0) == 0 || errno != ESRCH { pid -= 1 }
        return pid
    }

    static func parse(_ text: String) throws -> [String] {
        try BlockList.parse(Array(text.utf8), maxEntries: 10).entries.map(\.id)
    }

    @Test func blockListsParseStrictly() throws {
        let ok = try Self.parse(
            "\u{FEFF}<?xml version=\"1.0\"?>\n<BlockList>\n  <Latest> QQ== </Latest>\n</BlockList>\n"
        )
        #expect(ok == ["QQ=="])
        #expect(try Self.parse("<BlockList/>") == [])
        for bad in [
            "", "<BlockList>", "<BlockList><Latest>QQ==</Latest>", "<BlockList><Other>QQ==</Other></BlockList>",
            "<BlockList><Latest>QQ==</Committed></BlockList>", "<BlockList></BlockList><BlockList></BlockList>",
            "<?xml <BlockList/>", "<BlockList a='1'></BlockList>", "<BlockList><!-- c --></BlockList>",
        ] {
            #expect(throws: (any Error).self, "\(bad)") { try Self.parse(bad) }
        }
    }
}

/// A request body of one buffer that is held back until ``release()``; ``requested()`` returns once the handler asks
/// for it.
final class HeldBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    private let bytes: ByteBuffer
    private let asked: AsyncStream<Void>
    private let ask: AsyncStream<Void>.Continuation
    private let released: AsyncStream<Void>
    private let release_: AsyncStream<Void>.Continuation

    init(_ bytes: ByteBuffer) {
        self.bytes = bytes
        (asked, ask) = AsyncStream.makeStream(of: Void.self)
        (released, release_) = AsyncStream.makeStream(of: Void.self)
    }

    /// Waits until the body is asked for.
    func requested() async { for await _ in asked { return } }

    /// Lets the body go.
    func release() { release_.finish() }

    struct AsyncIterator: AsyncIteratorProtocol {
        let body: HeldBody
        var sent = false

        mutating func next() async -> ByteBuffer? {
            guard !sent else { return nil }
            sent = true
            body.ask.yield()
            for await _ in body.released {}
            return body.bytes
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }
}
