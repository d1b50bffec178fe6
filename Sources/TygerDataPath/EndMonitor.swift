private import Synchronization
import TygerCore
import TygerStorage

/// Reads `.bufferend` for the reader, remembering a terminal answer so it is fetched once.
final class EndMonitor: Sendable {
    private let store: any BlobStore
    private let known = Mutex<BufferEndStatus?>(nil)

    init(store: any BlobStore) { self.store = store }

    /// `.complete`, `.failed`, or `nil` while the buffer has no `.bufferend` yet.
    func status() async throws -> BufferEndStatus? {
        if let known = known.withLock({ $0 }) { return known }
        guard let blob = try await store.get(BufferBlobNames.end) else { return nil }
        let status = BufferEndMetadata.decode(Array(blob.bytes))
        known.withLock { $0 = status }
        return status
    }
}
