public import TygerControlPlane
public import TygerModel

/// The storage of a ``TygerControlPlane/BufferManager`` that keeps only writer leases (a data plane in a process of
/// its own, `TygerServerConfiguration.dataPlaneWriterLeases`): its buffers are made and given access to by the
/// control plane elsewhere, so it has none of its own to manage.
public struct LeasesOnlyStorage: BufferStorageProvider {
    public init() {}

    private static func refuse() -> TygerControlPlaneError {
        TygerControlPlaneError(code: .invalidInput, message: "A data plane manages no buffers: its control plane does")
    }

    public func createContainer(id: String, location: String) async throws { throw Self.refuse() }
    public func deleteContainer(id: String, location: String) async throws { throw Self.refuse() }
    public func containerExists(id: String, location: String) async throws -> Bool { false }
    public func accessURL(
        id: String,
        location: String,
        writeable: Bool,
        ttl: Duration,
        preferTCP: Bool
    ) async throws -> String { throw Self.refuse() }
    public func storageAccounts() async throws -> [StorageAccount] { [] }
}
