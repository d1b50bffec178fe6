import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization
import TygerCore
import TygerStorage

/// What the server says of an S3 buffer behind an access URL (`GET /s3/<id>?<signed query>`): where its objects
/// are and what the store checks. Holds no secret.
public struct S3AccessDescription: Codable, Sendable, Equatable {
    public var endpoint: String
    public var region: String
    public var bucket: String
    /// The bucket's key prefix of every buffer: empty or ending with `/`.
    public var prefix: String
    public var buffer: String
    public var conditionalCreate: Bool
    public var checksCRC32C: Bool

    public init(location: S3Location, buffer: String, capabilities: S3Client.Capabilities) {
        endpoint = location.endpoint
        region = location.region
        bucket = location.bucket
        prefix = location.prefix
        self.buffer = buffer
        conditionalCreate = capabilities.conditionalCreate
        checksCRC32C = capabilities.checksCRC32C
    }

    public var location: S3Location { S3Location(endpoint: endpoint, bucket: bucket, prefix: prefix, region: region) }
    public var capabilities: S3Client.Capabilities {
        S3Client.Capabilities(conditionalCreate: conditionalCreate, checksCRC32C: checksCRC32C)
    }
}

/// A batch of requests to presign (`POST /s3/<id>?<signed query>`): each one object, one method, and the headers
/// the client will send with exactly these values.
public struct S3PresignRequest: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var method: String
        /// The object's key in the bucket; empty for the bucket itself.
        public var key: String
        public var headers: [String: String]

        public init(method: String, key: String, headers: [String: String] = [:]) {
            self.method = method
            self.key = key
            self.headers = headers
        }
    }

    public var requests: [Item]
    /// The writer's lease ID, required for writes while a writer holds the buffer's lease.
    public var leaseId: String?
    public init(requests: [Item], leaseId: String? = nil) {
        self.requests = requests
        self.leaseId = leaseId
    }
}

/// The answer of the writer-lease route (`GET` and `PUT /s3/<id>/lease`): where the buffer's write stands,
/// `writing`, `complete`, `failed` or `abandoned`; absent when no writer took a lease.
public struct S3LeaseAnswer: Codable, Sendable, Equatable {
    public var state: String?
    public init(state: String?) { self.state = state }
}

/// The presigned URLs of an ``S3PresignRequest``, in its order, valid for `expiresIn` seconds.
public struct S3PresignResponse: Codable, Sendable, Equatable {
    public var urls: [String]
    public var expiresIn: Int
    public init(urls: [String], expiresIn: Int) {
        self.urls = urls
        self.expiresIn = expiresIn
    }
}

/// Obtains presigned URLs for one S3 buffer from the Tyger server that issued its access URL, so a client without
/// the store's credentials reads and writes the buffer's objects directly: the server decides which requests are
/// allowed (the access URL's permissions), the bytes never pass through it.
///
/// Reads are presigned ahead in batches (the next blobs of the buffer) and kept until shortly before they expire;
/// a write is presigned on its own, since its URL signs its checksum and metadata headers.
public final class S3Presigner: Sendable {
    /// How many blob reads one presign request covers.
    static let readAhead: Int64 = 32
    /// A cached URL is used up to this long before it expires (a quarter of its lifetime for short-lived ones).
    static let expiryMargin: Duration = .seconds(30)

    private let accessURL: Mutex<ServiceURL>
    private let transport: HTTPTransport
    private let refreshURL: (@Sendable () async throws -> ServiceURL)?
    private let state = Mutex(State())
    private struct State {
        /// Signed reads by `METHOD key`, usable until `until`.
        var cache: [String: (url: ServiceURL, until: ContinuousClock.Instant)] = [:]
        /// Reads being signed by `METHOD key`: the request, and the key's place in it.
        var inFlight: [String: (task: Task<[ServiceURL], any Error>, index: Int)] = [:]
    }
    private let blobPrefix = Mutex<String?>(nil)
    /// The writer lease this client holds, named in its presigned writes.
    private let leaseId = Mutex<String?>(nil)

    /// Whether `url` is an S3 buffer's access URL (`…/s3/<id>?…`) rather than a data-plane container's.
    public static func isAccessURL(_ url: ServiceURL) -> Bool {
        url.path.hasPrefix("/s3/") && !url.path.dropFirst(4).contains("/")
    }

    /// - Parameters:
    ///   - accessURL: The buffer's access URL.
    ///   - refreshURL: Gets a new access URL when the server refuses this one (expired).
    public init(
        accessURL: ServiceURL,
        transport: HTTPTransport,
        refreshURL: (@Sendable () async throws -> ServiceURL)? = nil
    ) {
        self.accessURL = Mutex(accessURL)
        self.transport = transport
        self.refreshURL = refreshURL
    }

    /// Asks the server where the buffer is and what its store checks.
    public func describe() async throws -> S3AccessDescription {
        let response = try await exchange(.GET, body: nil)
        guard let description = try? JSONDecoder().decode(S3AccessDescription.self, from: Data(buffer: response.body))
        else { throw TygerClientError(.invalidResponse, "the server's description of the S3 buffer is not valid") }
        blobPrefix.withLock { $0 = description.prefix + description.buffer + "/" }
        return description
    }

    /// A presigned URL for `method` on `key` (empty: the bucket) sent with exactly `headers`.
    ///
    /// Reads are cached; one for a key that a request in flight covers waits for that request instead of sending
    /// another (parallel readers reach the end of a batch together), and reading blob `n` signs blob
    /// `n + readAhead / 2` onwards in the background, so readers seldom wait for a batch.
    func url(method: String, key: String, headers: [(String, String)]) async throws -> ServiceURL {
        guard headers.isEmpty && (method == "GET" || method == "HEAD") else {
            let item = S3PresignRequest.Item(method: method, key: key, headers: Dictionary(headers) { _, last in last })
            return try await presign([item], caching: false)[0]
        }
        let number = blobNumber(key)
        let now = ContinuousClock.now
        enum Found {
            case url(ServiceURL)
            case pending(Task<[ServiceURL], any Error>, Int)
            case none
        }
        let found: Found = state.withLock { state in
            if let hit = state.cache[Self.cacheKey(method, key)], hit.until > now { return .url(hit.url) }
            if let pending = state.inFlight[Self.cacheKey(method, key)] { return .pending(pending.task, pending.index) }
            return .none
        }
        switch found {
        case .url(let url):
            if let number { signAhead(method, from: number + Self.readAhead / 2, now: now) }
            return url
        case .pending(let task, let index):
            return try await task.value[index]
        case .none:
            let keys = [key] + (number.map { unsigned(method, from: $0 + 1, now: now) } ?? [])
            return try await batch(method, keys: keys).value[0]
        }
    }

    /// The number of the blob `key` names, if it is one of this buffer's blobs.
    private func blobNumber(_ key: String) -> Int64? {
        guard let prefix = blobPrefix.withLock({ $0 }), key.hasPrefix(prefix) else { return nil }
        return BlobPath.number(of: String(key.dropFirst(prefix.count)))
    }

    /// The keys of the blobs from `first` on, up to the end of a read-ahead window, that are neither cached nor
    /// being signed.
    private func unsigned(_ method: String, from first: Int64, now: ContinuousClock.Instant) -> [String] {
        guard let prefix = blobPrefix.withLock({ $0 }) else { return [] }
        let keys = (first..<first + Self.readAhead - 1).map { prefix + BlobPath.name(for: $0) }
        return state.withLock { state in
            keys.filter { key in
                state.inFlight[Self.cacheKey(method, key)] == nil
                    && (state.cache[Self.cacheKey(method, key)]?.until ?? now) <= now
            }
        }
    }

    /// Signs the window from `first` in the background when its first blob is not signed yet.
    private func signAhead(_ method: String, from first: Int64, now: ContinuousClock.Instant) {
        let keys = unsigned(method, from: first, now: now)
        guard let prefix = blobPrefix.withLock({ $0 }), keys.first == prefix + BlobPath.name(for: first) else { return }
        _ = batch(method, keys: keys)
    }

    /// Starts one presign request for reads of `keys`, registered as in flight until it ends.
    private func batch(_ method: String, keys: [String]) -> Task<[ServiceURL], any Error> {
        let items = keys.map { S3PresignRequest.Item(method: method, key: $0) }
        let task = Task { try await self.presign(items, caching: true) }
        state.withLock { state in
            for (index, key) in keys.enumerated() { state.inFlight[Self.cacheKey(method, key)] = (task, index) }
        }
        Task {
            _ = try? await task.value
            state.withLock { state in
                for key in keys where state.inFlight[Self.cacheKey(method, key)]?.task == task {
                    state.inFlight[Self.cacheKey(method, key)] = nil
                }
            }
        }
        return task
    }

    /// One presign request; the URLs of reads are cached.
    private func presign(_ items: [S3PresignRequest.Item], caching: Bool) async throws -> [ServiceURL] {
        let now = ContinuousClock.now
        let body = try JSONEncoder().encode(S3PresignRequest(requests: items, leaseId: leaseId.withLock { $0 }))
        let response: HTTPTransport.Response
        do {
            response = try await exchange(.POST, body: body)
        } catch let error as TygerClientError {
            throw Self.leaseError(error) ?? error
        }
        guard let answer = try? JSONDecoder().decode(S3PresignResponse.self, from: Data(buffer: response.body)),
            answer.urls.count == items.count,
            let urls = try? answer.urls.map({ try ServiceURL($0) })
        else { throw TygerClientError(.invalidResponse, "the server's presigned URLs are not valid") }
        if caching {
            let lifetime = Duration.seconds(answer.expiresIn)
            let until = now + lifetime - min(Self.expiryMargin, lifetime / 4)
            state.withLock { state in
                if state.cache.count > 4096 { state.cache.removeAll() }
                for (item, url) in zip(items, urls) { state.cache[Self.cacheKey(item.method, item.key)] = (url, until) }
            }
        }
        return urls
    }

    /// The key of `method` on `key` in the cache and the in-flight table.
    private static func cacheKey(_ method: String, _ key: String) -> String { method + " " + key }

    /// Drops the cached URL of `method` on `key` (the store refused it).
    func forget(method: String, key: String) {
        _ = state.withLock { $0.cache.removeValue(forKey: Self.cacheKey(method, key)) }
    }

    /// Takes, renews, releases or resumes (`action`: `acquire`, `renew`, `release`, `resume`) the buffer's writer lease `id`, kept in the server's database, and
    /// returns where the write stands. While it is held, presigned writes name it.
    ///
    /// - Throws: `BlobStoreError` `.leaseHeld` (another writer), `.alreadyExists` (the buffer was written),
    ///   `.leaseLost` (it ran out); `TygerClientError` otherwise.
    @discardableResult
    public func lease(_ action: String, id: String) async throws -> String? {
        if action == "acquire" || action == "resume" { leaseId.withLock { $0 = id } }
        let response: HTTPTransport.Response
        do {
            var headers = HTTPHeaders()
            headers.add(name: "x-tyger-lease-id", value: id)
            headers.add(name: "x-tyger-lease-action", value: action)
            response = try await exchange(.PUT, path: "/lease", headers: headers, body: nil)
        } catch let error as TygerClientError {
            if action == "acquire" || action == "resume" { leaseId.withLock { if $0 == id { $0 = nil } } }
            throw Self.leaseError(error) ?? error
        }
        if action == "release" { leaseId.withLock { if $0 == id { $0 = nil } } }
        return try Self.leaseAnswer(response).state
    }

    /// Where the buffer's write stands (`writing`, `complete`, `failed`, `abandoned`), or `nil` when no writer took
    /// a lease.
    public func writeState() async throws -> String? {
        try Self.leaseAnswer(try await exchange(.GET, path: "/lease", body: nil)).state
    }

    private static func leaseAnswer(_ response: HTTPTransport.Response) throws -> S3LeaseAnswer {
        guard let answer = try? JSONDecoder().decode(S3LeaseAnswer.self, from: Data(buffer: response.body)) else {
            throw TygerClientError(.invalidResponse, "the server's answer about the writer lease is not valid")
        }
        return answer
    }

    /// The blob-store error a refused lease or write stands for, by the server's error code.
    static func leaseError(_ error: TygerClientError) -> BlobStoreError? {
        switch error.errorCode {
        case "LeaseAlreadyPresent": BlobStoreError(.leaseHeld, "another writer is writing this buffer")
        case "BufferAlreadyWritten":
            BlobStoreError(
                .alreadyExists,
                "buffer cannot be overwritten: it already holds data (buffers are write-once)"
            )
        case "LeaseLost", "LeaseIdMissing":
            BlobStoreError(
                .leaseLost,
                "the writer's lease on the buffer ran out (no renewal reached the server in time): the buffer is "
                    + "abandoned"
            )
        default: nil
        }
    }

    /// One request to the access URL (to `path` below it); a refused URL (expired) is replaced through `refreshURL`
    /// once.
    private func exchange(
        _ method: HTTPMethod,
        path: String = "",
        headers extra: HTTPHeaders = [:],
        body: Data?
    ) async throws -> HTTPTransport.Response {
        var refreshed = false
        while true {
            var url = accessURL.withLock { $0 }
            url.path += path
            var headers = extra
            if body != nil { headers.add(name: "Content-Type", value: "application/json") }
            let response = try await transport.send(
                method,
                url,
                headers: headers,
                body: body.map { ByteBuffer(bytes: $0) },
                maxBody: 4 << 20
            )
            if response.status == 200 { return response }
            let code = response.headers.first(name: "x-ms-error-code")
            if response.status == 403, code == "AuthenticationFailed", !refreshed, let refreshURL {
                let fresh = try await refreshURL()
                accessURL.withLock { $0 = fresh }
                refreshed = true
                continue
            }
            var error = ControlPlaneClient.error(from: response)
            if response.status == 403 { error.code = .authentication }
            throw error
        }
    }
}
