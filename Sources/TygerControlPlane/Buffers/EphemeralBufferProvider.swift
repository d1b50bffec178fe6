public import TygerModel

/// Hands out access to ephemeral buffers (`run-<id>-temp-<x>`): run arguments `_` whose data goes between a client
/// and the run without being stored, so they are not in the buffer repository.
///
/// ``BufferManager/access(id:writeable:preferTCP:ttl:)`` consults it for every ID that ``EphemeralBufferID``
/// parses. The server implements it over the run engine (a relay URL, and on the same machine the run's pipe).
public protocol EphemeralBufferProvider: Sendable {
    /// Access to an ephemeral buffer.
    ///
    /// - Parameters:
    ///   - id: The parsed ephemeral buffer ID.
    ///   - writeable: Whether the caller writes (the buffer is an input of the run).
    ///   - preferTCP: Whether the caller wants a TCP URL rather than a Unix-socket one.
    ///   - ttl: The URL lifetime, already checked against ``BufferManager/Configuration/accessTTLRange``.
    /// - Returns: The access URL, and the run's pipe when the caller may open it directly.
    /// - Throws: ``TygerControlPlaneError`` (`notFound` when no run has this buffer); any other error is reported
    ///   as ``TygerControlPlaneError/Code/storageFailure``.
    func access(_ id: EphemeralBufferID, writeable: Bool, preferTCP: Bool, ttl: Duration) async throws -> BufferAccess
}
