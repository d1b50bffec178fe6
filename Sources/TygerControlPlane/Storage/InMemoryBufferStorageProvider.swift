private import Synchronization
public import TygerModel

/// A ``BufferStorageProvider`` that records containers in memory and returns fake, unsigned URLs.
///
/// For tests of the control plane; it serves no data. URLs look like
/// `memory://buffers/<id>?writeable=<bool>&ttl=<seconds>&tcp=<bool>`.
public final class InMemoryBufferStorageProvider: BufferStorageProvider {
    private let state = Mutex<State>(State())

    private struct State {
        var containers: Set<String> = []
        var failNextOperation = false
    }

    /// The accounts returned by ``storageAccounts()``.
    public let accounts: [StorageAccount]

    /// Creates an empty provider.
    ///
    /// - Parameter accounts: The accounts to report; defaults to one `local` account.
    public init(
        accounts: [StorageAccount] = [StorageAccount(name: "local", location: "local", endpoint: "memory://buffers/")]
    ) {
        self.accounts = accounts
    }

    /// The IDs of the containers that currently exist.
    public var containerIDs: Set<String> { state.withLock { $0.containers } }

    /// Makes the next container operation throw, to test error handling.
    public func failNextOperation() { state.withLock { $0.failNextOperation = true } }

    private func checkFailure() throws {
        let fail = state.withLock { s in
            defer { s.failNextOperation = false }
            return s.failNextOperation
        }
        if fail { throw TygerControlPlaneError(code: .storageFailure, message: "Injected storage failure") }
    }

    public func createContainer(id: String, location: String) async throws {
        try checkFailure()
        state.withLock { _ = $0.containers.insert(id) }
    }

    public func deleteContainer(id: String, location: String) async throws {
        try checkFailure()
        state.withLock { _ = $0.containers.remove(id) }
    }

    public func containerExists(id: String, location: String) async throws -> Bool {
        try checkFailure()
        return state.withLock { $0.containers.contains(id) }
    }

    public func accessURL(
        id: String,
        location: String,
        writeable: Bool,
        ttl: Duration,
        preferTCP: Bool
    ) async throws -> String {
        try checkFailure()
        return "memory://buffers/\(id)?writeable=\(writeable)&ttl=\(ttl.components.seconds)&tcp=\(preferTCP)"
    }

    public func storageAccounts() async throws -> [StorageAccount] { accounts }
}
