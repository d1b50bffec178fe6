public import TygerCore

/// The blobs of one buffer (one container): where the data path puts and gets blobs.
///
/// Implementations: `InMemoryBlobStore` (tests, benchmarks), `FileBlobStore` (the embedded local store); an HTTP
/// data-plane client implements the same protocol. Blobs are write-once: a second `put` of a name fails with
/// `BlobStoreError.Code.alreadyExists` and leaves the first blob untouched. A blob is visible whole or not at all.
public protocol BlobStore: Sendable {
    /// Where the store is, for messages (a path or URL without secrets).
    var location: String { get }

    /// Whether the container exists.
    func containerExists() async throws -> Bool

    /// Creates the container if it does not exist.
    func createContainer() async throws

    /// Stores a blob.
    ///
    /// - Parameters:
    ///   - name: The blob name (`.bufferstart`, `00/000`, ...).
    ///   - bytes: The content; valid for the duration of the call.
    ///   - metadata: Content-MD5 and user metadata to keep with the blob.
    /// - Throws: `BlobStoreError` `.alreadyExists` if the name is taken, `.containerNotFound` if the container is
    ///   missing, `.invalidName` for names with `..`, absolute paths or odd characters, `.io` otherwise.
    func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws

    /// Fetches a blob.
    ///
    /// - Returns: The blob, or `nil` if it does not exist (yet).
    /// - Throws: `BlobStoreError` `.containerNotFound`, `.corrupt` when the stored form is damaged, `.io`.
    func get(_ name: String) async throws -> StoredBlob?

    /// Fetches a blob, waiting up to `wait` for it to appear when it is not there yet (see the default
    /// implementation).
    func awaitBlob(_ name: String, upTo wait: Duration) async throws -> BlobWait

    /// Fetches only a blob's metadata; `nil` if the blob does not exist.
    func head(_ name: String) async throws -> BlobMetadata?

    /// Fetches a blob's metadata and stored length without its bytes, where the store can (see the default
    /// implementation); `nil` if the blob does not exist. Resumed reads and writes learn a buffer's stored prefix so.
    func inspect(_ name: String) async throws -> BlobStat?

    /// Makes every blob stored so far durable (survives a power loss).
    func sync() async throws

    /// Takes the buffer's writer lease: held while one writer writes, released when it finishes or dies.
    ///
    /// - Throws: `BlobStoreError` `.leaseHeld` when another writer holds it.
    func acquireWriterLease() async throws -> any WriterLease

    /// Takes the writer lease of a buffer whose write was abandoned (its writer stopped without `.bufferend`), to
    /// continue it (`buffer write --resume`). The default takes it as ``acquireWriterLease()`` does, which is right
    /// for stores whose lease is free once its writer has gone (a `flock`, an object removed on release).
    ///
    /// - Throws: `BlobStoreError` `.leaseHeld` when a writer holds it; `.alreadyExists` when the write has ended.
    func resumeWriterLease() async throws -> any WriterLease

    /// Tells whether a writer is at work, so readers can stop waiting on one that died.
    func writerState() async throws -> WriterState
}

/// A blob's metadata and the length of its stored bytes (``BlobStore/inspect(_:)``).
public struct BlobStat: Sendable, Equatable {
    public var metadata: BlobMetadata
    /// The stored bytes' length (deflated, for a compressed native blob).
    public var storedLength: Int

    public init(metadata: BlobMetadata, storedLength: Int) {
        self.metadata = metadata
        self.storedLength = storedLength
    }
}

/// What waiting for a blob gave (``BlobStore/awaitBlob(_:upTo:)``).
public enum BlobWait: Sendable {
    /// The blob is there.
    case found(StoredBlob)
    /// It did not appear within the wait.
    case waited
    /// It is not there, and the store could only look once: the caller waits before it looks again.
    case lookedOnce
}

extension BlobStore {
    /// Fetches a blob, waiting up to `wait` for it to appear when it is not there yet: readers of a buffer still
    /// being written learn of each new blob as it is stored instead of at their next poll. Stores that can wait say
    /// so (``BlobWait/waited``); this default looks once (``BlobWait/lookedOnce``).
    public func awaitBlob(_ name: String, upTo wait: Duration) async throws -> BlobWait {
        if let blob = try await get(name) { return .found(blob) }
        return .lookedOnce
    }

    /// Fetches the whole blob to learn its length: stores that can answer without the bytes override it.
    public func inspect(_ name: String) async throws -> BlobStat? {
        try await get(name).map { BlobStat(metadata: $0.metadata, storedLength: $0.bytes.count) }
    }

    public func resumeWriterLease() async throws -> any WriterLease { try await acquireWriterLease() }

    /// Whether blob `name` is stored with exactly `metadata` (its checksum and chain value): a put that finds its
    /// name taken by the same blob (its own attempt that landed, or an interrupted writer's) has nothing left to do.
    public func holds(_ name: String, with metadata: BlobMetadata) async throws -> Bool {
        try await head(name) == metadata
    }
}

/// The writer lease of a buffer; release it once `.bufferend` is written.
public protocol WriterLease: Sendable {
    /// Releases the lease. Idempotent.
    func release() async
}

/// What a store knows about a buffer's writer.
public enum WriterState: Equatable, Sendable {
    /// No writer has ever taken the lease.
    case notStarted
    /// A writer holds the lease now.
    case active
    /// A writer took the lease and no longer holds it (finished, or died).
    case gone
    /// The store cannot tell (e.g. over HTTP without lease support): keep waiting, as upstream does.
    case unknown
}
