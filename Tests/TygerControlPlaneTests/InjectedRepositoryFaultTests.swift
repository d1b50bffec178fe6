import Foundation
import Logging
import Synchronization
import Testing
import TygerControlPlane
import TygerModel

/// A `BufferRepository` that passes every call to a real one except the Nth, which throws (SQLite's
/// fault-injection method, for the metadata store).
final class FaultInjectingBufferRepository: BufferRepository {
    struct InjectedFault: Error {}

    private let base: any BufferRepository
    private let failAt: Int
    private let calls = Mutex(0)

    init(_ base: any BufferRepository, failAt: Int) {
        self.base = base
        self.failAt = failAt
    }

    /// Whether the fault was reached.
    var injected: Bool { calls.withLock { $0 >= failAt } }

    private func enter() throws {
        let n = calls.withLock {
            $0 += 1
            return $0
        }
        if n == failAt { throw InjectedFault() }
    }

    func create(_ record: BufferRecord) async throws {
        try enter()
        try await base.create(record)
    }
    func get(id: String, softDeleted: Bool) async throws -> BufferRecord? {
        try enter()
        return try await base.get(id: id, softDeleted: softDeleted)
    }
    func list(_ filter: BufferFilter, limit: Int, after: BufferCursor?) async throws -> [BufferRecord] {
        try enter()
        return try await base.list(filter, limit: limit, after: after)
    }
    func count(_ filter: BufferFilter) async throws -> Int {
        try enter()
        return try await base.count(filter)
    }
    func update(
        id: String,
        softDeleted: Bool,
        ifMatch: String?,
        expiresAt: Date?,
        tags: [String: String]
    )
        async throws -> BufferChangeOutcome
    {
        try enter()
        return try await base.update(
            id: id,
            softDeleted: softDeleted,
            ifMatch: ifMatch,
            expiresAt: expiresAt,
            tags: tags
        )
    }
    func changeState(id: String, _ change: BufferStateChange, now: Date) async throws -> BufferChangeOutcome {
        try enter()
        return try await base.changeState(id: id, change, now: now)
    }
    func changeStates(matching filter: BufferFilter, _ change: BufferStateChange, now: Date) async throws -> Int {
        try enter()
        return try await base.changeStates(matching: filter, change, now: now)
    }
    func softDeleteExpired(now: Date, newExpiresAt: Date, limit: Int) async throws -> [String] {
        try enter()
        return try await base.softDeleteExpired(now: now, newExpiresAt: newExpiresAt, limit: limit)
    }
    func purgeable(now: Date, limit: Int) async throws -> [String] {
        try enter()
        return try await base.purgeable(now: now, limit: limit)
    }
    func purge(ids: [String], now: Date) async throws -> [String] {
        try enter()
        return try await base.purge(ids: ids, now: now)
    }
    func writerLease(bufferId: String) async throws -> BufferWriterLease? {
        try enter()
        return try await base.writerLease(bufferId: bufferId)
    }
    func changeWriterLease(
        bufferId: String,
        leaseId: String,
        _ change: BufferWriterLeaseChange,
        now: Date
    ) async throws -> BufferWriterLeaseOutcome {
        try enter()
        return try await base.changeWriterLease(bufferId: bufferId, leaseId: leaseId, change, now: now)
    }
}

/// An error injected at each repository call of a buffer workload in turn. Every failure reaches the caller as a
/// `TygerControlPlaneError` (`databaseFailure`, a 500 with the envelope, never a crash); a call that failed changed
/// nothing; every call that succeeded is visible afterwards; the next call after the fault works.
@Suite struct InjectedRepositoryFaultTests {
    @Test(arguments: RepositoryKind.available)
    func faultInEachRepositoryCall(kind: RepositoryKind) async throws {
        var n = 1
        while true {
            let (real, directory) = try await kind.make()
            defer { _ = directory }
            let faulty = FaultInjectingBufferRepository(real, failAt: n)
            let clock = ManualWallClock()
            let manager = BufferManager(
                repository: faulty,
                storage: InMemoryBufferStorageProvider(),
                clock: clock.wallClock
            )
            var created: [String: Bool] = [:]  // id -> soft-deleted
            var failures = 0
            func step(_ body: () async throws -> Void) async {
                do { try await body() } catch {
                    failures += 1
                    #expect(
                        (error as? TygerControlPlaneError)?.code == .databaseFailure,
                        "fault at call \(n): \(error)"
                    )
                }
            }
            for i in 0..<3 {
                await step {
                    let record = try await manager.create(Buffer(id: "", tags: ["i": "\(i)"]))
                    created[record.id] = false
                }
            }
            for id in created.keys.sorted() {
                await step { _ = try await manager.get(id: id) }
                await step { _ = try await manager.update(id: id, BufferUpdate(tags: ["u": "1"]), ifMatch: nil) }
            }
            if let id = created.keys.sorted().last {
                await step { _ = try await manager.acquireWriterLease(id: id, leaseId: "w") }
                await step { _ = try await manager.renewWriterLease(id: id, leaseId: "w") }
                await step { _ = try await manager.writeState(id: id) }
                await step { _ = try await manager.endWrite(id: id, leaseId: "w", state: .complete) }
            }
            if let id = created.keys.sorted().first {
                await step {
                    _ = try await manager.softDelete(id: id)
                    created[id] = true
                }
            }
            await step { _ = try await manager.list(BufferFilter(), limit: 10, continuationToken: nil) }
            await step { _ = try await manager.count(BufferFilter()) }
            clock.advance(by: .seconds(400 * 86_400))
            await step { _ = try await manager.runExpiryPass(logger: Logger(label: "test")) }
            // What succeeded is there (unless the expiry pass moved it on), and the manager still works.
            for (id, deleted) in created {
                let active = try await real.get(id: id, softDeleted: false)
                let soft = try await real.get(id: id, softDeleted: true)
                #expect(active != nil || soft != nil || deleted, "fault at call \(n): buffer \(id) lost")
            }
            let reached = faulty.injected
            if reached {  // past the fault: the same manager goes on working
                let after = try await manager.create(Buffer(id: "", tags: [:]))
                #expect(try await real.get(id: after.id, softDeleted: false) != nil)
            }
            #expect(failures <= 1, "fault at call \(n): \(failures) failures from one injected fault")
            if !reached { break }
            n += 1
        }
    }
}
