import Foundation
public import TygerModel

/// The buffers control plane: validation and the rules of upstream's `Buffers/BufferManager.cs` over a
/// ``BufferRepository`` and a ``BufferStorageProvider``.
///
/// All methods throw ``TygerControlPlaneError``; the HTTP layer renders it as the JSON error envelope.
public final class BufferManager: Sendable {
    /// Lifetimes and limits.
    public struct Configuration: Sendable {
        /// The expiry applied when a buffer is restored (`now + activeLifetime`); `nil` means "never expires".
        /// Upstream applies it only on restore, not on create (documented quirk, kept).
        public var activeLifetime: Duration?
        /// How long a soft-deleted buffer is kept before it is purged, when `DELETE` has no `ttl`, and when the
        /// expiry service soft-deletes an expired active buffer. Default: 1 day (upstream's Docker default).
        public var softDeletedLifetime: Duration
        /// The access-URL lifetime when `ttl` is absent. Default: 1 hour.
        public var defaultAccessTTL: Duration
        /// The allowed access-URL lifetimes. Default: 30 s ... 1 h.
        public var accessTTLRange: ClosedRange<Duration>
        /// How many buffers one expiry query changes at most. Default: 1000.
        public var expiryBatchSize: Int
        /// The location of buffers created without one. Default: `local`.
        public var location: String
        /// The other accepted locations: the names of the data planes of other processes (`--data-plane NAME=URL`).
        public var dataPlanes: [String] = []
        /// How long a writer lease lasts without renewal; writers renew about every third of it. Default: 8 s, so
        /// readers learn of a dead writer within 10 s.
        public var writerLeaseDuration: Duration

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - activeLifetime: The expiry applied on restore, or `nil`.
        ///   - softDeletedLifetime: The lifetime of soft-deleted buffers.
        ///   - defaultAccessTTL: The default access-URL lifetime.
        ///   - accessTTLRange: The allowed access-URL lifetimes.
        ///   - expiryBatchSize: The maximum number of buffers per expiry query.
        ///   - location: The accepted location.
        ///   - writerLeaseDuration: How long a writer lease lasts without renewal.
        public init(
            activeLifetime: Duration? = nil,
            softDeletedLifetime: Duration = .seconds(86_400),
            defaultAccessTTL: Duration = .seconds(3600),
            accessTTLRange: ClosedRange<Duration> = .seconds(30) ... .seconds(3600),
            expiryBatchSize: Int = 1000,
            location: String = "local",
            writerLeaseDuration: Duration = .seconds(8)
        ) {
            precondition(expiryBatchSize > 0, "expiryBatchSize must be positive, got \(expiryBatchSize)")
            precondition(accessTTLRange.contains(defaultAccessTTL), "defaultAccessTTL must be in accessTTLRange")
            self.activeLifetime = activeLifetime
            self.softDeletedLifetime = softDeletedLifetime
            self.defaultAccessTTL = defaultAccessTTL
            self.accessTTLRange = accessTTLRange
            self.expiryBatchSize = expiryBatchSize
            self.location = location
            self.writerLeaseDuration = writerLeaseDuration
        }
    }

    /// The default page size of `GET /buffers`.
    public static let defaultPageLimit = 20
    /// The largest page size of `GET /buffers`; larger requests are silently capped.
    public static let maxPageLimit = 2000

    /// The persistence.
    public let repository: any BufferRepository
    /// The container storage and access-URL signer.
    public let storage: any BufferStorageProvider
    /// Lifetimes and limits.
    public let configuration: Configuration
    /// The wall clock.
    public let clock: WallClock
    /// Access to ephemeral buffers (`run-<id>-temp-<x>`), or `nil` when there are none (no run engine).
    public let ephemeralBuffers: (any EphemeralBufferProvider)?

    /// Creates a manager.
    ///
    /// - Parameters:
    ///   - repository: The persistence.
    ///   - storage: The container storage and access-URL signer.
    ///   - configuration: Lifetimes and limits.
    ///   - clock: The wall clock; inject a controllable one in tests.
    ///   - ephemeralBuffers: Access to ephemeral buffers, consulted by ``access(id:writeable:preferTCP:ttl:)``.
    public init(
        repository: any BufferRepository,
        storage: any BufferStorageProvider,
        configuration: Configuration = Configuration(),
        clock: WallClock = .system,
        ephemeralBuffers: (any EphemeralBufferProvider)? = nil
    ) {
        self.repository = repository
        self.storage = storage
        self.configuration = configuration
        self.clock = clock
        self.ephemeralBuffers = ephemeralBuffers
    }

    func now() -> Date { RFC3339.normalize(clock.now()) }

    // MARK: - Create, read, list, count

    /// Creates a buffer: checks location and tags, creates its container, then stores it.
    ///
    /// Only `location`, `tags` and `expiresAt` of `request` are used; `id`, `createdAt`, `isSoftDeleted` and
    /// `eTag` are ignored, so the Go CLI's zero values are fine.
    ///
    /// - Parameter request: The `POST /buffers` body.
    /// - Returns: The stored buffer.
    /// - Throws: ``TygerControlPlaneError``: `invalidInput` for a location other than empty/`local`
    ///   (`Buffer location can only be 'local'.`) or invalid tags; `storageFailure` or `databaseFailure`.
    public func create(_ request: Buffer) async throws(TygerControlPlaneError) -> BufferRecord {
        var location = configuration.location
        if let asked = request.location, !asked.isEmpty {
            let known = [configuration.location] + configuration.dataPlanes
            guard let match = known.first(where: { $0.lowercased() == asked.lowercased() }) else {
                if known.count == 1 { throw .invalidInput("Buffer location can only be '\(configuration.location)'.") }
                throw .invalidInput(
                    "Unknown buffer location '\(asked)': use one of \(known.map { "'\($0)'" }.joined(separator: ", "))."
                )
            }
            location = match
        }
        try validateTags(request.tags)
        let record = BufferRecord(
            id: BufferID.generate(),
            location: location,
            createdAt: now(),
            expiresAt: request.expiresAt,
            tags: request.tags ?? [:]
        )
        try await storageCall("create container") {
            try await self.storage.createContainer(id: record.id, location: record.location)
        }
        do {
            try await repository.create(record)
        } catch {
            try? await storage.deleteContainer(id: record.id, location: record.location)
            throw Self.wrap(error)
        }
        return record
    }

    /// Fetches a buffer in a given state. Expired buffers are still returned until the expiry service moves them.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - softDeleted: Whether to look for a soft-deleted (`true`) or active (`false`) buffer.
    /// - Returns: The buffer.
    /// - Throws: ``TygerControlPlaneError`` `notFound` when there is no such buffer in that state.
    public func get(id: String, softDeleted: Bool = false) async throws(TygerControlPlaneError) -> BufferRecord {
        guard let record = try await repo({ try await self.repository.get(id: id, softDeleted: softDeleted) }) else {
            throw .notFound()
        }
        return record
    }

    /// Lists one page of buffers, newest first.
    ///
    /// - Parameters:
    ///   - filter: Tag filters and the soft-deleted state (`liveAt` is ignored: lists show expired buffers).
    ///   - limit: The page size: `nil` = 20, larger than 2000 = 2000, negative = error, 0 = empty page.
    ///   - continuationToken: The `_ct` of the previous page, or `nil` for the first page.
    /// - Returns: The buffers and the token of the next page (`nil` on the last page).
    /// - Throws: ``TygerControlPlaneError`` `invalidInput` for a negative limit
    ///   (`Limit must be a non-negative integer.`) or a bad token (`Invalid continuation token.`).
    public func list(
        _ filter: BufferFilter,
        limit: Int?,
        continuationToken: String?
    ) async throws(TygerControlPlaneError) -> (buffers: [BufferRecord], continuationToken: String?) {
        let limit = try Self.validatedPageLimit(limit)
        let cursor = try continuationToken.map { token throws(TygerControlPlaneError) in
            try ContinuationToken.decode(token)
        }
        guard limit > 0 else { return ([], nil) }
        var f = filter
        f.liveAt = nil
        let page = try await repo { try await self.repository.list(f, limit: limit + 1, after: cursor) }
        guard page.count > limit else { return (page, nil) }
        let items = Array(page.prefix(limit))
        return (items, ContinuationToken.encode(BufferCursor(after: items[items.count - 1])))
    }

    /// Counts unexpired buffers.
    ///
    /// - Parameter filter: Tag filters and the state (`softDeleted == nil` counts both states).
    /// - Returns: The number of matching buffers whose `expiresAt` is unset or in the future.
    /// - Throws: ``TygerControlPlaneError`` `databaseFailure`.
    public func count(_ filter: BufferFilter) async throws(TygerControlPlaneError) -> Int {
        var f = filter
        f.liveAt = now()
        return try await repo { try await self.repository.count(f) }
    }

    // MARK: - Update

    /// Replaces a buffer's tags (and its expiry when given), with an optional ETag precondition.
    ///
    /// - Parameters:
    ///   - id: The buffer ID from the URL.
    ///   - update: The body; a non-empty `id` must equal `id`; `tags` replaces the whole set (`nil` clears).
    ///   - ifMatch: The `If-Match` header; `nil`, empty or `*` mean no precondition. Quotes and `W/` are ignored.
    ///   - softDeleted: Whether the buffer must be soft-deleted (`true`) or active (`false`).
    /// - Returns: The updated buffer.
    /// - Throws: ``TygerControlPlaneError``: `badRequest` for an ID mismatch, `invalidInput` for invalid tags,
    ///   `notFound`, or `preconditionFailed` (`ETag does not match`).
    public func update(
        id: String,
        _ update: BufferUpdate,
        ifMatch: String?,
        softDeleted: Bool = false
    ) async throws(TygerControlPlaneError) -> BufferRecord {
        if let bodyID = update.id, !bodyID.isEmpty, bodyID != id {
            throw .badRequest("The buffer ID in the URL does not match the buffer ID in the request body.")
        }
        try validateTags(update.tags)
        let expected = ETagPrecondition.expected(fromIfMatch: ifMatch)
        let outcome = try await repo {
            try await self.repository.update(
                id: id,
                softDeleted: softDeleted,
                ifMatch: expected,
                expiresAt: update.expiresAt,
                tags: update.tags ?? [:]
            )
        }
        switch outcome {
        case .changed(let record): return record
        case .notFound, .wrongState: throw .notFound()
        case .eTagMismatch: throw .preconditionFailed("ETag does not match")
        }
    }

    // MARK: - Soft delete, purge, restore

    /// Soft-deletes an active buffer, or (with `purge`) marks a soft-deleted buffer for purging.
    ///
    /// Soft delete sets `expiresAt = now + (ttl ?? softDeletedLifetime)`; purge sets `expiresAt = now + (ttl ?? 0)`
    /// and the expiry service deletes the buffer and its container once that time has passed.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - ttl: How long to keep the buffer, or `nil` for the default.
    ///   - purge: `false` to soft-delete an active buffer; `true` to purge a soft-deleted one.
    /// - Returns: The buffer's new state.
    /// - Throws: ``TygerControlPlaneError``: `notFound` (missing or expired); `preconditionFailed` with
    ///   `Buffer is already soft-deleted` (soft delete) or `Buffer is not soft-deleted` (purge).
    public func softDelete(
        id: String,
        ttl: Duration? = nil,
        purge: Bool = false
    ) async throws(TygerControlPlaneError) -> BufferRecord {
        let now = now()
        let change = deletion(ttl: ttl, purge: purge, now: now)
        let outcome = try await repo { try await self.repository.changeState(id: id, change, now: now) }
        switch outcome {
        case .changed(let record): return record
        case .notFound, .eTagMismatch: throw .notFound()
        case .wrongState:
            throw .preconditionFailed(purge ? "Buffer is not soft-deleted" : "Buffer is already soft-deleted")
        }
    }

    /// Soft-deletes (or purges) every unexpired buffer that matches the tag filters and is in the required state.
    ///
    /// - Parameters:
    ///   - filter: The tag filters (`softDeleted` and `liveAt` are ignored).
    ///   - ttl: How long to keep the buffers, or `nil` for the default.
    ///   - purge: `false` to soft-delete active buffers; `true` to purge soft-deleted ones.
    /// - Returns: The number of buffers changed.
    /// - Throws: ``TygerControlPlaneError`` `databaseFailure`.
    public func softDelete(
        matching filter: BufferFilter,
        ttl: Duration? = nil,
        purge: Bool = false
    ) async throws(TygerControlPlaneError) -> Int {
        let now = now()
        let change = deletion(ttl: ttl, purge: purge, now: now)
        return try await repo { try await self.repository.changeStates(matching: filter, change, now: now) }
    }

    /// Restores a soft-deleted buffer; its expiry becomes `now + activeLifetime`, or none.
    ///
    /// - Parameter id: The buffer ID.
    /// - Returns: The restored buffer.
    /// - Throws: ``TygerControlPlaneError``: `notFound` (missing or expired); `preconditionFailed`
    ///   (`Buffer is not soft-deleted`).
    public func restore(id: String) async throws(TygerControlPlaneError) -> BufferRecord {
        let now = now()
        let outcome = try await repo { try await self.repository.changeState(id: id, self.restoration(now), now: now) }
        switch outcome {
        case .changed(let record): return record
        case .notFound, .eTagMismatch: throw .notFound()
        case .wrongState: throw .preconditionFailed("Buffer is not soft-deleted")
        }
    }

    /// Restores every unexpired soft-deleted buffer that matches the tag filters.
    ///
    /// - Parameter filter: The tag filters (`softDeleted` and `liveAt` are ignored).
    /// - Returns: The number of buffers restored.
    /// - Throws: ``TygerControlPlaneError`` `databaseFailure`.
    public func restore(matching filter: BufferFilter) async throws(TygerControlPlaneError) -> Int {
        let now = now()
        return try await repo {
            try await self.repository.changeStates(matching: filter, self.restoration(now), now: now)
        }
    }

    private func deletion(ttl: Duration?, purge: Bool, now: Date) -> BufferStateChange {
        let keep = ttl ?? (purge ? .zero : configuration.softDeletedLifetime)
        return BufferStateChange(
            fromSoftDeleted: purge,
            toSoftDeleted: true,
            expiresAt: RFC3339.adding(keep, to: now)
        )
    }

    private func restoration(_ now: Date) -> BufferStateChange {
        BufferStateChange(
            fromSoftDeleted: true,
            toSoftDeleted: false,
            expiresAt: configuration.activeLifetime.map { RFC3339.adding($0, to: now) }
        )
    }

    // MARK: - Access and storage accounts

    /// Creates a signed access URL for a buffer's container, or for an ephemeral buffer (`run-<id>-temp-<x>`)
    /// through ``ephemeralBuffers``.
    ///
    /// Upstream's local provider answers an out-of-range `ttl` with a 500; this returns a 400 instead.
    ///
    /// - Parameters:
    ///   - id: The buffer ID.
    ///   - writeable: Whether the URL may create blobs.
    ///   - preferTCP: Whether to prefer a TCP URL over a Unix-socket one.
    ///   - ttl: The URL lifetime, or `nil` for ``Configuration/defaultAccessTTL``.
    /// - Returns: The URL; for an ephemeral buffer also the run's pipe when the provider gives one.
    /// - Throws: ``TygerControlPlaneError``: `invalidInput` when `ttl` is outside
    ///   ``Configuration/accessTTLRange``; `notFound` when the container (or the ephemeral buffer's run) does not
    ///   exist or the buffer is soft-deleted; `storageFailure`.
    public func access(
        id: String,
        writeable: Bool,
        preferTCP: Bool = false,
        ttl: Duration? = nil
    ) async throws(TygerControlPlaneError) -> BufferAccess {
        let ttl = ttl ?? configuration.defaultAccessTTL
        guard configuration.accessTTLRange.contains(ttl) else {
            throw .invalidInput(
                "ttl must be between \(TimeSpan.format(configuration.accessTTLRange.lowerBound)) and "
                    + "\(TimeSpan.format(configuration.accessTTLRange.upperBound))"
            )
        }
        if let ephemeral = EphemeralBufferID(id) {
            guard let ephemeralBuffers else { throw .notFound() }
            return try await storageCall("give access to an ephemeral buffer") {
                try await ephemeralBuffers.access(ephemeral, writeable: writeable, preferTCP: preferTCP, ttl: ttl)
            }
        }
        return try await signedAccess(id: id, writeable: writeable, preferTCP: preferTCP, ttl: ttl)
    }

    /// An access URL for the processes of a run on other machines (a cluster job moving its own buffers): on the TCP
    /// listener, valid for `ttl` however long (the signer bounds it), never for an ephemeral buffer.
    ///
    /// - Throws: ``TygerControlPlaneError`` as ``access(id:writeable:preferTCP:ttl:)``.
    public func accessForRunProcesses(
        id: String,
        writeable: Bool,
        ttl: Duration
    ) async throws(TygerControlPlaneError) -> BufferAccess {
        guard EphemeralBufferID(id) == nil else {
            throw .invalidInput("an ephemeral buffer has no access URL of its own")
        }
        return try await signedAccess(id: id, writeable: writeable, preferTCP: true, ttl: ttl)
    }

    private func signedAccess(
        id: String,
        writeable: Bool,
        preferTCP: Bool,
        ttl: Duration
    ) async throws(TygerControlPlaneError) -> BufferAccess {
        try await refuseSoftDeleted(id: id)
        let location = try await location(of: id)
        let exists = try await storageCall("check container") {
            try await self.storage.containerExists(id: id, location: location)
        }
        guard exists else { throw .notFound() }
        let uri = try await storageCall("sign access URL") {
            try await self.storage.accessURL(
                id: id,
                location: location,
                writeable: writeable,
                ttl: ttl,
                preferTCP: preferTCP
            )
        }
        return BufferAccess(uri: uri)
    }

    /// Where buffer `id` is: its record's location (the server's own for a buffer without a record).
    public func location(of id: String) async throws(TygerControlPlaneError) -> String {
        try await repo { try await self.repository.get(id: id, softDeleted: false) }?.location ?? configuration.location
    }

    /// The storage accounts.
    ///
    /// - Returns: The provider's accounts.
    /// - Throws: ``TygerControlPlaneError`` `storageFailure`.
    public func storageAccounts() async throws(TygerControlPlaneError) -> [StorageAccount] {
        try await storageCall("list storage accounts") { try await self.storage.storageAccounts() }
    }

    // MARK: - Helpers

    private func validateTags(_ tags: [String: String]?) throws(TygerControlPlaneError) {
        do {
            try TagValidation.validate(tags)
        } catch {
            throw TygerControlPlaneError(code: .invalidInput, message: error.message, cause: error)
        }
    }

    static func validatedPageLimit(_ limit: Int?) throws(TygerControlPlaneError) -> Int {
        guard let limit else { return defaultPageLimit }
        guard limit >= 0 else { throw .invalidInput("Limit must be a non-negative integer.") }
        return min(limit, maxPageLimit)
    }

    static func wrap(_ error: any Error) -> TygerControlPlaneError {
        if let error = error as? TygerControlPlaneError { return error }
        return TygerControlPlaneError(code: .databaseFailure, message: "Repository operation failed", cause: error)
    }

    func repo<T: Sendable>(_ body: () async throws -> T) async throws(TygerControlPlaneError) -> T {
        do {
            return try await body()
        } catch {
            throw Self.wrap(error)
        }
    }

    func storageCall<T: Sendable>(
        _ what: String,
        _ body: () async throws -> T
    ) async throws(TygerControlPlaneError) -> T {
        do {
            return try await body()
        } catch let error as TygerControlPlaneError {
            throw error
        } catch {
            throw TygerControlPlaneError(code: .storageFailure, message: "Storage failed to \(what)", cause: error)
        }
    }
}
