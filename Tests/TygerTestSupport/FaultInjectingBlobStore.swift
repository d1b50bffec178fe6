private import Synchronization
public import TygerCore
public import TygerStorage

/// A `BlobStore` that passes every call to a real store except the Nth, which throws an I/O error (SQLite's
/// fault-injection method: run a workload with N = 1, 2, 3, … until it finishes without reaching the fault).
///
/// With `persistent`, every call from the Nth on fails (a disk that stays broken); otherwise only the Nth (a
/// transient error).
public final class FaultInjectingBlobStore: BlobStore {
    /// The calls the wrapper counts.
    public enum Operation: String, CaseIterable, Sendable {
        case containerExists, createContainer, put, get, head, sync, acquireWriterLease, writerState
    }

    private let base: any BlobStore
    private let failAt: Int
    private let persistent: Bool
    private let state = Mutex<(calls: Int, injected: [Operation])>((0, []))

    /// - Parameters:
    ///   - base: The real store.
    ///   - failAt: The 1-based number of the call that fails.
    ///   - persistent: Whether every later call fails too.
    public init(_ base: any BlobStore, failAt: Int, persistent: Bool = false) {
        self.base = base
        self.failAt = failAt
        self.persistent = persistent
    }

    /// The calls made so far.
    public var calls: Int { state.withLock { $0.calls } }

    /// The operations that got an injected error, in order.
    public var injected: [Operation] { state.withLock { $0.injected } }

    public var location: String { base.location }

    private func enter(_ operation: Operation) throws {
        let fail = state.withLock { s -> Bool in
            s.calls += 1
            let fail = s.calls == failAt || (persistent && s.calls > failAt)
            if fail { s.injected.append(operation) }
            return fail
        }
        if fail { throw BlobStoreError(.io, "injected I/O error in \(operation.rawValue) (call \(failAt))") }
    }

    public func containerExists() async throws -> Bool {
        try enter(.containerExists)
        return try await base.containerExists()
    }

    public func createContainer() async throws {
        try enter(.createContainer)
        try await base.createContainer()
    }

    public func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws {
        try enter(.put)
        try await base.put(name, bytes: bytes, metadata: metadata)
    }

    public func get(_ name: String) async throws -> StoredBlob? {
        try enter(.get)
        return try await base.get(name)
    }

    public func head(_ name: String) async throws -> BlobMetadata? {
        try enter(.head)
        return try await base.head(name)
    }

    /// Counted as a `head` (the same request, with the length).
    public func inspect(_ name: String) async throws -> BlobStat? {
        try enter(.head)
        return try await base.inspect(name)
    }

    public func sync() async throws {
        try enter(.sync)
        try await base.sync()
    }

    public func acquireWriterLease() async throws -> any WriterLease {
        try enter(.acquireWriterLease)
        return try await base.acquireWriterLease()
    }

    /// Counted as an `acquireWriterLease`.
    public func resumeWriterLease() async throws -> any WriterLease {
        try enter(.acquireWriterLease)
        return try await base.resumeWriterLease()
    }

    public func writerState() async throws -> WriterState {
        try enter(.writerState)
        return try await base.writerState()
    }
}
