public import TygerModel

/// The storage side of buffers: one container per buffer, and signed access URLs to it.
///
/// The server implements this over its data plane (local blob store and signed URLs); tests use
/// ``InMemoryBufferStorageProvider``. Methods may throw any error: ``BufferManager`` wraps it as
/// ``TygerControlPlaneError/Code/storageFailure`` (HTTP 500, details only in the log).
public protocol BufferStorageProvider: Sendable {
    /// Creates the container of a new buffer.
    ///
    /// - Parameters:
    ///   - id: The buffer ID (26 lowercase base32 characters).
    ///   - location: The buffer's location: the server's own (`local`) or a data plane's name.
    /// - Throws: When the container cannot be created.
    func createContainer(id: String, location: String) async throws

    /// Deletes a buffer's container and all its blobs. Deleting a missing container is not an error.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - location: The buffer's location (its record's), which says where the container is.
    /// - Throws: When the container exists but cannot be deleted.
    func deleteContainer(id: String, location: String) async throws

    /// Whether a buffer's container exists.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - location: The buffer's location.
    /// - Returns: `true` when the container exists.
    /// - Throws: When existence cannot be determined.
    func containerExists(id: String, location: String) async throws -> Bool

    /// Creates a signed URL for a buffer's container.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - location: The buffer's location: the URL leads to the data plane that holds it.
    ///   - writeable: Whether the URL grants create (write) in addition to read.
    ///   - ttl: How long the URL is valid; ``BufferManager`` has already checked it is within
    ///     ``BufferManager/Configuration/accessTTLRange``.
    ///   - preferTCP: Whether the caller wants a TCP URL rather than a Unix-socket one.
    /// - Returns: The absolute URL string, for example
    ///   `http+unix:///opt/tyger/data-plane/tyger.data.sock:/containers/<id>?...`.
    /// - Throws: When the URL cannot be signed.
    func accessURL(id: String, location: String, writeable: Bool, ttl: Duration, preferTCP: Bool) async throws -> String

    /// The storage accounts, as listed by `GET /buffers/storage-accounts`.
    ///
    /// - Returns: The accounts; one `local` account for local installations.
    /// - Throws: When the accounts cannot be listed.
    func storageAccounts() async throws -> [StorageAccount]
}
