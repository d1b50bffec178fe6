import Foundation
import Logging
import Testing
import TygerControlPlane
import TygerModel
import TygerTestSupport

struct BufferManagerTests {
    let clock = ManualWallClock()
    let storage = InMemoryBufferStorageProvider()

    private func manager(
        _ kind: RepositoryKind,
        _ configuration: BufferManager.Configuration = .init()
    ) async throws
        -> (BufferManager, AnyObject?)
    {
        let (repo, dir) = try await kind.make()
        return (
            BufferManager(repository: repo, storage: storage, configuration: configuration, clock: clock.wallClock), dir
        )
    }

    @Test(arguments: RepositoryKind.available)
    func createAppliesRulesAndCreatesContainer(kind: RepositoryKind) async throws {
        let (m, dir) = try await manager(kind)
        defer { _ = dir }
        let b = try await m.create(Buffer(id: "ignored", location: "LOCAL", tags: ["a": "b"]))
        #expect(b.id.count == 26 && b.id != "ignored")
        #expect(b.location == "local")
        #expect(b.createdAt == RFC3339.normalize(clock.now))
        #expect(b.expiresAt == nil)  // activeLifetime is not applied on create (upstream)
        #expect(storage.containerIDs == [b.id])

        let bad = await #expect(throws: TygerControlPlaneError.self) {
            try await m.create(Buffer(location: "eastus"))
        }
        #expect(bad?.code == .invalidInput)
        #expect(bad?.message == "Buffer location can only be 'local'.")
        let tooMany = Dictionary(uniqueKeysWithValues: (0...100).map { ("k\($0)", "v") })
        await #expect(throws: TygerControlPlaneError.self) { try await m.create(Buffer(tags: tooMany)) }
        #expect(storage.containerIDs.count == 1)
    }

    @Test func storageFailureOnCreateStoresNothing() async throws {
        let (m, _) = try await manager(.inMemory)
        storage.failNextOperation()
        let error = await #expect(throws: TygerControlPlaneError.self) { try await m.create(Buffer()) }
        #expect(error?.code == .storageFailure)
        #expect(try await m.count(BufferFilter(softDeleted: nil)) == 0)
    }

    @Test(arguments: RepositoryKind.available)
    func softDeleteRestorePurgeSingle(kind: RepositoryKind) async throws {
        let (m, dir) = try await manager(
            kind,
            .init(activeLifetime: .seconds(3600), softDeletedLifetime: .seconds(86_400))
        )
        defer { _ = dir }
        let b = try await m.create(Buffer())
        let now = RFC3339.normalize(clock.now)

        await expectPrecondition("Buffer is not soft-deleted") { try await m.restore(id: b.id) }
        await expectPrecondition("Buffer is not soft-deleted") { try await m.softDelete(id: b.id, purge: true) }

        let deleted = try await m.softDelete(id: b.id)
        #expect(deleted.isSoftDeleted)
        #expect(deleted.expiresAt == now + 86_400)
        await expectPrecondition("Buffer is already soft-deleted") { try await m.softDelete(id: b.id) }
        await #expect(throws: TygerControlPlaneError.self) { try await m.get(id: b.id) }
        #expect(try await m.get(id: b.id, softDeleted: true).id == b.id)

        let restored = try await m.restore(id: b.id)
        #expect(!restored.isSoftDeleted)
        #expect(restored.expiresAt == now + 3600)  // activeLifetime applies on restore

        _ = try await m.softDelete(id: b.id, ttl: .seconds(60))
        let purged = try await m.softDelete(id: b.id, ttl: .zero, purge: true)
        #expect(purged.expiresAt == now)
        // Purged (expiresAt <= now) buffers are gone for state changes.
        let gone = await #expect(throws: TygerControlPlaneError.self) { try await m.restore(id: b.id) }
        #expect(gone?.code == .notFound)
        let missing = await #expect(throws: TygerControlPlaneError.self) { try await m.softDelete(id: "nope") }
        #expect(missing?.code == .notFound)
    }

    @Test(arguments: RepositoryKind.available)
    func bulkOperationsReturnCounts(kind: RepositoryKind) async throws {
        let (m, dir) = try await manager(kind)
        defer { _ = dir }
        for i in 0..<5 { _ = try await m.create(Buffer(tags: ["batch": "x", "i": "\(i)"])) }
        _ = try await m.create(Buffer(tags: ["batch": "y"]))
        #expect(try await m.count(BufferFilter(tags: ["batch": "x"])) == 5)
        #expect(try await m.softDelete(matching: BufferFilter(tags: ["batch": "x"], excludeTags: ["i": "0"])) == 4)
        #expect(try await m.count(BufferFilter(tags: ["batch": "x"], softDeleted: true)) == 4)
        #expect(try await m.count(BufferFilter(tags: ["batch": "x"], softDeleted: nil)) == 5)
        #expect(try await m.softDelete(matching: BufferFilter(tags: ["batch": "x"])) == 1)
        #expect(try await m.restore(matching: BufferFilter(tags: ["batch": "x"], excludeTags: ["i": "1"])) == 4)
        #expect(try await m.softDelete(matching: BufferFilter(), purge: true) == 1)
        // The purged buffer expired now: not counted, not restorable.
        #expect(try await m.count(BufferFilter(softDeleted: true)) == 0)
        #expect(try await m.restore(matching: BufferFilter()) == 0)
    }

    @Test func updateChecksIDAndETag() async throws {
        let (m, _) = try await manager(.inMemory)
        let b = try await m.create(Buffer(tags: ["a": "1"]))
        let mismatch = await #expect(throws: TygerControlPlaneError.self) {
            try await m.update(id: b.id, BufferUpdate(id: "other"), ifMatch: nil)
        }
        #expect(mismatch?.code == .badRequest)
        let updated = try await m.update(id: b.id, BufferUpdate(id: b.id, tags: ["b": "2"]), ifMatch: "\"\(b.eTag)\"")
        #expect(updated.tags == ["b": "2"])
        await expectPrecondition("ETag does not match") {
            try await m.update(id: b.id, BufferUpdate(tags: [:]), ifMatch: b.eTag)
        }
        #expect(try await m.update(id: b.id, BufferUpdate(), ifMatch: "*").tags.isEmpty)
    }

    @Test func accessChecksTTLAndContainer() async throws {
        let (m, _) = try await manager(.inMemory)
        let b = try await m.create(Buffer())
        let access = try await m.access(id: b.id, writeable: true, preferTCP: true, ttl: .seconds(30))
        #expect(access.uri == "memory://buffers/\(b.id)?writeable=true&ttl=30&tcp=true")
        #expect(try await m.access(id: b.id, writeable: false).uri.contains("ttl=3600"))
        for ttl: Duration in [.seconds(29), .seconds(3601)] {
            let error = await #expect(throws: TygerControlPlaneError.self) {
                try await m.access(id: b.id, writeable: false, ttl: ttl)
            }
            #expect(error?.code == .invalidInput)
            #expect(error?.message == "ttl must be between 00:00:30 and 01:00:00")
        }
        let missing = await #expect(throws: TygerControlPlaneError.self) {
            try await m.access(id: "nope", writeable: false)
        }
        #expect(missing?.code == .notFound)
    }

    @Test func listValidatesLimitAndToken() async throws {
        let (m, _) = try await manager(.inMemory)
        for _ in 0..<3 {
            _ = try await m.create(Buffer())
            clock.advance(by: .seconds(1))
        }
        let negative = await #expect(throws: TygerControlPlaneError.self) {
            try await m.list(BufferFilter(), limit: -1, continuationToken: nil)
        }
        #expect(negative?.message == "Limit must be a non-negative integer.")
        let badToken = await #expect(throws: TygerControlPlaneError.self) {
            try await m.list(BufferFilter(), limit: 1, continuationToken: "!!notatoken")
        }
        #expect(badToken?.message == "Invalid continuation token.")
        #expect(try await m.list(BufferFilter(), limit: 0, continuationToken: nil).buffers.isEmpty)
        let first = try await m.list(BufferFilter(), limit: 2, continuationToken: nil)
        #expect(first.buffers.count == 2)
        guard let token = first.continuationToken else {
            Issue.record("the first of two pages has no continuation token")
            return
        }
        let second = try await m.list(BufferFilter(), limit: 2, continuationToken: token)
        #expect(second.buffers.count == 1)
        #expect(second.continuationToken == nil)
        #expect(try await m.list(BufferFilter(), limit: 10_000, continuationToken: nil).buffers.count == 3)
    }

    private func expectPrecondition(
        _ message: String,
        _ body: () async throws -> some Sendable,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        do {
            _ = try await body()
            Issue.record("expected 412 \(message)", sourceLocation: sourceLocation)
        } catch let error as TygerControlPlaneError {
            #expect(error.code == .preconditionFailed, sourceLocation: sourceLocation)
            #expect(error.message == message, sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }
}

struct BufferExpiryTests {
    let clock = ManualWallClock()
    let storage = InMemoryBufferStorageProvider()
    let logger = Logger(label: "test")

    @Test(arguments: RepositoryKind.available)
    func expiryPassSoftDeletesThenPurges(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        let m = BufferManager(
            repository: repo,
            storage: storage,
            configuration: .init(softDeletedLifetime: .seconds(600), expiryBatchSize: 2),
            clock: clock.wallClock
        )
        var ids: [String] = []
        for _ in 0..<5 {
            ids.append(try await m.create(Buffer(expiresAt: clock.now + 60)).id)
        }
        let keeper = try await m.create(Buffer())
        #expect(try await m.runExpiryPass(logger: logger) == ExpiryPassResult())

        clock.advance(by: .seconds(60))
        #expect(try await m.runExpiryPass(logger: logger) == ExpiryPassResult(softDeleted: 5))
        #expect(try await m.count(BufferFilter(softDeleted: true)) == 5)
        #expect(try await m.get(id: ids[0], softDeleted: true).expiresAt == RFC3339.normalize(clock.now + 600))

        clock.advance(by: .seconds(599))
        #expect(try await m.runExpiryPass(logger: logger) == ExpiryPassResult())
        clock.advance(by: .seconds(1))
        #expect(try await m.runExpiryPass(logger: logger) == ExpiryPassResult(purged: 5))
        #expect(storage.containerIDs == [keeper.id])
        #expect(try await m.count(BufferFilter(softDeleted: nil)) == 1)
    }

    @Test func purgeViaDeleteIsCompletedByExpiry() async throws {
        let m = BufferManager(
            repository: InMemoryBufferRepository(),
            storage: storage,
            clock: clock.wallClock
        )
        let b = try await m.create(Buffer())
        _ = try await m.softDelete(id: b.id)
        _ = try await m.softDelete(id: b.id, ttl: .zero, purge: true)
        storage.failNextOperation()
        #expect(try await m.runExpiryPass(logger: logger) == ExpiryPassResult(purged: 0, containerDeletionFailures: 1))
        // Before: the record went first and a container whose deletion failed stayed for good. Now both stay until
        // the next pass deletes the container, then the record.
        #expect(storage.containerIDs.contains(b.id))
        #expect(try await m.get(id: b.id, softDeleted: true).isSoftDeleted)
        #expect(try await m.runExpiryPass(logger: logger) == ExpiryPassResult(purged: 1))
        #expect(!storage.containerIDs.contains(b.id))
        await #expect(throws: TygerControlPlaneError.self) { try await m.get(id: b.id, softDeleted: true) }
        #expect(try await m.runExpiryPass(logger: logger) == ExpiryPassResult())
    }

    @Test func serviceRunsPassesUntilCancelled() async throws {
        let m = BufferManager(repository: InMemoryBufferRepository(), storage: storage, clock: clock.wallClock)
        let b = try await m.create(Buffer(expiresAt: clock.now + 1))
        clock.advance(by: .seconds(2))
        let service = BufferExpiryService(manager: m, interval: .milliseconds(10), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let deadline = ContinuousClock.now + .seconds(10)
            while try await m.count(BufferFilter(softDeleted: true)) == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            group.cancelAll()
            try await group.waitForAll()
        }
        #expect(try await m.get(id: b.id, softDeleted: true).isSoftDeleted)
    }
}
