import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
public import TygerCore
public import TygerStorage

/// Where buffers live in an S3-compatible store: `s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=R`.
///
/// Requests are path-style (`http://HOST:PORT/BUCKET/KEY`), which every S3 implementation serves; the endpoint
/// defaults to AWS's regional one and the region to `us-east-1`.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    /// `http://host:port` or `https://host`, without a path.
    public var endpoint: String
    public var bucket: String
    /// The key prefix of every buffer: empty, or ending with `/`.
    public var prefix: String
    public var region: String

    public init(endpoint: String, bucket: String, prefix: String = "", region: String = "us-east-1") {
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.region = region
    }

    /// Parses `s3://BUCKET[/PREFIX][?endpoint=URL][&region=R]`.
    ///
    /// - Throws: `BlobStoreError` `.io` naming what is wrong.
    public init(parsing text: String) throws {
        func bad(_ why: String) -> BlobStoreError {
            BlobStoreError(.io, "invalid blob store '\(text)': \(why) (expected s3://BUCKET[/PREFIX]?endpoint=URL)")
        }
        guard text.hasPrefix("s3://"), let components = URLComponents(string: text) else {
            throw bad("not an s3:// URL")
        }
        guard let bucket = components.host, Self.isValidBucket(bucket) else {
            throw bad("the bucket name must be 3-63 lowercase letters, digits, dots and hyphens")
        }
        var region = "us-east-1"
        var endpoint: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "endpoint": endpoint = item.value
            case "region":
                guard let value = item.value, !value.isEmpty else { throw bad("empty region") }
                region = value
            default: throw bad("unknown parameter '\(item.name)'")
            }
        }
        let resolved = endpoint ?? "https://s3.\(region).amazonaws.com"
        guard let url = URLComponents(string: resolved), ["http", "https"].contains(url.scheme ?? ""),
            url.host?.isEmpty == false, url.path.isEmpty || url.path == "/", url.query == nil
        else { throw bad("the endpoint must be http://HOST[:PORT] or https://HOST[:PORT]") }
        let prefix = String(components.path.drop(while: { $0 == "/" }))
        if !prefix.isEmpty {
            do {
                try BlobName.validate(prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix)
            } catch {
                throw bad("the prefix '\(prefix)' is not a plain path")
            }
        }
        self.init(
            endpoint: resolved.hasSuffix("/") ? String(resolved.dropLast()) : resolved,
            bucket: bucket,
            prefix: prefix,
            region: region
        )
    }

    static func isValidBucket(_ name: String) -> Bool {
        (3...63).contains(name.utf8.count)
            && name.utf8.allSatisfy {
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")
            }
    }

    public var description: String {
        "s3://\(bucket)/\(prefix)?endpoint=\(endpoint)&region=\(region)"
    }

    /// `host[:port]` of the endpoint, as the `Host` header carries it.
    var hostHeader: String {
        let afterScheme = endpoint[endpoint.range(of: "://")!.upperBound...]
        return String(afterScheme)
    }
}

/// Sends signed requests to one S3 bucket (path-style), retrying what S3 says to retry.
///
/// Requests are signed with the client's own credentials, or, for a client holding only a Tyger access URL, with
/// URLs presigned by the server (``S3Presigner``): then the server decides what may be done, and the bytes still go
/// straight between this client and the store.
public final class S3Client: Sendable {
    public let location: S3Location
    private let authority: Authority
    private let transport: HTTPTransport
    private let retryPolicy: RetryPolicy

    /// Who signs the requests.
    private enum Authority: Sendable {
        case credentials(S3Signer)
        case server(S3Presigner)
    }

    public init(
        location: S3Location,
        credentials: S3Credentials,
        transport: HTTPTransport,
        retryPolicy: RetryPolicy = .default
    ) {
        self.location = location
        self.authority = .credentials(S3Signer(credentials: credentials, region: location.region))
        self.transport = transport
        self.retryPolicy = retryPolicy
    }

    /// A client whose requests are presigned by the server that issued `presigner`'s access URL, for the store it
    /// described (``S3Presigner/describe()``).
    public init(
        presigner: S3Presigner,
        description: S3AccessDescription,
        transport: HTTPTransport,
        retryPolicy: RetryPolicy = .default
    ) {
        self.location = description.location
        self.authority = .server(presigner)
        self.transport = transport
        self.retryPolicy = retryPolicy
        probed.withLock { $0 = Task { description.capabilities } }
    }

    /// The server that presigns this client's requests, if it has no credentials of its own.
    var presigner: S3Presigner? {
        if case .server(let presigner) = authority { return presigner }
        return nil
    }

    /// The path of `key` in the bucket (`/bucket/key`; `/bucket` for the bucket itself), not percent-encoded.
    func path(_ key: String?) -> String {
        "/" + location.bucket + (key.map { "/" + $0 } ?? "")
    }

    /// The signed URL and headers of one attempt of a request (signed anew for each attempt: the signature holds
    /// its time).
    private func signed(
        _ method: HTTPMethod,
        key: String?,
        query: [(String, String)],
        headers: [(String, String)]
    ) async throws -> (ServiceURL, HTTPHeaders) {
        let signer: S3Signer
        switch authority {
        case .credentials(let own): signer = own
        case .server(let presigner):
            precondition(query.isEmpty, "presigned requests carry no query of their own")
            let url = try await presigner.url(method: method.rawValue, key: key ?? "", headers: headers)
            return (url, HTTPHeaders(headers))
        }
        let request = self.request(method.rawValue, key: key, query: query, headers: headers)
        var all = HTTPHeaders(headers)
        all.add(contentsOf: signer.headers(for: request))
        let url = url(of: request) + (query.isEmpty ? "" : "?" + S3Signer.canonicalQuery(query))
        return (try ServiceURL(url), all)
    }

    /// The request to sign for `method` on `key` (`nil`: the bucket).
    private func request(
        _ method: String,
        key: String?,
        query: [(String, String)] = [],
        headers: [(String, String)]
    ) -> S3Signer.Request {
        S3Signer.Request(method: method, host: location.hostHeader, path: path(key), query: query, headers: headers)
    }

    /// The URL of `request`'s object, without a query.
    private func url(of request: S3Signer.Request) -> String {
        location.endpoint + S3Signer.encode(request.path, keepingSlashes: true)
    }

    /// A presigned URL for one request (``S3Signer/presignedQuery(for:expires:date:)``), for a client that has no
    /// credentials of its own: it must send exactly `headers`.
    ///
    /// - Parameter key: The object's key; `nil` for the bucket.
    /// - Precondition: This client signs with credentials.
    public func presignedURL(method: String, key: String?, headers: [(String, String)], expires: Int) -> String {
        guard case .credentials(let signer) = authority else {
            preconditionFailure("a client without credentials cannot presign")
        }
        let request = self.request(method, key: key, headers: headers)
        return url(of: request) + "?" + signer.presignedQuery(for: request, expires: expires)
    }

    /// Every key under `prefix`, through ListObjectsV2 (a page of up to 1000 keys per request).
    public func keys(under prefix: String) async throws -> [String] {
        var keys: [String] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let response = try await send(.GET, key: nil, query: query)
            guard response.status == 200 else { throw failure(response, "LIST \(prefix)") }
            keys += Self.elements("Key", of: response.text).map(Self.xmlUnescaped)
            token =
                Self.element("IsTruncated", of: response) == "true"
                ? Self.element("NextContinuationToken", of: response).map(Self.xmlUnescaped) : nil
        } while token != nil
        return keys
    }

    /// Removes `key`; a key that does not exist is not an error (S3 answers 204 either way).
    public func delete(_ key: String) async throws {
        let response = try await send(.DELETE, key: key)
        guard [200, 204, 404].contains(response.status) else { throw failure(response, "DELETE \(key)") }
    }

    /// Runs `attempt` again after 500 and 503 (`status` of its result) and after transport errors, waiting as
    /// ``RetryPolicy`` says; and once after a 403 when the server presigns (a URL that expired on its way: the
    /// attempt presigns `method` on `key` again).
    private func retrying<R>(
        _ method: HTTPMethod,
        _ key: String?,
        _ attempt: () async throws -> R,
        status: (R) -> Int
    ) async throws -> R {
        var attempts = 1
        var presignedAgain = false
        while true {
            do {
                let result = try await attempt()
                let code = status(result)
                if code == 403, !presignedAgain, case .server(let presigner) = authority {
                    presigner.forget(method: method.rawValue, key: key ?? "")
                    presignedAgain = true
                    continue
                }
                if code == 500 || code == 503, attempts < retryPolicy.maxAttempts {
                    try await Task.sleep(for: retryPolicy.delay(attempt: attempts, headers: nil))
                    attempts += 1
                    continue
                }
                return result
            } catch let error as TygerClientError where error.code == .transport && attempts < retryPolicy.maxAttempts {
                try await Task.sleep(for: retryPolicy.delay(attempt: attempts, headers: nil))
                attempts += 1
            }
        }
    }

    /// Sends one signed request (retried after 500, 503 and transport errors) and collects its answer. Plain HTTP
    /// goes through ``DirectHTTPClient`` (the body sent from where it is), HTTPS through AsyncHTTPClient.
    func send(
        _ method: HTTPMethod,
        key: String?,
        query: [(String, String)] = [],
        headers: [(String, String)] = [],
        body: UnsafeRawBufferPointer? = nil,
        maxBody: Int = 300 << 20
    ) async throws -> HTTPTransport.Response {
        try await retrying(method, key) {
            let (url, all) = try await signed(method, key: key, query: query, headers: headers)
            if DirectHTTPClient.serves(url) {
                return try await DirectHTTPClient.shared.send(method, url, headers: all, body: body, maxBody: maxBody)
            }
            return try await transport.send(
                method,
                url,
                headers: all,
                body: body.map { ByteBuffer(bytes: $0) },
                maxBody: maxBody
            )
        } status: {
            $0.status
        }
    }

    /// What a GET gave: the object in memory of its own, or an answer that is not the object.
    enum Download {
        case object(StoredBlob)
        case answer(HTTPTransport.Response)
    }

    /// GETs `key` into memory sized by its `Content-Length` (with ``DirectHTTPClient``, straight from the socket);
    /// `metadata` reads the blob's metadata from the answer's headers.
    func download(_ key: String, metadata: (HTTPHeaders) -> BlobMetadata) async throws -> Download {
        try await retrying(.GET, key) {
            let (url, headers) = try await signed(.GET, key: key, query: [], headers: [])
            if DirectHTTPClient.serves(url) {
                let answer = try await DirectHTTPClient.shared.download(url, headers: headers)
                guard answer.status == 200, let received = answer.received else {
                    return Download.answer(
                        HTTPTransport.Response(status: answer.status, headers: answer.headers, body: answer.body)
                    )
                }
                return .object(
                    StoredBlob(
                        adopting: received.memory,
                        count: received.count,
                        metadata: metadata(answer.headers),
                        recycle: { DirectHTTPClient.shared.recycle($0) }
                    )
                )
            }
            let response = try await transport.send(.GET, url, headers: headers)
            guard response.status == 200 else { return .answer(response) }
            return response.body.withUnsafeReadableBytes {
                .object(StoredBlob(copying: $0, metadata: metadata(response.headers)))
            }
        } status: { outcome in
            if case .answer(let response) = outcome { return response.status }
            return 200
        }
    }

    /// What the store does with the headers that keep blobs write-once and whole.
    public struct Capabilities: Sendable, Equatable {
        /// It refuses a `PUT` with `If-None-Match: *` of a key that exists (412): SeaweedFS, AWS since 2024. Not
        /// rclone's `serve s3`.
        public var conditionalCreate: Bool
        /// It refuses a `PUT` whose `x-amz-checksum-crc32c` does not match the body.
        public var checksCRC32C: Bool
    }

    private let probed = Mutex<Task<Capabilities, any Error>?>(nil)

    /// The store's ``Capabilities``, learned once per client by writing two small objects under the prefix
    /// (`PREFIX.tyger-probe-…`, removed afterwards).
    public func capabilities() async throws -> Capabilities {
        let task = probed.withLock { task in
            if let task { return task }
            let made = Task { try await probe() }
            task = made
            return made
        }
        do {
            return try await task.value
        } catch {
            probed.withLock { $0 = nil }  // the next caller probes again
            throw error
        }
    }

    private func probe() async throws -> Capabilities {
        let key = location.prefix + ".tyger-probe-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 5, alignment: 1)
        memory.copyBytes(from: Array("tyger".utf8))
        let body = UnsafeRawBufferPointer(memory)
        defer {
            memory.deallocate()
            Task { [self] in
                _ = try? await send(.DELETE, key: key)
                _ = try? await send(.DELETE, key: key + "-crc")
            }
        }
        func put(_ key: String, _ headers: [(String, String)]) async throws -> HTTPTransport.Response {
            try await send(
                .PUT,
                key: key,
                headers: headers + [("Content-Type", "application/octet-stream")],
                body: body
            )
        }
        let first = try await put(key, [("If-None-Match", "*")])
        guard first.status == 200 else { throw failure(first, "PUT \(key)") }
        let second = try await put(key, [("If-None-Match", "*")])
        guard second.status == 200 || second.status == 412 else { throw failure(second, "PUT \(key)") }
        // A CRC32C that is not the body's.
        let wrong = Checksums.crc32c(body, seed: 0) &+ 1
        let wrongText = Base64.encode(withUnsafeBytes(of: wrong.bigEndian) { Array($0) })
        let wrongCRC = try await put(key + "-crc", [("x-amz-checksum-crc32c", wrongText)])
        return Capabilities(conditionalCreate: second.status == 412, checksCRC32C: wrongCRC.status == 400)
    }

    /// Creates the bucket; one that exists and is this account's already is fine.
    ///
    /// - Throws: `BlobStoreError` `.io` when the store refuses.
    public func createBucket() async throws {
        let response = try await send(.PUT, key: nil)
        if response.status == 200 || Self.errorCode(response) == "BucketAlreadyOwnedByYou" { return }
        // Some stores (rclone's) say BucketAlreadyExists of their own buckets too: one that we can reach is ours.
        if Self.errorCode(response) == "BucketAlreadyExists", try await send(.HEAD, key: nil).status == 200 { return }
        throw failure(response, "PUT bucket \(location.bucket)")
    }

    /// Checks that the bucket exists and takes the credentials (some stores make a missing bucket on the first
    /// write into it: a mistyped name would go unnoticed).
    ///
    /// - Throws: `BlobStoreError` `.io` naming the bucket and the endpoint.
    public func requireBucket() async throws {
        let response = try await send(.HEAD, key: nil)
        switch response.status {
        case 200: return
        case 404:
            throw BlobStoreError(.io, "the bucket '\(location.bucket)' does not exist at \(location.endpoint)")
        default: throw failure(response, "HEAD bucket \(location.bucket)")
        }
    }

    /// S3's error code (`NoSuchKey`, `PreconditionFailed`, …) from an error answer's XML body.
    static func errorCode(_ response: HTTPTransport.Response) -> String? { element("Code", of: response) }

    /// The text of the first `<name>…</name>` of an answer's XML body.
    private static func element(_ name: String, of response: HTTPTransport.Response) -> String? {
        elements(name, of: response.text, limit: 1).first
    }

    /// The texts of the `<name>…</name>` elements of an XML body, as written (not unescaped).
    private static func elements(_ name: String, of text: String, limit: Int = .max) -> [String] {
        var found: [String] = []
        var rest = text[...]
        while found.count < limit, let start = rest.range(of: "<\(name)>"),
            let end = rest.range(of: "</\(name)>", range: start.upperBound..<rest.endIndex)
        {
            found.append(String(rest[start.upperBound..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        return found
    }

    /// XML text with its five predefined entities replaced.
    static func xmlUnescaped(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The error for an answer the caller did not expect: the store's code and message, one line.
    func failure(_ response: HTTPTransport.Response, _ what: String) -> BlobStoreError {
        let errorCode = Self.errorCode(response)
        let code = errorCode.map { " \($0)" } ?? ""
        let message = Self.element("Message", of: response).map { ": " + $0 } ?? ""
        if response.status == 403 {
            return BlobStoreError(
                .io,
                "\(what): the S3 store at \(location.endpoint) refused the credentials (403\(code)\(message))"
            )
        }
        if errorCode == "NoSuchBucket" {
            return BlobStoreError(
                .io,
                "\(what): the bucket '\(location.bucket)' does not exist at \(location.endpoint)"
            )
        }
        return BlobStoreError(.io, "\(what): the S3 store answered \(response.status)\(code)\(message)")
    }
}

/// The blobs of one buffer in an S3-compatible store, under `PREFIX/<buffer id>/`.
///
/// - The container is an empty marker object, `PREFIX/<id>/:buffer` (a key no blob name can take; not `PREFIX/<id>/`,
///   which a store on a file system takes for a directory).
/// - Blobs are write-once through `PUT` with `If-None-Match: *` (412 when the name is taken; on a store that ignores
///   it, the name is looked up first); each carries a checksum the store verifies (``checksumHeader``), and its
///   metadata as `x-amz-meta-*` (the Content-MD5 the blob was written with as `x-amz-meta-tyger-content-md5`).
/// - `sync` has nothing to do: a `PUT` is durable when the store answers it.
/// - The writer lease, for a client with credentials of its own, is an object created write-once
///   (`PREFIX/<id>/:writer`); releasing it writes `PREFIX/<id>/:released`, then removes the lease. S3 has no expiring
///   locks: a writer that dies keeps its lease, and readers wait for it as upstream's do. For a client whose requests
///   a server presigns, the lease is a record of the server's database, which runs out (``S3Presigner/lease(_:id:)``).
public final class S3BlobStore: BlobStore {
    public let client: S3Client
    public let container: String
    private let containerKnown = Mutex(false)

    /// The prefix of the buffer's objects.
    private var containerKey: String { client.location.prefix + container + "/" }
    /// The buffer's marker object (not `PREFIX/ID/`: a store on a file system takes that for a directory).
    private var markerKey: String { containerKey + ":buffer" }
    private var leaseKey: String { containerKey + ":writer" }
    private var releasedKey: String { containerKey + ":released" }

    public init(client: S3Client, container: String) {
        self.client = client
        self.container = container
    }

    public var location: String { "s3://\(client.location.bucket)/\(containerKey) at \(client.location.endpoint)" }

    public func containerExists() async throws -> Bool {
        if containerKnown.withLock({ $0 }) { return true }
        let response = try await client.send(.HEAD, key: markerKey)
        switch response.status {
        case 200:
            containerKnown.withLock { $0 = true }
            return true
        case 404:
            // A HEAD answers without a body: ask whether the bucket is the one missing.
            try await client.requireBucket()
            return false
        default: throw client.failure(response, "HEAD \(markerKey)")
        }
    }

    public func createContainer() async throws {
        let response = try await client.send(.PUT, key: markerKey)
        guard response.status == 200 else { throw client.failure(response, "PUT \(markerKey)") }
        containerKnown.withLock { $0 = true }
    }

    private func requireContainer() async throws {
        if try await !containerExists() {
            throw BlobStoreError(.containerNotFound, "the buffer does not exist (no \(location))")
        }
    }

    public func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws {
        try BlobName.validate(name)
        try await requireContainer()
        let status = try await create(containerKey + name, bytes: bytes, metadata: metadata)
        if status == 412 {
            throw BlobStoreError(.alreadyExists, "blob \(name) of buffer \(container) already exists")
        }
    }

    /// PUTs `key` write-once. Returns 200, or 412 when the key exists; throws on anything else.
    ///
    /// On a store that ignores `If-None-Match` (``S3Client/Capabilities``) a HEAD comes first: a second write of
    /// a key is refused, but two writes racing between the HEAD and the PUT both succeed and the last one stays.
    private func create(_ key: String, bytes: UnsafeRawBufferPointer?, metadata: BlobMetadata) async throws -> Int {
        let capabilities = try await client.capabilities()
        if !capabilities.conditionalCreate, try await exists(key) { return 412 }
        var headers: [(String, String)] = [
            ("If-None-Match", "*"),
            ("Content-Type", "application/octet-stream"),
            Self.checksumHeader(
                bytes ?? UnsafeRawBufferPointer(start: nil, count: 0),
                metadata,
                crc32c: capabilities.checksCRC32C
            ),
        ]
        if let md5 = metadata.contentMD5 { headers.append(("x-amz-meta-tyger-content-md5", md5)) }
        for (k, v) in metadata.properties.sorted(by: { $0.key < $1.key }) { headers.append(("x-amz-meta-\(k)", v)) }
        let response = try await client.send(.PUT, key: key, headers: headers, body: bytes)
        switch response.status {
        case 200: return 200
        case 412: return 412
        // AWS answers a conditional PUT that races another one of the same key with 409: the other one wins.
        case 409 where S3Client.errorCode(response) == "ConditionalRequestConflict": return 412
        case 400 where ["BadDigest", "InvalidDigest"].contains(S3Client.errorCode(response) ?? ""):
            throw BlobStoreError(.corrupt, "PUT \(key): the store found that the bytes do not match their checksum")
        default: throw client.failure(response, "PUT \(key)")
        }
    }

    /// The checksum the store verifies before it stores the object: the CRC32C the native format computed
    /// (`x-amz-checksum-crc32c`) where the store checks it, else the blob's MD5 (the 0.3.0 format's `Content-MD5`),
    /// else an MD5 computed here.
    static func checksumHeader(
        _ bytes: UnsafeRawBufferPointer,
        _ metadata: BlobMetadata,
        crc32c storeChecksCRC: Bool
    ) -> (String, String) {
        if storeChecksCRC, let hex = metadata.properties[BlobMetadata.Key.crc32c], hex.utf8.count == 8,
            let crc = UInt32(hex, radix: 16)
        {
            return ("x-amz-checksum-crc32c", Base64.encode(withUnsafeBytes(of: crc.bigEndian) { Array($0) }))
        }
        if let md5 = metadata.contentMD5, md5.utf8.count == 24, Data(base64Encoded: md5)?.count == 16 {
            return ("Content-MD5", md5)
        }
        return ("Content-MD5", Base64.encode(Insecure.MD5.hash(data: bytes)))
    }

    public func get(_ name: String) async throws -> StoredBlob? {
        try BlobName.validate(name)
        switch try await client.download(containerKey + name, metadata: Self.metadata(from:)) {
        case .object(let blob): return blob
        case .answer(let response) where response.status == 404:
            try await requireContainer()
            return nil
        case .answer(let response): throw client.failure(response, "GET \(containerKey + name)")
        }
    }

    public func head(_ name: String) async throws -> BlobMetadata? {
        try await headBlob(name, needsLength: false)?.metadata
    }

    /// A `HEAD`: the metadata from the `x-amz-meta-*` headers, the length from `Content-Length`.
    public func inspect(_ name: String) async throws -> BlobStat? { try await headBlob(name, needsLength: true) }

    /// A `HEAD` of the blob; its length is -1 when the answer has none and `needsLength` is false.
    private func headBlob(_ name: String, needsLength: Bool) async throws -> BlobStat? {
        try BlobName.validate(name)
        let response = try await client.send(.HEAD, key: containerKey + name)
        switch response.status {
        case 200:
            let length = response.headers.first(name: "Content-Length").flatMap({ Int($0) }) ?? -1
            if needsLength, length < 0 {
                throw TygerClientError(.invalidResponse, "HEAD \(name): the answer has no valid Content-Length")
            }
            return BlobStat(metadata: Self.metadata(from: response.headers), storedLength: length)
        case 404: return nil
        default: throw client.failure(response, "HEAD \(containerKey + name)")
        }
    }

    static func metadata(from headers: HTTPHeaders) -> BlobMetadata {
        var metadata = BlobMetadata()
        for (name, value) in headers {
            let lower = name.lowercased()
            guard lower.hasPrefix("x-amz-meta-") else { continue }
            let key = String(lower.dropFirst("x-amz-meta-".count))
            if key == "tyger-content-md5" {
                metadata.contentMD5 = value
            } else {
                metadata.properties[key] = value
            }
        }
        return metadata
    }

    public func sync() async throws {}

    public func acquireWriterLease() async throws -> any WriterLease { try await takeLease(resuming: false) }

    /// Behind a server, the server's `resume` of an abandoned write; with credentials of its own, the lease object
    /// taken again (its writer removed it on release; a writer that died keeps it, and the buffer cannot be resumed
    /// until the object `PREFIX/<id>/:writer` is removed by hand).
    public func resumeWriterLease() async throws -> any WriterLease { try await takeLease(resuming: true) }

    private func takeLease(resuming: Bool) async throws -> any WriterLease {
        try await requireContainer()
        if let presigner = client.presigner {
            let id = UUID().uuidString.lowercased()
            try await presigner.lease(resuming ? "resume" : "acquire", id: id)
            // Kept in the server's database: a writer that dies loses it 8 s after its last renewal, and its readers
            // stop waiting. A lease that ran out makes the next presigned write fail with `leaseLost`.
            return RenewedWriterLease(
                every: HTTPBlobStore.leaseRenewalInterval,
                renew: { _ = try? await presigner.lease("renew", id: id) },
                release: { _ = try? await presigner.lease("release", id: id) }
            )
        }
        if try await create(leaseKey, bytes: nil, metadata: BlobMetadata()) == 412 {
            throw BlobStoreError(.leaseHeld, "another writer is writing buffer \(container)")
        }
        return Lease(store: self)
    }

    public func writerState() async throws -> WriterState {
        if let presigner = client.presigner {
            switch try await presigner.writeState() {
            case nil: return .notStarted
            case "writing": return .active
            default: return .gone  // complete, failed, abandoned: the reader looks for `.bufferend`
            }
        }
        // The released marker is written before the lease goes: a writer between the two is still active.
        if try await exists(leaseKey) { return .active }
        return try await exists(releasedKey) ? .gone : .notStarted
    }

    private func exists(_ key: String) async throws -> Bool {
        let response = try await client.send(.HEAD, key: key)
        switch response.status {
        case 200: return true
        case 404: return false
        default: throw client.failure(response, "HEAD \(key)")
        }
    }

    private final class Lease: WriterLease {
        let store: S3BlobStore
        let released = Mutex(false)
        init(store: S3BlobStore) { self.store = store }

        func release() async {
            guard
                released.withLock({ done in
                    defer { done = true }
                    return !done
                })
            else { return }
            _ = try? await store.client.send(.PUT, key: store.releasedKey, headers: [("If-None-Match", "*")])
            _ = try? await store.client.send(.DELETE, key: store.leaseKey)
        }
    }
}
