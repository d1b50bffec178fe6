import Foundation
import Testing
import TygerControlPlane
import TygerTestSupport

/// One behavioural suite, run against every ``BufferRepository`` implementation.
struct BufferRepositoryTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    private func record(
        _ id: String,
        at offset: Double,
        softDeleted: Bool = false,
        expiresIn: Double? = nil,
        tags: [String: String] = [:]
    ) -> BufferRecord {
        BufferRecord(
            id: id,
            location: "local",
            createdAt: t0 + offset,
            isSoftDeleted: softDeleted,
            expiresAt: expiresIn.map { t0 + $0 },
            tags: tags
        )
    }

    @Test(arguments: RepositoryKind.available)
    func createGetRoundTripsAllFields(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        let r = BufferRecord(
            id: "aaaa",
            location: "local",
            createdAt: Date(timeIntervalSince1970: 1_800_000_000.123456),
            expiresAt: Date(timeIntervalSince1970: 1_800_000_100.000001),
            tags: ["a": "1", "b": ""]
        )
        try await repo.create(r)
        let fetched = try #require(try await repo.get(id: "aaaa", softDeleted: false))
        #expect(fetched == r)
        #expect(fetched.eTag == r.eTag)
        #expect(try await repo.get(id: "aaaa", softDeleted: true) == nil)
        #expect(try await repo.get(id: "missing", softDeleted: false) == nil)
        await #expect(throws: TygerControlPlaneError.self) { try await repo.create(r) }
    }

    @Test(arguments: RepositoryKind.available)
    func listOrdersByCreatedAtThenIDDescendingAndPagesWithCursor(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        // Two buffers share a creation time, so the id tiebreak matters.
        for (id, offset) in [("b1", 1.0), ("b2", 2.0), ("b3", 2.0), ("b4", 3.0), ("b5", 0.5)] {
            try await repo.create(record(id, at: offset))
        }
        let all = try await repo.list(BufferFilter(), limit: 10, after: nil).map(\.id)
        #expect(all == ["b4", "b3", "b2", "b1", "b5"])
        var seen: [String] = []
        var cursor: BufferCursor?
        while true {
            let page = try await repo.list(BufferFilter(), limit: 2, after: cursor)
            seen += page.map(\.id)
            guard let last = page.last, page.count == 2 else { break }
            cursor = BufferCursor(after: last)
        }
        #expect(seen == all)
        #expect(try await repo.list(BufferFilter(), limit: 0, after: nil).isEmpty)
    }

    @Test(arguments: RepositoryKind.available)
    func filtersByTagsExcludeTagsAndState(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        try await repo.create(record("x1", at: 1, tags: ["env": "prod", "team": "a"]))
        try await repo.create(record("x2", at: 2, tags: ["env": "prod", "team": "b"]))
        try await repo.create(record("x3", at: 3, tags: ["env": "dev", "team": "a"]))
        try await repo.create(record("x4", at: 4, softDeleted: true, tags: ["env": "prod"]))
        try await repo.create(record("x5", at: 5, expiresIn: -1, tags: ["env": "prod"]))

        func ids(_ f: BufferFilter) async throws -> Set<String> {
            Set(try await repo.list(f, limit: 100, after: nil).map(\.id))
        }
        #expect(try await ids(BufferFilter(tags: ["env": "prod"])) == ["x1", "x2", "x5"])
        #expect(try await ids(BufferFilter(tags: ["env": "prod", "team": "a"])) == ["x1"])
        #expect(try await ids(BufferFilter(excludeTags: ["team": "a"])) == ["x2", "x5"])
        #expect(try await ids(BufferFilter(excludeTags: ["team": "a", "env": "prod"])) == [])
        #expect(try await ids(BufferFilter(softDeleted: true)) == ["x4"])
        #expect(try await ids(BufferFilter(softDeleted: nil)).count == 5)
        // liveAt hides expired buffers; list without it shows them (upstream visibility).
        #expect(try await ids(BufferFilter(tags: ["env": "prod"], liveAt: t0)) == ["x1", "x2"])
        #expect(try await repo.count(BufferFilter(tags: ["env": "prod"], liveAt: t0)) == 2)
        #expect(try await repo.count(BufferFilter(softDeleted: nil, liveAt: t0)) == 4)
        #expect(try await repo.count(BufferFilter(tags: ["nope": "1"])) == 0)
    }

    @Test(arguments: RepositoryKind.available)
    func updateReplacesTagsAndChecksETag(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        let r = record("u1", at: 1, tags: ["a": "1"])
        try await repo.create(r)
        let stale = r.eTag
        let outcome = try await repo.update(
            id: "u1",
            softDeleted: false,
            ifMatch: stale,
            expiresAt: t0 + 50,
            tags: ["b": "2"]
        )
        guard case .changed(let updated) = outcome else {
            Issue.record("expected change, got \(outcome)")
            return
        }
        #expect(updated.tags == ["b": "2"])
        #expect(updated.expiresAt == t0 + 50)
        #expect(try await repo.get(id: "u1", softDeleted: false) == updated)
        // The old ETag no longer matches.
        let mismatch = try await repo.update(id: "u1", softDeleted: false, ifMatch: stale, expiresAt: nil, tags: [:])
        guard case .eTagMismatch(let current) = mismatch else {
            Issue.record("expected mismatch")
            return
        }
        #expect(current == updated)
        // nil expiresAt keeps the expiry; no precondition.
        guard
            case .changed(let cleared) = try await repo.update(
                id: "u1",
                softDeleted: false,
                ifMatch: nil,
                expiresAt: nil,
                tags: [:]
            )
        else {
            Issue.record("expected change")
            return
        }
        #expect(cleared.tags.isEmpty)
        #expect(cleared.expiresAt == t0 + 50)
        #expect(
            try await repo.update(id: "u1", softDeleted: true, ifMatch: nil, expiresAt: nil, tags: [:]) == .notFound
        )
        #expect(
            try await repo.update(id: "zz", softDeleted: false, ifMatch: nil, expiresAt: nil, tags: [:]) == .notFound
        )
    }

    @Test(arguments: RepositoryKind.available)
    func changeStateHonoursStateAndExpiry(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        try await repo.create(record("s1", at: 1, tags: ["k": "v"]))
        try await repo.create(record("s2", at: 2, expiresIn: -10))
        let softDelete = BufferStateChange(fromSoftDeleted: false, toSoftDeleted: true, expiresAt: t0 + 100)
        guard case .changed(let deleted) = try await repo.changeState(id: "s1", softDelete, now: t0) else {
            Issue.record("expected change")
            return
        }
        #expect(deleted.isSoftDeleted && deleted.expiresAt == t0 + 100 && deleted.tags == ["k": "v"])
        #expect(try await repo.get(id: "s1", softDeleted: true) == deleted)
        guard case .wrongState = try await repo.changeState(id: "s1", softDelete, now: t0) else {
            Issue.record("expected wrong state")
            return
        }
        // Expired buffers count as nonexistent for state changes.
        #expect(try await repo.changeState(id: "s2", softDelete, now: t0) == .notFound)
        #expect(try await repo.changeState(id: "nope", softDelete, now: t0) == .notFound)
    }

    @Test(arguments: RepositoryKind.available)
    func bulkStateChangesCountOnlyMatchingLiveBuffersInState(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        try await repo.create(record("m1", at: 1, tags: ["g": "1"]))
        try await repo.create(record("m2", at: 2, tags: ["g": "1", "keep": "y"]))
        try await repo.create(record("m3", at: 3, tags: ["g": "2"]))
        try await repo.create(record("m4", at: 4, expiresIn: -1, tags: ["g": "1"]))
        try await repo.create(record("m5", at: 5, softDeleted: true, expiresIn: 100, tags: ["g": "1"]))
        let softDelete = BufferStateChange(fromSoftDeleted: false, toSoftDeleted: true, expiresAt: t0 + 10)
        let n = try await repo.changeStates(
            matching: BufferFilter(tags: ["g": "1"], excludeTags: ["keep": "y"]),
            softDelete,
            now: t0
        )
        #expect(n == 1)
        #expect(try await repo.get(id: "m1", softDeleted: true) != nil)
        let restore = BufferStateChange(fromSoftDeleted: true, toSoftDeleted: false, expiresAt: nil)
        #expect(try await repo.changeStates(matching: BufferFilter(tags: ["g": "1"]), restore, now: t0) == 2)
        #expect(try await repo.get(id: "m5", softDeleted: false)?.expiresAt == nil)
        #expect(try await repo.changeStates(matching: BufferFilter(), softDelete, now: t0) == 4)
    }

    @Test(arguments: RepositoryKind.available)
    func concurrentWritersDoNotLoseUpdates(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        let start = t0
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<40 {
                group.addTask {
                    try await repo.create(
                        BufferRecord(id: "c\(i)", location: "local", createdAt: start + Double(i), tags: ["i": "\(i)"])
                    )
                }
            }
            try await group.waitForAll()
        }
        let softDelete = BufferStateChange(fromSoftDeleted: false, toSoftDeleted: true, expiresAt: nil)
        let results = try await withThrowingTaskGroup(of: BufferChangeOutcome.self) { group in
            for _ in 0..<8 { group.addTask { try await repo.changeState(id: "c7", softDelete, now: start) } }
            return try await group.reduce(into: [BufferChangeOutcome]()) { $0.append($1) }
        }
        // Exactly one concurrent soft delete wins; the others see the new state.
        #expect(results.filter { if case .changed = $0 { true } else { false } }.count == 1)
        #expect(results.filter { if case .wrongState = $0 { true } else { false } }.count == 7)
        #expect(try await repo.count(BufferFilter(softDeleted: nil)) == 40)
    }

    @Test(arguments: RepositoryKind.available)
    func expiryQueries(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        try await repo.create(record("e1", at: 1, expiresIn: -5, tags: ["t": "1"]))
        try await repo.create(record("e2", at: 2, expiresIn: 0))
        try await repo.create(record("e3", at: 3, expiresIn: 5))
        try await repo.create(record("e4", at: 4))
        try await repo.create(record("d1", at: 5, softDeleted: true, expiresIn: -1, tags: ["t": "1"]))
        try await repo.create(record("d2", at: 6, softDeleted: true, expiresIn: 1))

        #expect(try await repo.softDeleteExpired(now: t0, newExpiresAt: t0 + 60, limit: 1).count == 1)
        #expect(try await repo.softDeleteExpired(now: t0, newExpiresAt: t0 + 60, limit: 10).count == 1)
        #expect(try await repo.get(id: "e1", softDeleted: true)?.expiresAt == t0 + 60)
        #expect(try await repo.get(id: "e2", softDeleted: true)?.expiresAt == t0 + 60)
        #expect(try await repo.get(id: "e3", softDeleted: false) != nil)

        #expect(try await repo.purgeable(now: t0, limit: 10) == ["d1"])
        #expect(try await repo.purge(ids: ["d1", "d2", "e3", "nope"], now: t0) == ["d1"])
        #expect(try await repo.get(id: "d1", softDeleted: true) == nil)
        #expect(try await repo.count(BufferFilter(tags: ["t": "1"], softDeleted: nil)) == 1)
        // Earliest expiry first: d2 (t0 + 1), then e1 and e2 (t0 + 60) by ID.
        #expect(try await repo.purgeable(now: t0 + 61, limit: 10) == ["d2", "e1", "e2"])
        #expect(try await repo.purgeable(now: t0 + 61, limit: 1) == ["d2"])
        #expect(try await repo.purge(ids: ["e2", "d2", "e1"], now: t0 + 61) == ["d2", "e1", "e2"])
        #expect(try await repo.count(BufferFilter(softDeleted: nil)) == 2)
    }
}

/// The writer lease, the same in every repository: one holder, renewals, the end of a write, and `abandoned` once
/// the lease ran out.
struct BufferWriterLeaseRepositoryTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test(arguments: RepositoryKind.available)
    func onlyAnAbandonedWriteIsResumedUnderANewLease(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        func change(
            _ id: String,
            _ c: BufferWriterLeaseChange,
            at t: Date,
            buffer: String = "b"
        ) async throws
            -> BufferWriterLeaseOutcome
        {
            try await repo.changeWriterLease(bufferId: buffer, leaseId: id, c, now: t)
        }
        guard case .granted(let first) = try await change("a", .acquire(until: t0 + 8), at: t0) else {
            Issue.record("the first writer did not get the lease")
            return
        }
        // While the writer's lease is live, a resume is refused; its own retry of a resume extends it.
        #expect(try await change("z", .resume(until: t0 + 9), at: t0 + 1) == .refused(first))
        // Once the lease ran out (the writer died), the write is abandoned and another writer takes it up.
        guard case .granted(let resumed) = try await change("z", .resume(until: t0 + 20), at: t0 + 10) else {
            Issue.record("the abandoned write was not resumed")
            return
        }
        #expect(resumed.leaseId == "z" && resumed.state(at: t0 + 11) == .writing)
        // The dead writer's lease is gone for good: it cannot renew it.
        #expect(try await change("a", .renew(until: t0 + 30), at: t0 + 11) == .refused(resumed))
        // Released without `.bufferend` is abandoned at once, and resumable at once.
        guard case .granted = try await change("z", .end(.abandoned), at: t0 + 12) else {
            Issue.record("the release was refused")
            return
        }
        guard case .granted(let again) = try await change("y", .resume(until: t0 + 30), at: t0 + 12) else {
            Issue.record("a released write was not resumed")
            return
        }
        guard case .granted(let ended) = try await change("y", .end(.complete), at: t0 + 13) else {
            Issue.record("the resumed write could not end")
            return
        }
        #expect(again.leaseId == ended.leaseId)
        // An ended write is final: no resume.
        #expect(try await change("x", .resume(until: t0 + 40), at: t0 + 14) == .refused(ended))
        // A buffer no lease covered (a writer without one, as upstream's) can be resumed.
        guard case .granted = try await change("w", .resume(until: t0 + 8), at: t0, buffer: "c") else {
            Issue.record("a write without a lease was not resumed")
            return
        }
    }

    @Test(arguments: RepositoryKind.available)
    func oneWriterHoldsTheLeaseUntilItEndsTheWrite(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        #expect(try await repo.writerLease(bufferId: "b") == nil)
        let renewBefore = try await repo.changeWriterLease(bufferId: "b", leaseId: "a", .renew(until: t0 + 8), now: t0)
        #expect(renewBefore == .none)
        guard
            case .granted(let lease) = try await repo.changeWriterLease(
                bufferId: "b",
                leaseId: "a",
                .acquire(until: t0 + 8),
                now: t0
            )
        else {
            Issue.record("the first writer did not get the lease")
            return
        }
        #expect(lease.state(at: t0) == .writing)
        #expect(try await repo.writerLease(bufferId: "b") == lease)
        // A second writer is refused; the holder's retry extends its lease.
        let second = try await repo.changeWriterLease(bufferId: "b", leaseId: "z", .acquire(until: t0 + 9), now: t0 + 1)
        #expect(second == .refused(lease))
        let retried = try await repo.changeWriterLease(
            bufferId: "b",
            leaseId: "a",
            .acquire(until: t0 + 9),
            now: t0 + 1
        )
        guard case .granted(let extended) = retried else {
            Issue.record("the holder's retry was refused: \(retried)")
            return
        }
        #expect(extended.expiresAt == t0 + 9)
        #expect(
            try await repo.changeWriterLease(bufferId: "b", leaseId: "z", .end(.failed), now: t0 + 2)
                == .refused(extended)
        )
        let ended = try await repo.changeWriterLease(bufferId: "b", leaseId: "a", .end(.complete), now: t0 + 2)
        guard case .granted(let complete) = ended else {
            Issue.record("ending the write was refused: \(ended)")
            return
        }
        #expect(complete.state(at: t0 + 100) == .complete)
        #expect(try await repo.writerLease(bufferId: "b")?.state(at: t0 + 100) == .complete)
        // Ended writes are final.
        #expect(
            try await repo.changeWriterLease(bufferId: "b", leaseId: "a", .renew(until: t0 + 20), now: t0 + 3)
                == .refused(complete)
        )
        #expect(
            try await repo.changeWriterLease(bufferId: "b", leaseId: "n", .acquire(until: t0 + 20), now: t0 + 3)
                == .refused(complete)
        )
    }

    @Test(arguments: RepositoryKind.available)
    func aLeaseThatRunsOutOrIsReleasedIsAbandoned(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        _ = try await repo.changeWriterLease(bufferId: "b", leaseId: "a", .acquire(until: t0 + 8), now: t0)
        #expect(try await repo.writerLease(bufferId: "b")?.state(at: t0 + 7) == .writing)
        #expect(try await repo.writerLease(bufferId: "b")?.state(at: t0 + 8) == .abandoned)
        // Too late to renew, to end, or for anyone else to start.
        for (id, change) in [
            ("a", BufferWriterLeaseChange.renew(until: t0 + 20)), ("a", .end(.complete)),
            ("z", .acquire(until: t0 + 20)),
        ] {
            guard
                case .refused(let lease) = try await repo.changeWriterLease(
                    bufferId: "b",
                    leaseId: id,
                    change,
                    now: t0 + 9
                )
            else {
                Issue.record("\(change) of \(id) was not refused")
                continue
            }
            #expect(lease.state(at: t0 + 9) == .abandoned)
        }
        _ = try await repo.changeWriterLease(bufferId: "c", leaseId: "a", .acquire(until: t0 + 8), now: t0)
        _ = try await repo.changeWriterLease(bufferId: "c", leaseId: "a", .end(.abandoned), now: t0 + 1)
        #expect(try await repo.writerLease(bufferId: "c")?.state(at: t0 + 1) == .abandoned)
    }

    @Test(arguments: RepositoryKind.available)
    func purgingABufferDeletesItsLease(kind: RepositoryKind) async throws {
        let (repo, dir) = try await kind.make()
        defer { _ = dir }
        try await repo.create(
            BufferRecord(id: "b", location: "local", createdAt: t0, isSoftDeleted: true, expiresAt: t0 + 1)
        )
        _ = try await repo.changeWriterLease(bufferId: "b", leaseId: "a", .acquire(until: t0 + 8), now: t0)
        #expect(try await repo.purge(ids: try await repo.purgeable(now: t0 + 2, limit: 10), now: t0 + 2) == ["b"])
        #expect(try await repo.writerLease(bufferId: "b") == nil)
    }
}

struct SQLiteMigrationTests {
    @Test func migratesFreshDatabaseAndReopensWithoutLosingData() async throws {
        let dir = TemporaryDirectory()
        let dataDir = URL(fileURLWithPath: dir.path).appendingPathComponent("nested/data")
        do {
            let repo = try SQLiteBufferRepository(directory: dataDir)
            #expect(try await repo.appliedMigrations() == SQLiteBufferRepository.knownMigrations)
            #expect(
                SQLiteBufferRepository.knownMigrations
                    == ["v1-buffers", "v2-buffers-expiry-index", "v3-buffer-writer-leases"]
            )
            try await repo.create(
                BufferRecord(id: "persist", location: "local", createdAt: Date(), tags: ["k": "v"])
            )
        }
        #expect(FileManager.default.fileExists(atPath: dataDir.appendingPathComponent("control-plane.sqlite").path))
        let reopened = try SQLiteBufferRepository(directory: dataDir)
        #expect(try await reopened.appliedMigrations() == SQLiteBufferRepository.knownMigrations)
        #expect(try await reopened.get(id: "persist", softDeleted: false)?.tags == ["k": "v"])
    }

    @Test func unopenableDatabaseFailsWithDatabaseFailure() throws {
        let dir = TemporaryDirectory()
        let path = URL(fileURLWithPath: dir.path).appendingPathComponent("not-a-db").path
        try Data("this is not sqlite, just text that is long enough to be a header".utf8).write(
            to: URL(fileURLWithPath: path)
        )
        let error = #expect(throws: TygerControlPlaneError.self) { try SQLiteBufferRepository(path: path) }
        #expect(error?.code == .databaseFailure)
    }
}
