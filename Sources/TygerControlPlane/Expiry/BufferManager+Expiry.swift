import Foundation
public import Logging
import TygerModel

/// What one expiry pass did.
public struct ExpiryPassResult: Sendable, Hashable {
    /// Active buffers past `expiresAt` that were soft-deleted.
    public var softDeleted: Int
    /// Soft-deleted buffers past `expiresAt` whose rows were deleted.
    public var purged: Int
    /// Buffers due to be purged whose containers could not be deleted: their records stay (soft-deleted, past
    /// their expiry, so out of reach) and the next pass tries again.
    public var containerDeletionFailures: Int

    /// Creates a result.
    public init(softDeleted: Int = 0, purged: Int = 0, containerDeletionFailures: Int = 0) {
        self.softDeleted = softDeleted
        self.purged = purged
        self.containerDeletionFailures = containerDeletionFailures
    }
}

extension BufferManager {
    /// Runs one expiry pass, as upstream's `BufferDeleter` does every 30 s.
    ///
    /// 1. Active buffers with `expiresAt <= now` become soft-deleted with `expiresAt = now + softDeletedLifetime`.
    /// 2. Soft-deleted buffers with `expiresAt <= now` have their containers deleted, then their records. Such a
    ///    buffer is out of reach already (it cannot be read, written or restored), so none is ever visible without
    ///    its data; a buffer whose container cannot be deleted (its data plane or store is down) keeps its record,
    ///    is counted in ``ExpiryPassResult/containerDeletionFailures``, and is tried again by the next pass. (Rows
    ///    went first before: such a container was left behind for good.)
    ///
    /// Both steps run in batches of ``Configuration/expiryBatchSize`` until a batch comes back short (or, in the
    /// second, purges nothing).
    ///
    /// - Parameter logger: Receives debug messages.
    /// - Returns: What the pass did.
    /// - Throws: ``TygerControlPlaneError`` `databaseFailure` when the repository fails.
    public func runExpiryPass(logger: Logger) async throws(TygerControlPlaneError) -> ExpiryPassResult {
        var result = ExpiryPassResult()
        let now = RFC3339.normalize(clock.now())
        let newExpiry = RFC3339.adding(configuration.softDeletedLifetime, to: now)
        let batch = configuration.expiryBatchSize
        while true {
            let ids = try await repo {
                try await self.repository.softDeleteExpired(now: now, newExpiresAt: newExpiry, limit: batch)
            }
            result.softDeleted += ids.count
            for id in ids { logger.debug("Soft-deleted expired buffer", metadata: ["buffer.id": "\(id)"]) }
            if ids.count < batch { break }
        }
        var failed: Set<String> = []
        while true {
            let due = try await repo { try await self.repository.purgeable(now: now, limit: batch) }
            var emptied: [String] = []
            for id in due where !failed.contains(id) {
                do {
                    // Gone meanwhile: another server's pass purged it.
                    guard let record = try await repository.get(id: id, softDeleted: true) else { continue }
                    try await storage.deleteContainer(id: id, location: record.location)
                    emptied.append(id)
                } catch {
                    failed.insert(id)
                    logger.warning(
                        "cannot delete the container of a buffer due to be purged; trying again at the next pass",
                        metadata: ["buffer.id": "\(id)", "error": "\(error)"]
                    )
                }
            }
            let purged = try await repo { try await self.repository.purge(ids: emptied, now: now) }
            result.purged += purged.count
            for id in purged { logger.debug("Purged buffer", metadata: ["buffer.id": "\(id)"]) }
            if due.count < batch || purged.isEmpty { break }
        }
        result.containerDeletionFailures = failed.count
        return result
    }
}

/// The background service that expires buffers: one ``BufferManager/runExpiryPass(logger:)`` every `interval`.
///
/// `run()` has the shape of ServiceLifecycle's `Service`; the server can declare
/// `extension BufferExpiryService: Service {}` and add it to its `ServiceGroup`. It returns when its task is
/// cancelled. A failing pass is logged at debug and retried at the next interval.
///
/// ```swift
/// let expiry = BufferExpiryService(manager: manager, interval: .seconds(30), logger: logger)
/// try await expiry.run()
/// ```
public struct BufferExpiryService<C: Clock>: Sendable where C.Duration == Duration {
    /// The manager whose buffers expire.
    public let manager: BufferManager
    /// The time between passes.
    public let interval: Duration
    /// The clock used to sleep between passes.
    public let clock: C
    /// Receives debug messages.
    public let logger: Logger

    /// Creates the service.
    ///
    /// - Parameters:
    ///   - manager: The manager whose buffers expire.
    ///   - interval: The time between passes (upstream: 30 s).
    ///   - clock: The clock used to sleep between passes.
    ///   - logger: Receives debug messages.
    /// - Precondition: `interval` is positive.
    public init(manager: BufferManager, interval: Duration = .seconds(30), clock: C, logger: Logger) {
        precondition(interval > .zero, "interval must be positive, got \(interval)")
        self.manager = manager
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    /// Runs passes until the task is cancelled.
    ///
    /// - Throws: Never in practice; cancellation ends the loop normally.
    public func run() async throws {
        while !Task.isCancelled {
            do {
                let result = try await manager.runExpiryPass(logger: logger)
                if result.softDeleted + result.purged > 0 {
                    logger.debug(
                        "Expiry pass done",
                        metadata: ["softDeleted": "\(result.softDeleted)", "purged": "\(result.purged)"]
                    )
                }
            } catch {
                logger.debug("Expiry pass failed", metadata: ["error": "\(error)"])
            }
            do {
                try await clock.sleep(for: interval)
            } catch {
                return  // cancelled
            }
        }
    }
}

extension BufferExpiryService where C == ContinuousClock {
    /// Creates the service sleeping on the continuous clock.
    ///
    /// - Parameters:
    ///   - manager: The manager whose buffers expire.
    ///   - interval: The time between passes (upstream: 30 s).
    ///   - logger: Receives debug messages.
    public init(manager: BufferManager, interval: Duration = .seconds(30), logger: Logger) {
        self.init(manager: manager, interval: interval, clock: ContinuousClock(), logger: logger)
    }
}
