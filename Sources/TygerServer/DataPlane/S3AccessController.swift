import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TygerClient
import TygerControlPlane
import TygerCore
import TygerModel
import TygerStorage

/// Access to buffers kept in an S3-compatible store: an access URL is `…/s3/<id>?<signed query>`, and the client
/// asks it for presigned URLs of the store's objects, within its permissions.
///
/// | Method | Path | Permission | Answer |
/// |---|---|---|---|
/// | GET | `/s3/{id}` | `r` | 200 ``TygerClient/S3AccessDescription``: endpoint, bucket, prefix, what the store checks |
/// | POST | `/s3/{id}` | `r`; `c` for writes | 200 ``TygerClient/S3PresignResponse`` for an ``TygerClient/S3PresignRequest`` of at most ``maxBatch`` requests |
/// | GET | `/s3/{id}/lease` | `r` | 200 ``TygerClient/S3LeaseAnswer``: where the write stands (``S3WriterLeases``) |
/// | PUT | `/s3/{id}/lease` | `c` | 200 ``TygerClient/S3LeaseAnswer``: `x-tyger-lease-action` `acquire`, `renew`, `release` or `resume` (an abandoned write) of the writer lease `x-tyger-lease-id`; 409 `LeaseAlreadyPresent`, `BufferAlreadyWritten`; 412 `LeaseLost` |
///
/// What may be presigned, all under the buffer's prefix `PREFIX/<id>/`:
/// - `GET`, `HEAD` of its blobs and markers (`:buffer`, and the `:writer`, `:released` of writers without a server),
///   and `HEAD` of the bucket (a client telling a missing buffer from a missing bucket): read permission;
/// - `PUT` of a blob, always with `If-None-Match: *` (write-once, on stores that honour it): write permission, and
///   the live writer lease's ID in the request (``S3WriterLeases/verify(_:leaseId:)``). Never a marker: buffers are
///   created and deleted by the control plane, and the writer lease is the server's.
/// - Headers: `If-None-Match`, `Content-Type`, `Content-MD5`, `x-amz-checksum-crc32c` and `x-amz-meta-*` on a `PUT`;
///   none on the others. The client must send exactly those it asked for.
///
/// A presigned URL lasts as long as the access URL has left, at most ``maxPresignedLifetime`` (shorter when a test sets
/// `TygerServerConfiguration.maxPresignedLifetime`); an access URL with less than ``minPresignedLifetime`` left is
/// refused as expired (403 `AuthenticationFailed`).
struct S3AccessController: Sendable {
    let buffers: S3Buffers
    /// The writer leases, in the server's database.
    let leases: S3WriterLeases
    let validator: SignedURLValidator
    let clock: WallClock
    /// The longest a presigned URL lasts, in seconds: ``maxPresignedLifetime`` but in tests of expiry.
    let maxLifetime: Int64

    /// The path prefix of these routes, for the authentication middleware.
    static let pathPrefix = "/s3/"
    /// The most requests one presign request may hold.
    static let maxBatch = 256
    /// The longest a presigned URL lasts, in seconds.
    static let maxPresignedLifetime: Int64 = 900
    /// The shortest: an access URL with less time left is refused as expired.
    static let minPresignedLifetime: Int64 = 5

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/s3/:id") { request, context in try await describe(request, context) }
        router.post("/s3/:id") { request, context in try await presign(request, context) }
        router.get("/s3/:id/lease") { request, context in try await leaseState(request, context) }
        router.put("/s3/:id/lease") { request, context in try await leaseAction(request, context) }
    }

    private func authorize(
        _ request: Request,
        _ context: AppRequestContext
    ) throws -> (id: String, grant: SignedURLValidator.Grant) {
        let id = try context.parameters.require("id")
        guard ContainerName.isValid(id) else { throw APIError.invalidContainerName }
        let query = try QueryParameters(request.uri.query).signedURLParameters()
        let grant = try validator.validate(query: query, containerId: id, required: .readBlob)
        context.caller = .signedURL(containerId: id)
        return (id, grant)
    }

    private func describe(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let (id, _) = try authorize(request, context)
        let description = S3AccessDescription(
            location: buffers.client.location,
            buffer: id,
            capabilities: try await buffers.client.capabilities()  // learned once, at start
        )
        return try Self.json(description)
    }

    private func presign(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let (id, grant) = try authorize(request, context)
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        guard let batch = try? JSONDecoder().decode(S3PresignRequest.self, from: Data(body.readableBytesView)) else {
            throw APIError.invalidInput(
                "The body is not a presign request: {\"requests\": [{\"method\", \"key\", \"headers\"}]}."
            )
        }
        guard (1...Self.maxBatch).contains(batch.requests.count) else {
            throw APIError.invalidInput("A presign request holds 1 to \(Self.maxBatch) requests.")
        }
        let remaining = grant.expiresAt - clock.seconds()
        // A URL that would expire before its request reaches the store is not worth signing: the client gets a new
        // access URL instead (`buffer read/write ID` asks for one on AuthenticationFailed).
        let shortest = min(Self.minPresignedLifetime, maxLifetime)
        guard remaining >= shortest else {
            throw APIError.authenticationFailed("The access URL expires in less than \(shortest) s.")
        }
        let lifetime = min(remaining, maxLifetime)
        let prefix = buffers.keyPrefix(of: id)
        var checked: [[(String, String)]] = []
        for item in batch.requests {
            checked.append(try Self.check(item, prefix: prefix, permissions: grant.permissions))
        }
        if batch.requests.contains(where: { $0.method == "PUT" }) {
            try await leases.verify(id, leaseId: batch.leaseId)
        }
        var urls: [String] = []
        for (item, headers) in zip(batch.requests, checked) {
            urls.append(
                buffers.client.presignedURL(
                    method: item.method,
                    key: item.key.isEmpty ? nil : item.key,
                    headers: headers,
                    expires: Int(lifetime)
                )
            )
        }
        return try Self.json(S3PresignResponse(urls: urls, expiresIn: Int(lifetime)))
    }

    /// `GET /s3/{id}/lease`: where the buffer's write stands, for readers (``S3LeaseAnswer``, `state` absent when no
    /// writer took a lease).
    private func leaseState(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let (id, _) = try authorize(request, context)
        return try Self.json(S3LeaseAnswer(state: try await leases.state(id)?.rawValue))
    }

    /// `PUT /s3/{id}/lease` with `x-tyger-lease-id` and `x-tyger-lease-action`: `acquire` takes the writer lease
    /// (409 `LeaseAlreadyPresent` or `BufferAlreadyWritten`), `renew` extends it (412 `LeaseLost`), `release` ends it
    /// with what the store's `.bufferend` says, `resume` takes the lease of an abandoned write to continue it (409 as
    /// `acquire`). Write permission.
    private func leaseAction(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let (id, grant) = try authorize(request, context)
        guard grant.permissions.contains(.createBlob) else {
            throw APIError.authorizationPermissionMismatch("The access URL is read-only.")
        }
        guard let leaseId = request.headers[.xTygerLeaseID], (1...64).contains(leaseId.utf8.count) else {
            throw APIError.invalidHeaderValue("x-tyger-lease-id", "a lease ID of 1 to 64 characters is required")
        }
        let state: BufferWriteState
        switch request.headers[.xTygerLeaseAction] {
        case "acquire":
            try await leases.acquire(id, leaseId: leaseId)
            state = .writing
        case "renew":
            try await leases.renew(id, leaseId: leaseId)
            state = .writing
        case "resume":
            try await leases.resume(id, leaseId: leaseId)
            state = .writing
        case "release":
            state = try await leases.release(id, leaseId: leaseId)
        default:
            throw APIError.invalidHeaderValue("x-tyger-lease-action", "expected acquire, renew, release or resume")
        }
        return try Self.json(S3LeaseAnswer(state: state.rawValue))
    }

    /// Checks one request against the rules above and returns its headers, sorted.
    ///
    /// - Throws: 400 `InvalidInput` for what is never allowed, 403 `AuthorizationPermissionMismatch` for a write with
    ///   a read URL.
    static func check(
        _ item: S3PresignRequest.Item,
        prefix: String,
        permissions: Set<SignedURLPermission>
    ) throws -> [(String, String)] {
        func refuse(_ why: String) -> APIError {
            APIError.invalidInput("Cannot presign \(item.method) '\(item.key)': \(why).")
        }
        let headers = item.headers.map { ($0.key.lowercased(), $0.value) }.sorted { $0.0 < $1.0 }
        guard Set(headers.map(\.0)).count == headers.count else { throw refuse("a header is repeated") }
        let name: String
        if item.key.isEmpty {
            guard item.method == "HEAD" else { throw refuse("only HEAD is allowed on the bucket") }
            name = ""
        } else {
            guard item.key.hasPrefix(prefix) else { throw refuse("the key is not one of this buffer's") }
            name = String(item.key.dropFirst(prefix.count))
            let markers = [":buffer", ":writer", ":released"]
            guard markers.contains(name) || (try? BlobName.validate(name)) != nil else {
                throw refuse("not a blob name")
            }
        }
        let write: Bool
        switch item.method {
        case "GET", "HEAD":
            write = false
        case "PUT":
            guard name != ":buffer" else { throw refuse("buffers are created by the control plane") }
            guard !name.hasPrefix(":") else { throw refuse("the writer's lease is kept by the server (/lease)") }
            guard item.headers.first(where: { $0.key.lowercased() == "if-none-match" })?.value == "*" else {
                throw refuse("writes are write-once: If-None-Match: * is required")
            }
            write = true
        default:
            throw refuse("the method is not allowed")
        }
        for (header, _) in headers {
            let allowed =
                item.method == "PUT"
                && (["if-none-match", "content-type", "content-md5", "x-amz-checksum-crc32c"].contains(header)
                    || header.hasPrefix("x-amz-meta-"))
            guard allowed else { throw refuse("the header '\(header)' cannot be presigned") }
        }
        if write, !permissions.contains(.createBlob) {
            throw APIError.authorizationPermissionMismatch("The access URL is read-only.")
        }
        return headers
    }

    private static func json(_ value: some Encodable) throws -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(value)))
        )
    }
}
