import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
private import Synchronization
public import TygerCore
public import TygerStorage

/// A `BlobStore` over the data plane: the Azure-Blob-style HTTP protocol, addressed by a signed container URL.
///
/// - A blob goes up with one Put Blob, or, past ``singlePutLimit``, as blocks (Put Block, Put Block List). A server
///   that does not serve Put Block (servers of this project before block uploads answer 400
///   `UnsupportedQueryParameter`) gets the blob in one Put Blob instead, and so every blob after it.
/// - 403 `AuthenticationFailed` (an expired URL) asks `refreshURL` for a fresh one and retries, when given.
/// - Connection errors and 500/503 are retried with jittered exponential backoff, or after the `Retry-After` the
///   server asks for (``RetryPolicy``).
/// - A 409/403 "already exists" on a retried put is accepted if the stored blob has our checksum and chain
///   (the first attempt landed), as upstream does.
/// - Writer lease: the writer sends a lease ID (`x-tyger-lease-id`) with every put; the server grants the lease
///   with `.bufferstart`, refuses a second writer before it stores a blob (409 `LeaseAlreadyPresent`), and the
///   store renews it every ``leaseRenewalInterval`` until the lease is released. Readers learn where the write
///   stands from `x-tyger-buffer-state` on 404 answers (``writerState()``). Servers without leases ignore both.
public final class HTTPBlobStore: BlobStore {
    private let transport: HTTPTransport
    /// The lease ID this store writes with, once ``acquireWriterLease()`` was called.
    private let leaseId = Mutex<String?>(nil)
    /// Request bodies of finished puts, reused: a fresh 4 MiB allocation per put costs a page fault and a zeroed page
    /// for every 4 KiB before the copy even starts. Reuse is safe because `ByteBuffer` is copy-on-write: a buffer the
    /// HTTP client still holds is copied, not overwritten, when it is written to again.
    private let bodyPool = Mutex<[ByteBuffer]>([])
    private static let bodyPoolLimit = 32
    /// Bodies larger than this (blocks over 8 MiB) are not kept: 32 of them would hold too much memory.
    private static let pooledBodyCapacity = 8 << 20
    /// The last `x-tyger-buffer-state` a 404 carried.
    private let lastBufferState = Mutex<String?>(nil)
    /// How often a writer renews its lease (the server's lease lasts 8 s).
    public static let leaseRenewalInterval: Duration = .seconds(2)
    private let url = Mutex<ServiceURL>(try! ServiceURL("http://placeholder/"))  // replaced in init
    private let refreshURL: (@Sendable () async throws -> ServiceURL)?
    private let retryPolicy: RetryPolicy
    /// Blobs larger than this go up in blocks (Put Block, then Put Block List); see ``singlePutLimit``.
    let blockUploadThreshold: Int
    /// The size of the blocks of a block upload; see ``stagedBlockSize``.
    let blockSize: Int
    /// Set when the server refused a Put Block as an operation it does not serve: from then on, for the store's
    /// lifetime, every blob goes up with one Put Blob.
    private let blocksUnsupported = Mutex(false)

    /// The largest blob sent with one Put Blob: 64 MiB, the Azure SDKs' `max_single_put_size`. Bigger blobs
    /// (`tyger buffer write --block-size` up to 256M) are sent as blocks, as Azure Storage requires past its
    /// single-put limit (5000 MiB) and the SDKs do from 64 MiB on.
    public static let singlePutLimit = 64 << 20
    /// The size of the blocks a blob over ``singlePutLimit`` is cut into (the servers accept up to 100 MiB, Azure
    /// 4000 MiB).
    public static let stagedBlockSize = 8 << 20

    /// - Parameters:
    ///   - containerURL: The signed container URL (`…/containers/<id>?…&sig=…`).
    ///   - retryPolicy: How often and how long apart failed requests are retried.
    ///   - refreshURL: Gets a fresh URL when the current one is refused (buffer IDs); nil for URLs given by users.
    public convenience init(
        containerURL: ServiceURL,
        transport: HTTPTransport,
        retryPolicy: RetryPolicy = .default,
        refreshURL: (@Sendable () async throws -> ServiceURL)? = nil
    ) {
        self.init(
            containerURL: containerURL,
            transport: transport,
            retryPolicy: retryPolicy,
            refreshURL: refreshURL,
            blockUploadThreshold: Self.singlePutLimit,
            blockSize: Self.stagedBlockSize
        )
    }

    /// A store with other block-upload sizes than ``singlePutLimit`` and ``stagedBlockSize`` (tests use small ones).
    init(
        containerURL: ServiceURL,
        transport: HTTPTransport,
        retryPolicy: RetryPolicy = .default,
        refreshURL: (@Sendable () async throws -> ServiceURL)? = nil,
        blockUploadThreshold: Int,
        blockSize: Int
    ) {
        precondition(blockUploadThreshold >= 0 && blockSize > 0, "block sizes must be positive")
        self.transport = transport
        self.refreshURL = refreshURL
        self.retryPolicy = retryPolicy
        self.blockUploadThreshold = blockUploadThreshold
        self.blockSize = blockSize
        url.withLock { $0 = containerURL }
    }

    public var location: String { url.withLock { $0.redacted } }

    private func blobURL(_ name: String?, query: String? = nil) -> ServiceURL {
        let base = url.withLock { $0 }
        var target = name.map { base.appending(path: $0) } ?? base
        if let query { target.query = target.query.isEmpty ? query : target.query + "&" + query }
        return target
    }

    private static func baseHeaders() -> HTTPHeaders {
        ["x-ms-version": "2021-08-06"]
    }

    /// Runs `request` again while its answer calls for it: once with a fresh URL after 403 `AuthenticationFailed`
    /// (when `refreshURL` is set), and after a wait (``RetryPolicy``) after 500/503 or a transport error.
    ///
    /// - Parameter response: The HTTP response inside a result, or `nil` when the result is final as it is.
    private func retrying<R>(
        _ request: () async throws -> R,
        response: (R) -> HTTPTransport.Response?
    ) async throws -> R {
        var attempt = 0
        var refreshed = false
        while true {
            do {
                let result = try await request()
                guard let answer = response(result) else { return result }
                let code = answer.headers.first(name: "x-ms-error-code")
                if answer.status == 403, code == "AuthenticationFailed", let refreshURL, !refreshed {
                    let fresh = try await refreshURL()
                    url.withLock { $0 = fresh }
                    refreshed = true
                    continue
                }
                if answer.status == 500 || answer.status == 503, attempt + 1 < retryPolicy.maxAttempts {
                    attempt += 1
                    try await Task.sleep(for: retryPolicy.delay(attempt: attempt, headers: answer.headers))
                    continue
                }
                return result
            } catch let error as TygerClientError
                where error.code == .transport && attempt + 1 < retryPolicy.maxAttempts
            {
                attempt += 1
                try await Task.sleep(for: retryPolicy.delay(attempt: attempt, headers: nil))
            }
        }
    }

    /// Sends with retries and URL refresh.
    private func send(
        _ method: HTTPMethod,
        blob: String?,
        query: String? = nil,
        headers: HTTPHeaders = [:],
        body: UnsafeRawBufferPointer? = nil
    )
        async throws -> HTTPTransport.Response
    {
        var h = Self.baseHeaders()
        h.add(contentsOf: headers)
        return try await retrying({
            try await exchange(method, blobURL(blob, query: query), headers: h, body: body)
        }) { $0 }
    }

    /// One request, without retries: through ``DirectHTTPClient`` for plain HTTP (the body is sent from where it
    /// is), through AsyncHTTPClient for HTTPS (the body copied into a pooled `ByteBuffer`).
    private func exchange(
        _ method: HTTPMethod,
        _ target: ServiceURL,
        headers: HTTPHeaders,
        body: UnsafeRawBufferPointer?
    ) async throws -> HTTPTransport.Response {
        if DirectHTTPClient.serves(target) {
            return try await DirectHTTPClient.shared.send(method, target, headers: headers, body: body)
        }
        guard let body, body.count > 0 else {
            return try await transport.send(method, target, headers: headers, body: nil)
        }
        var buffer = bodyPool.withLock { $0.popLast() } ?? ByteBufferAllocator().buffer(capacity: body.count)
        buffer.clear()
        buffer.writeBytes(body)
        defer {
            if buffer.capacity <= Self.pooledBodyCapacity {
                buffer.clear()
                bodyPool.withLock { [buffer] in if $0.count < Self.bodyPoolLimit { $0.append(buffer) } }
            }
        }
        return try await transport.send(method, target, headers: headers, body: buffer)
    }

    private func failure(_ response: HTTPTransport.Response, _ what: String) -> any Error {
        let code = response.headers.first(name: "x-ms-error-code")
        switch (response.status, code) {
        case (404, "ContainerNotFound"): return BlobStoreError(.containerNotFound, "the buffer does not exist")
        case (403, "AuthorizationPermissionMismatch"):
            return TygerClientError(
                .authentication,
                "the access URL does not allow this operation (\(what))",
                status: 403,
                errorCode: code
            )
        case (507, _):
            return TygerClientError(
                .http,
                "\(what): the server's disk is full (507 InsufficientStorage)",
                status: 507,
                errorCode: code
            )
        case (403, _):
            return TygerClientError(
                .authentication,
                "invalid access URL: \(code ?? "forbidden")",
                status: 403,
                errorCode: code
            )
        default:
            return TygerClientError(
                .http,
                "\(what): unexpected status code \(response.status)\(code.map { " (\($0))" } ?? "")",
                status: response.status,
                errorCode: code
            )
        }
    }

    public func containerExists() async throws -> Bool {
        // Access URLs carry blob-level permissions, so ask about a blob: a missing container says so in its 404.
        let response = try await send(.HEAD, blob: ".bufferstart")
        if response.status == 200 { return true }
        if response.status == 404 { return response.headers.first(name: "x-ms-error-code") != "ContainerNotFound" }
        throw failure(response, "HEAD .bufferstart")
    }

    public func createContainer() async throws {
        throw BlobStoreError(
            .containerNotFound,
            "the buffer does not exist (buffers are created with 'tyger buffer create')"
        )
    }

    public func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws {
        try BlobName.validate(name)
        if bytes.count > blockUploadThreshold, !blocksUnsupported.withLock({ $0 }) {
            if try await putInBlocks(name, bytes: bytes, metadata: metadata) { return }
            // An older server: one Put Blob, as before block uploads (it takes blobs up to its own limit).
        }
        var headers = blobHeaders(metadata)
        headers.add(name: "x-ms-blob-type", value: "BlockBlob")
        if let md5 = metadata.contentMD5 { headers.add(name: "Content-MD5", value: md5) }
        let response = try await send(.PUT, blob: name, headers: headers, body: bytes.count > 0 ? bytes : nil)
        try await check(response, of: "PUT \(name)", storing: name, metadata: metadata)
    }

    /// The headers of a blob's commit (Put Blob, Put Block List): write-once (`If-None-Match: *`), the writer's
    /// lease, and the metadata (the chain, the CRC32C, the encoding).
    private func blobHeaders(_ metadata: BlobMetadata) -> HTTPHeaders {
        var headers: HTTPHeaders = ["If-None-Match": "*"]
        if let lease = leaseId.withLock({ $0 }) { headers.add(name: "x-tyger-lease-id", value: lease) }
        for (k, v) in metadata.properties.sorted(by: { $0.key < $1.key }) {
            headers.add(name: "x-ms-meta-\(k)", value: v)
        }
        return headers
    }

    /// Sends a blob too big for one Put Blob: Put Block for each ``blockSize`` piece (with its `Content-MD5` when
    /// the blob has an MD5, as the 0.3.0 format does), then Put Block List with the blob's MD5
    /// (`x-ms-blob-content-md5`) and metadata, which the server verifies over the whole blob as for a Put Blob.
    ///
    /// The block IDs start with an ID of this upload, so a retried put never commits blocks of an earlier attempt.
    ///
    /// - Returns: `false` when the server refused the first block as an operation it does not serve
    ///   (``refusesBlocks(_:)``), and nothing was stored: the caller sends the blob with one Put Blob; `true` when the
    ///   blob is stored.
    private func putInBlocks(
        _ name: String,
        bytes: UnsafeRawBufferPointer,
        metadata: BlobMetadata
    ) async throws -> Bool {
        let upload = UUID().uuidString.lowercased()
        var ids: [String] = []
        var offset = 0
        while offset < bytes.count {
            let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(offset + blockSize, bytes.count)])
            // 36 + 1 + 6 = 43 bytes (Azure's limit is 64), the same for every block of the blob.
            let id = Base64.encode(Array("\(upload)-\(String(ids.count).leftPadded(to: 6))".utf8))
            var headers: HTTPHeaders = [:]
            if let lease = leaseId.withLock({ $0 }) { headers.add(name: "x-tyger-lease-id", value: lease) }
            if metadata.contentMD5 != nil { headers.add(name: "Content-MD5", value: Checksums.md5Base64(piece)) }
            let response = try await send(
                .PUT,
                blob: name,
                query: "comp=block&blockid=" + Self.percentEncoded(id),
                headers: headers,
                body: piece
            )
            if response.status != 201, response.status != 200 {
                if ids.isEmpty, Self.refusesBlocks(response) {
                    blocksUnsupported.withLock { $0 = true }
                    return false
                }
                // A retried put whose commit landed the first time finds the blob (409): accepted if it is ours.
                try await check(response, of: "PUT \(name) (block \(ids.count))", storing: name, metadata: metadata)
                return true
            }
            ids.append(id)
            offset += piece.count
        }
        var xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<BlockList>"
        for id in ids { xml += "<Latest>\(id)</Latest>" }
        xml += "</BlockList>"
        let body = Array(xml.utf8)
        var headers = blobHeaders(metadata)
        headers.add(name: "Content-MD5", value: Checksums.md5Base64(body))
        if let md5 = metadata.contentMD5 { headers.add(name: "x-ms-blob-content-md5", value: md5) }
        let list = UnsafeMutableRawBufferPointer.allocate(byteCount: body.count, alignment: 1)
        defer { list.deallocate() }
        list.copyBytes(from: body)
        let response = try await send(
            .PUT,
            blob: name,
            query: "comp=blocklist",
            headers: headers,
            body: UnsafeRawBufferPointer(list)
        )
        try await check(response, of: "PUT \(name) (block list)", storing: name, metadata: metadata)
        return true
    }

    /// Whether an answer to Put Block says that the server does not serve the operation: a 400 whose
    /// `x-ms-error-code` says a query parameter is unsupported (`UnsupportedQueryParameter`, what this project's
    /// servers before block uploads answer to `comp=block`, as Azure does to a `comp` it does not know). Other 400s
    /// (a bad block ID, a wrong MD5) are failures of the upload, not of the operation.
    static func refusesBlocks(_ response: HTTPTransport.Response) -> Bool {
        guard response.status == 400, let code = response.headers.first(name: "x-ms-error-code")?.lowercased() else {
            return false
        }
        return code.hasPrefix("unsupported") && code.contains("queryparameter")
    }

    /// Base64 in a query: `+`, `/` and `=` percent-encoded.
    static func percentEncoded(_ base64: String) -> String {
        base64.replacingOccurrences(of: "+", with: "%2B").replacingOccurrences(of: "/", with: "%2F")
            .replacingOccurrences(of: "=", with: "%3D")
    }

    /// Returns when a put's answer says the blob is stored, and throws the matching error otherwise.
    ///
    /// - Parameters:
    ///   - response: The answer to a Put Blob, Put Block or Put Block List.
    ///   - what: The request, for messages.
    ///   - name: The blob being stored.
    ///   - metadata: What the blob is stored with: a 409 on a blob with the same checksum and chain is a retried put
    ///     whose first attempt landed.
    private func check(
        _ response: HTTPTransport.Response,
        of what: String,
        storing name: String,
        metadata: BlobMetadata
    ) async throws {
        switch response.status {
        case 201, 200: return
        case 409 where response.headers.first(name: "x-ms-error-code") == "BlobAlreadyExists",
            403 where response.headers.first(name: "x-ms-error-code") == "UnauthorizedBlobOverwrite":
            // A retried put whose first attempt landed stores the same checksum and chain: accept it.
            if try await holds(name, with: metadata) { return }
            throw BlobStoreError(.alreadyExists, "blob \(name) already exists")
        case 409 where response.headers.first(name: "x-ms-error-code") == "LeaseAlreadyPresent":
            throw BlobStoreError(.leaseHeld, "another writer is writing this buffer")
        case 409 where response.headers.first(name: "x-ms-error-code") == "BufferAlreadyWritten":
            throw BlobStoreError(
                .alreadyExists,
                "buffer cannot be overwritten: it already holds data (buffers are write-once)"
            )
        case 412 where response.headers.first(name: "x-ms-error-code") == "LeaseLost":
            throw BlobStoreError(
                .leaseLost,
                "the writer's lease on the buffer ran out (no renewal reached the server in time): the buffer is "
                    + "abandoned"
            )
        case 400 where response.headers.first(name: "x-ms-error-code") == "Md5Mismatch":
            throw TygerCoreError(.checksumMismatch, "failed to upload blob \(name): MD5 mismatch")
        default:
            throw failure(response, what)
        }
    }

    /// Asks the server to hold the GET up to `wait` (at most 10 s) while the blob is not there yet
    /// (`x-tyger-wait-ms`, a long poll; this project's data plane). A server that does not wait (Azure, an older
    /// one) answers at once, without `x-tyger-waited-ms`: then the caller waits before it looks again.
    public func awaitBlob(_ name: String, upTo wait: Duration) async throws -> BlobWait {
        try BlobName.validate(name)
        let milliseconds = max(1, min(10_000, Int(wait / .milliseconds(1))))
        let outcome = try await retrying({ try await download(name, waitMilliseconds: milliseconds) }) { outcome in
            if case .response(let response) = outcome { return response }
            return nil
        }
        switch outcome {
        case .blob(let blob): return .found(blob)
        case .response(let response):
            if response.status == 404 && response.headers.first(name: "x-ms-error-code") != "ContainerNotFound" {
                noteBufferState(response)
                return response.headers.first(name: "x-tyger-waited-ms") == nil ? .lookedOnce : .waited
            }
            throw failure(response, "GET \(name)")
        }
    }

    public func get(_ name: String) async throws -> StoredBlob? {
        try BlobName.validate(name)
        let outcome = try await retrying({ try await download(name) }) { outcome in
            if case .response(let response) = outcome { return response }
            return nil
        }
        switch outcome {
        case .blob(let blob): return blob
        case .response(let response):
            if response.status == 404 && response.headers.first(name: "x-ms-error-code") != "ContainerNotFound" {
                noteBufferState(response)
                return nil
            }
            throw failure(response, "GET \(name)")
        }
    }

    private enum Download {
        case blob(StoredBlob)
        case response(HTTPTransport.Response)
    }

    /// GETs a blob straight into memory sized by `Content-Length`: with ``DirectHTTPClient`` the socket is read
    /// into it; with AsyncHTTPClient (HTTPS) its pieces are copied into it.
    private func download(_ name: String, waitMilliseconds: Int? = nil) async throws -> Download {
        let target = blobURL(name)
        var headers = Self.baseHeaders()
        if let waitMilliseconds { headers.add(name: "x-tyger-wait-ms", value: String(waitMilliseconds)) }
        if DirectHTTPClient.serves(target) {
            let answer = try await DirectHTTPClient.shared.download(target, headers: headers)
            guard let received = answer.received else {
                return .response(
                    HTTPTransport.Response(status: answer.status, headers: answer.headers, body: answer.body)
                )
            }
            return .blob(
                StoredBlob(
                    adopting: received.memory,
                    count: received.count,
                    metadata: Self.metadata(from: answer.headers),
                    recycle: { DirectHTTPClient.shared.recycle($0) }
                )
            )
        }
        var request = HTTPClientRequest(url: try HTTPTransport.clientURL(blobURL(name)))
        request.method = .GET
        request.headers = headers
        let response: HTTPClientResponse
        do {
            response = try await transport.client.execute(request, timeout: .seconds(100))
        } catch {
            throw HTTPTransport.transportFailure(.GET, blobURL(name), error)
        }
        let status = Int(response.status.code)
        guard status == 200 || status == 206,
            let length = response.headers.first(name: "Content-Length").flatMap(Int.init)
        else {
            let body = try await response.body.collect(upTo: 1 << 20)
            return .response(HTTPTransport.Response(status: status, headers: response.headers, body: body))
        }
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(length, 1), alignment: 64)
        var filled = 0
        do {
            for try await chunk in response.body {
                guard filled + chunk.readableBytes <= length else {
                    throw TygerClientError(.transport, "GET \(name): more bytes than Content-Length")
                }
                chunk.withUnsafeReadableBytes {
                    UnsafeMutableRawBufferPointer(rebasing: memory[filled..<(filled + $0.count)]).copyMemory(from: $0)
                }
                filled += chunk.readableBytes
            }
            guard filled == length else { throw TygerClientError(.transport, "GET \(name): the body ended early") }
        } catch let error as TygerClientError {
            memory.deallocate()
            throw error
        } catch {
            memory.deallocate()
            throw TygerClientError(.transport, "GET \(name): \(HTTPTransport.describe(error).reason)")
        }
        return .blob(StoredBlob(adopting: memory, count: length, metadata: Self.metadata(from: response.headers)))
    }

    public func head(_ name: String) async throws -> BlobMetadata? {
        try await headBlob(name, needsLength: false)?.metadata
    }

    /// A `HEAD`: the metadata from the `x-ms-meta-*` headers, the length from `Content-Length`.
    public func inspect(_ name: String) async throws -> BlobStat? { try await headBlob(name, needsLength: true) }

    /// A `HEAD` of the blob; its length is -1 when the answer has none and `needsLength` is false.
    private func headBlob(_ name: String, needsLength: Bool) async throws -> BlobStat? {
        try BlobName.validate(name)
        let response = try await send(.HEAD, blob: name)
        switch response.status {
        case 200:
            let length = response.headers.first(name: "Content-Length").flatMap({ Int($0) }) ?? -1
            if needsLength, length < 0 {
                throw TygerClientError(.invalidResponse, "HEAD \(name): the answer has no valid Content-Length")
            }
            return BlobStat(metadata: Self.metadata(from: response.headers), storedLength: length)
        case 404 where response.headers.first(name: "x-ms-error-code") != "ContainerNotFound":
            noteBufferState(response)
            return nil
        default: throw failure(response, "HEAD \(name)")
        }
    }

    static func metadata(from headers: HTTPHeaders) -> BlobMetadata {
        var metadata = BlobMetadata(contentMD5: headers.first(name: "Content-MD5"))
        for (name, value) in headers {
            let lower = name.lowercased()
            if lower.hasPrefix("x-ms-meta-") { metadata.properties[String(lower.dropFirst(10))] = value }
        }
        return metadata
    }

    /// The server makes blobs durable before it stores `.bufferend`; nothing to do on the client.
    public func sync() async throws {}

    /// Remembers where the server says the write stands (a 404 for a blob that is not there yet).
    private func noteBufferState(_ response: HTTPTransport.Response) {
        let state = response.headers.first(name: "x-tyger-buffer-state")
        lastBufferState.withLock { $0 = state }
    }

    /// Takes a lease ID for this writer: the server grants the lease with `.bufferstart` (every put carries the
    /// ID), and a background task renews it until ``WriterLease/release()``.
    public func acquireWriterLease() async throws -> any WriterLease {
        // Before `.bufferstart` is stored there is no lease to renew yet: the server answers 412, ignored.
        renewedLease(UUID().uuidString.lowercased())
    }

    /// The lease `id`, named by every put from now on and renewed until it is released. A lease that ran out makes
    /// the next put fail with `LeaseLost`. Released after `.bufferend` this changes nothing; without it the server
    /// marks the buffer abandoned at once instead of after the lease runs out.
    private func renewedLease(_ id: String) -> any WriterLease {
        leaseId.withLock { $0 = id }
        return RenewedWriterLease(
            every: Self.leaseRenewalInterval,
            renew: { _ = try? await self.leaseAction("renew", id) },
            release: {
                _ = try? await self.leaseAction("release", id)
                self.leaseId.withLock { if $0 == id { $0 = nil } }
            }
        )
    }

    /// Takes the lease of an abandoned write at once (`x-tyger-lease-action: resume`; `.bufferstart` is stored
    /// already), then renews it as ``acquireWriterLease()``'s.
    ///
    /// - Throws: `BlobStoreError` `.leaseHeld` (a writer holds it), `.alreadyExists` (the write has ended).
    public func resumeWriterLease() async throws -> any WriterLease {
        let id = UUID().uuidString.lowercased()
        let response = try await retrying({ try await self.leaseAction("resume", id) }, response: { $0 })
        switch response.status {
        case 200: break
        case 409 where response.headers.first(name: "x-ms-error-code") == "LeaseAlreadyPresent":
            throw BlobStoreError(.leaseHeld, "another writer is writing this buffer")
        case 409 where response.headers.first(name: "x-ms-error-code") == "BufferAlreadyWritten":
            throw BlobStoreError(.alreadyExists, "the buffer's write has ended: there is nothing to resume")
        default: throw failure(response, "resume the writer lease")
        }
        return renewedLease(id)
    }

    /// `PUT …/.bufferstart?comp=lease` with `x-tyger-lease-action`.
    /// A renewal is retried and refreshed like the puts, so an idle writer keeps its lease past the first URL's
    /// expiry; a release is sent once (the writer is finishing, and the lease runs out anyway).
    fileprivate func leaseAction(_ action: String, _ id: String) async throws -> HTTPTransport.Response {
        var headers = Self.baseHeaders()
        headers.add(name: "x-tyger-lease-id", value: id)
        headers.add(name: "x-tyger-lease-action", value: action)
        let send = {
            var target = self.blobURL(BufferBlobNames.start)
            target.query = target.query.isEmpty ? "comp=lease" : target.query + "&comp=lease"
            return try await self.exchange(.PUT, target, headers: headers, body: nil)
        }
        return action == "renew" ? try await retrying(send, response: { $0 }) : try await send()
    }

    /// What the server said of the write on its last 404: `writing` → `.active`; `complete`, `failed`,
    /// `abandoned` → `.gone` (the reader then checks `.bufferend`); nothing (a lease-less writer, or a server
    /// without leases) → `.unknown`, so the reader keeps waiting as upstream's does.
    public func writerState() async throws -> WriterState {
        switch lastBufferState.withLock({ $0 }) {
        case "writing": .active
        case "complete", "failed", "abandoned": .gone
        default: .unknown
        }
    }
}

extension String {
    /// The string with leading zeros up to `width` characters.
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
