import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TygerControlPlane
import TygerCore
import TygerModel
import TygerServer
import TygerStorage
import TygerTestSupport

private let v = "api-version=1.0"

/// The writer lease of the data plane, spoken raw: `.bufferstart` with `x-tyger-lease-id` takes it, other writers
/// are refused before they store a blob, 404s tell readers where the write stands.
struct WriterLeaseTests {
    /// A lease that outlasts every step of a test on a loaded machine (the 8 s default ran out between the steps of a
    /// test once, in a full run on a busy disk), for the tests that are not about a lease running out.
    static let longLease = BufferManager.Configuration(writerLeaseDuration: .seconds(120))

    /// A buffer and its write URL (TCP, signed).
    struct Target {
        let server: LiveControlPlane
        let id: String
        let base: String
        let query: String

        init(_ server: LiveControlPlane) async throws {
            self.server = server
            let created = try await server.send(.POST, "/buffers?\(v)", body: "{}")
            #expect(created.status == .created, "\(created.body)")
            id = try created.decode(Buffer.self).id
            let access = try await server.send(.POST, "/buffers/\(id)/access?\(v)&writeable=true", tcp: true)
            #expect(access.status == .created, "\(access.body)")
            let uri = try access.decode(BufferAccess.self).uri
            let parts = uri.split(separator: "?", maxSplits: 1)
            base = String(parts[0])
            query = String(parts[1])
        }

        var directory: String { server.app.buffers.directory(of: id) }

        /// Sends a request for one blob; `comp` adds `comp=…` to the query.
        func send(
            _ method: HTTPMethod,
            _ blob: String,
            lease: String? = nil,
            action: String? = nil,
            body: [UInt8] = [],
            comp: String? = nil,
            headers: [(String, String)] = []
        ) async throws -> LiveControlPlane.Answer {
            var request = HTTPClientRequest(url: "\(base)/\(blob)?\(query)" + (comp.map { "&comp=\($0)" } ?? ""))
            request.method = method
            request.headers.add(name: "x-ms-version", value: "2021-08-06")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if method == .PUT { request.headers.add(name: "x-ms-blob-type", value: "BlockBlob") }
            if let lease { request.headers.add(name: "x-tyger-lease-id", value: lease) }
            if let action { request.headers.add(name: "x-tyger-lease-action", value: action) }
            if method == .PUT { request.body = .bytes(ByteBuffer(bytes: body)) }
            let response = try await server.client.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            return LiveControlPlane.Answer(
                status: response.status,
                headers: response.headers,
                body: String(buffer: bytes)
            )
        }

        func put(
            _ blob: String,
            lease: String? = nil,
            _ text: String = "data"
        ) async throws
            -> LiveControlPlane.Answer
        {
            try await send(.PUT, blob, lease: lease, body: Array(text.utf8))
        }

        /// `x-tyger-buffer-state` of a 404 for a blob that is not there.
        func state() async throws -> String? {
            let answer = try await send(.GET, "00/999")
            #expect(answer.status == .notFound)
            return answer.headers.first(name: "x-tyger-buffer-state")
        }
    }

    static func code(_ answer: LiveControlPlane.Answer) -> String? { answer.headers.first(name: "x-ms-error-code") }

    /// Before: the second writer's `.bufferstart` got `BlobAlreadyExists`, which it took for its own retry, and
    /// its blobs went into the first writer's buffer.
    @Test func aSecondWriterIsRefusedBeforeItStoresABlob() async throws {
        // Nothing renews the lease here: a lease long enough for a loaded machine (8 s ran out once in a full run).
        try await LiveControlPlane.run(buffers: Self.longLease) { server in
            let target = try await Target(server)
            #expect(try await target.state() == nil, "no lease yet")
            #expect(try await target.put(".bufferstart", lease: "a", #"{"version":"0.3.0"}"#).status == .created)
            #expect(try await target.state() == "writing")

            let second = try await target.put(".bufferstart", lease: "b", #"{"version":"0.3.0"}"#)
            #expect(second.status == .conflict && Self.code(second) == "LeaseAlreadyPresent", "\(second)")
            let secondBlob = try await target.put("00/000", lease: "b")
            #expect(secondBlob.status == .conflict && Self.code(secondBlob) == "LeaseAlreadyPresent")
            let leaseLess = try await target.put("00/000")
            #expect(leaseLess.status == .preconditionFailed && Self.code(leaseLess) == "LeaseIdMissing")
            #expect(!TestFiles.exists(target.directory + "/00/000"), "a refused writer stored a blob")
            // A local writer cannot take the directory's lease either.
            await #expect(throws: BlobStoreError.self) {
                _ = try await FileBlobStore(directory: target.directory).acquireWriterLease()
            }

            // The holder's own retry of `.bufferstart` is told the blob exists (its first attempt landed).
            let retry = try await target.put(".bufferstart", lease: "a", #"{"version":"0.3.0"}"#)
            #expect(retry.status == .conflict && Self.code(retry) == "BlobAlreadyExists", "\(retry)")
            #expect(try await target.put("00/000", lease: "a").status == .created)
            #expect(
                try await target.send(.PUT, ".bufferstart", lease: "a", action: "renew", comp: "lease").status == .ok
            )
            #expect(try await target.put(".bufferend", lease: "a", #"{"status":"complete"}"#).status == .created)
            #expect(try await target.state() == "complete")
            #expect(try await FileBlobStore(directory: target.directory).writerState() == .gone)
            // A retried `.bufferend` whose first attempt landed is told so, not that its lease is gone.
            let endRetry = try await target.put(".bufferend", lease: "a", #"{"status":"complete"}"#)
            #expect(endRetry.status == .conflict && Self.code(endRetry) == "BlobAlreadyExists", "\(endRetry)")
            let afterEnd = try await target.put("00/001", lease: "a")
            #expect(afterEnd.status == .preconditionFailed && Self.code(afterEnd) == "LeaseLost", "\(afterEnd)")

            // After the write: another lease finds data, whoever wrote it.
            let late = try await target.put(".bufferstart", lease: "c", #"{"version":"0.3.0"}"#)
            #expect(late.status == .conflict && Self.code(late) == "BufferAlreadyWritten", "\(late)")
            #expect(try await target.state() == "complete")
        }
    }

    /// A GET with `x-tyger-wait-ms` is a long poll: it answers with the blob as soon as it is stored, a 404 with
    /// `x-tyger-waited-ms` when it is not within the wait, and stops waiting once the buffer ended.
    @Test func aGETWaitsForABlobThatIsNotThereYet() async throws {
        try await LiveControlPlane.run(buffers: Self.longLease) { server in
            let target = try await Target(server)
            #expect(try await target.put(".bufferstart", lease: "a", #"{"version":"0.3.0"}"#).status == .created)
            let stored = Task {
                try await Task.sleep(for: .milliseconds(300))
                return try await target.put("00/000", lease: "a", "pushed").status
            }
            let waited = try await target.send(.GET, "00/000", headers: [("x-tyger-wait-ms", "10000")])
            #expect(waited.status == .ok, "\(waited)")
            #expect(waited.body == "pushed")
            #expect(try await stored.value == .created)

            // Not there within the wait: a 404 that says it waited (a server that cannot wait does not say so).
            let missing = try await target.send(.GET, "00/001", headers: [("x-tyger-wait-ms", "200")])
            #expect(missing.status == .notFound, "\(missing)")
            let waitedFor = try #require(missing.headers.first(name: "x-tyger-waited-ms").flatMap { Int($0) })
            #expect(waitedFor >= 200, "\(missing)")
            #expect(missing.headers.first(name: "x-tyger-buffer-state") == "writing")
            let plain = try await target.send(.GET, "00/001")
            #expect(plain.status == .notFound && plain.headers.first(name: "x-tyger-waited-ms") == nil)

            // Once the buffer ended, no blob comes any more: the wait ends long before its 10 s.
            #expect(try await target.put(".bufferend", lease: "a", #"{"status":"complete"}"#).status == .created)
            let past = try await target.send(.GET, "00/001", headers: [("x-tyger-wait-ms", "10000")])
            #expect(past.status == .notFound, "\(past)")
            let pastWait = try #require(past.headers.first(name: "x-tyger-waited-ms").flatMap { Int($0) })
            #expect(pastWait < 5000, "\(past)")
        }
    }

    /// Put Block and Put Block List go through the same admission as Put Blob: the lease holder stages and commits,
    /// other writers are refused before a byte is staged.
    @Test func blockUploadsFollowTheWriterLease() async throws {
        try await LiveControlPlane.run(buffers: Self.longLease) { server in
            let target = try await Target(server)
            #expect(try await target.put(".bufferstart", lease: "a", #"{"version":"0.3.0"}"#).status == .created)
            let block = "block&blockid=" + "QUFBQQ%3D%3D"  // base64("AAAA")
            let list = Array("<BlockList><Latest>QUFBQQ==</Latest></BlockList>".utf8)

            let other = try await target.send(.PUT, "00/000", lease: "b", body: [1, 2, 3], comp: block)
            #expect(other.status == .conflict && Self.code(other) == "LeaseAlreadyPresent", "\(other)")
            let leaseLess = try await target.send(.PUT, "00/000", body: [1, 2, 3], comp: block)
            #expect(leaseLess.status == .preconditionFailed && Self.code(leaseLess) == "LeaseIdMissing")
            #expect(!TestFiles.exists(target.directory + "/" + FileBlobStore.stagedBlocksFolder), "a refused block")

            #expect(try await target.send(.PUT, "00/000", lease: "a", body: [1, 2, 3], comp: block).status == .created)
            let otherCommit = try await target.send(.PUT, "00/000", lease: "b", body: list, comp: "blocklist")
            #expect(otherCommit.status == .conflict && Self.code(otherCommit) == "LeaseAlreadyPresent")
            let leaseLessCommit = try await target.send(.PUT, "00/000", body: list, comp: "blocklist")
            #expect(leaseLessCommit.status == .preconditionFailed && Self.code(leaseLessCommit) == "LeaseIdMissing")
            #expect(!TestFiles.exists(target.directory + "/00/000"), "a refused writer committed a blob")
            let commit = try await target.send(.PUT, "00/000", lease: "a", body: list, comp: "blocklist")
            #expect(commit.status == .created, "\(commit)")
            let stored = try #require(try await FileBlobStore(directory: target.directory).get("00/000"))
            #expect(Array(stored.bytes) == [1, 2, 3])

            // `.bufferend` committed from blocks ends the write as a Put Blob of it does.
            let end = Array(#"{"status":"complete"}"#.utf8)
            #expect(try await target.send(.PUT, ".bufferend", lease: "a", body: end, comp: block).status == .created)
            #expect(
                try await target.send(.PUT, ".bufferend", lease: "a", body: list, comp: "blocklist").status == .created
            )
            #expect(try await target.state() == "complete")
        }
    }

    @Test func aLeaseThatRunsOutAbandonsTheBufferForHTTPAndLocalReaders() async throws {
        // 5 s, not 1: in a loaded clean-clone CI run the look right after the lease was taken came after a 1 s lease
        // had already run out.
        try await LiveControlPlane.run(buffers: .init(writerLeaseDuration: .seconds(5))) { server in
            let target = try await Target(server)
            #expect(try await target.put(".bufferstart", lease: "a", #"{"version":"0.3.0"}"#).status == .created)
            let local = FileBlobStore(directory: target.directory)
            #expect(try await local.writerState() == .active)
            let abandoned = await eventually(timeout: .seconds(30), every: .milliseconds(100)) {
                (try? await target.state()) == "abandoned"
            }
            #expect(abandoned)
            #expect(await eventually(timeout: .seconds(30)) { (try? await local.writerState()) == .gone })
            let renew = try await target.send(.PUT, ".bufferstart", lease: "a", action: "renew", comp: "lease")
            #expect(renew.status == .preconditionFailed && Self.code(renew) == "LeaseLost", "\(renew)")
            let late = try await target.put("00/000", lease: "a")
            #expect(late.status == .preconditionFailed && Self.code(late) == "LeaseLost", "\(late)")
            #expect(!TestFiles.exists(target.directory + "/00/000"))
        }
    }

    @Test func aReleasedLeaseWithoutBufferEndIsAbandonedAtOnce() async throws {
        try await LiveControlPlane.run(buffers: Self.longLease) { server in
            let target = try await Target(server)
            #expect(try await target.put(".bufferstart", lease: "a", #"{"version":"0.3.0"}"#).status == .created)
            let release = try await target.send(.PUT, ".bufferstart", lease: "a", action: "release", comp: "lease")
            #expect(release.status == .ok, "\(release)")
            #expect(try await target.state() == "abandoned")
            #expect(try await FileBlobStore(directory: target.directory).writerState() == .gone)
            let bad = try await target.send(.PUT, ".bufferstart", lease: "a", action: "steal", comp: "lease")
            #expect(bad.status == .badRequest, "\(bad)")
        }
    }

    /// Writers that send no lease (upstream's CLI, the Azure SDK) keep upstream's behaviour.
    @Test func leaseLessWritersKeepWorking() async throws {
        try await LiveControlPlane.run(buffers: Self.longLease) { server in
            let target = try await Target(server)
            #expect(try await target.put(".bufferstart", #"{"version":"0.3.0"}"#).status == .created)
            #expect(try await target.put("00/000").status == .created)
            #expect(try await target.state() == nil)
            #expect(try await target.put(".bufferend", #"{"status":"complete"}"#).status == .created)
            #expect(try await target.send(.GET, "00/000").body == "data")
        }
    }

    /// Before: upstream's local mode (and ours) handed out access URLs for soft-deleted buffers.
    @Test func aSoftDeletedBufferGetsNoAccessURLAndNoLeaseUntilRestored() async throws {
        try await LiveControlPlane.run(buffers: Self.longLease) { server in
            let target = try await Target(server)
            #expect(try await server.send(.DELETE, "/buffers/\(target.id)?\(v)").status == .ok)
            for writeable in [false, true] {
                let refused = try await server.send(.POST, "/buffers/\(target.id)/access?\(v)&writeable=\(writeable)")
                #expect(refused.status == .notFound, "\(refused.body)")
                #expect(refused.body.contains("soft-deleted"), "\(refused.body)")
            }
            // A URL issued before the deletion cannot start a write with a lease.
            let start = try await target.put(".bufferstart", lease: "a", #"{"version":"0.3.0"}"#)
            #expect(start.status == .notFound, "\(start)")
            #expect(!TestFiles.exists(target.directory + "/.bufferstart"))
            #expect(try await server.send(.POST, "/buffers/\(target.id)/restore?\(v)").status == .ok)
            #expect(try await server.send(.POST, "/buffers/\(target.id)/access?\(v)").status == .created)
            #expect(try await target.put(".bufferstart", lease: "a", #"{"version":"0.3.0"}"#).status == .created)
        }
    }
}
