public import TygerClient
import TygerStorage

/// The buffers of a server whose blobs live in an S3-compatible store (`tyger-server run --blob-store s3://…`):
/// buffer `<id>` is the ``TygerClient/S3BlobStore`` under `PREFIX/<id>/`, its `:buffer` marker made when the control
/// plane creates the buffer.
///
/// The server signs with the store's credentials; clients get access URLs to ``S3AccessController``, which presigns
/// the requests their permissions allow, so their bytes go straight to the store.
public struct S3Buffers: Sendable {
    public let client: S3Client

    public init(client: S3Client) { self.client = client }

    /// The blob store of buffer `id`.
    public func store(for id: String) -> S3BlobStore { S3BlobStore(client: client, container: id) }

    /// The key prefix of buffer `id`'s objects.
    func keyPrefix(of id: String) -> String { client.location.prefix + id + "/" }

    /// Checks at start that the bucket is there and the credentials work, and learns what the store checks.
    ///
    /// - Throws: `BlobStoreError` `.io` naming the bucket, the endpoint and what the store answered.
    public func check() async throws -> S3Client.Capabilities {
        try await client.requireBucket()
        return try await client.capabilities()
    }

    public func create(_ id: String) async throws { try await store(for: id).createContainer() }

    public func exists(_ id: String) async throws -> Bool { try await store(for: id).containerExists() }

    /// Removes every object of buffer `id`, the marker last (a buffer whose removal fails half-way still exists and
    /// is removed again by the next purge).
    public func delete(_ id: String) async throws {
        let prefix = keyPrefix(of: id)
        let keys = try await client.keys(under: prefix)
        let marker = prefix + ":buffer"
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = keys.filter { $0 != marker }[...]
            for _ in 0..<8 {
                guard let key = pending.popFirst() else { break }
                group.addTask { try await client.delete(key) }
            }
            while try await group.next() != nil {
                if let key = pending.popFirst() { group.addTask { try await client.delete(key) } }
            }
        }
        try await client.delete(marker)
    }
}
