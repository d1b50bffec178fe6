import Foundation
import Testing
import TygerModel
import TygerPostgres
import TygerTestSupport

@testable import TygerRunEngine

/// Two servers (two pools) on one database: what they decide together. The behaviour every run store shares is
/// in `RunRepositoryTests` and `EngineModelTests`.
@Suite(.enabled(if: PostgresTestDatabase.adminURL != nil))
struct PostgresRunStoreTests {
    /// A run created at the same moment on two servers with one idempotency key: one run, the other refused.
    @Test func oneIdempotencyKeyMakesOneRunAcrossServers() async throws {
        let one = try await PostgresTestDatabase.make()
        let two = try await PostgresDatabase(url: one.url, logger: quietLogger)
        defer { two.shutdown() }
        let stores = [PostgresRunEngineStore(database: one.database), PostgresRunEngineStore(database: two)]
        for round in 0..<10 {
            // nil: created; else the error's code.
            let outcomes = await withTaskGroup(of: TygerRunEngineError.Code?.self) { group in
                for store in stores {
                    group.addTask {
                        do {
                            _ = try await store.runs.create(
                                Run(job: JobRunCodeTarget(codespec: .named("c"))),
                                now: Date(),
                                idempotencyKey: "key-\(round)"
                            )
                            return nil
                        } catch let error as TygerRunEngineError {
                            return error.code
                        } catch {
                            return .storage
                        }
                    }
                }
                var all: [TygerRunEngineError.Code?] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            // The second is told the key was used (a 409 to its client), not a database error.
            #expect(outcomes.filter { $0 == nil }.count == 1, "round \(round): \(outcomes)")
            #expect(outcomes.filter { $0 == .conflict }.count == 1, "round \(round): \(outcomes)")
            #expect(try await stores[1].runs.run(idempotencyKey: "key-\(round)") != nil)
        }
    }

    /// Two servers adding the same new codespec version at once: one version, not two.
    @Test func concurrentUpsertsOfOneCodespecMakeOneVersion() async throws {
        let one = try await PostgresTestDatabase.make()
        let two = try await PostgresDatabase(url: one.url, logger: quietLogger)
        defer { two.shutdown() }
        let stores = [PostgresRunEngineStore(database: one.database), PostgresRunEngineStore(database: two)]
        for round in 0..<10 {
            let spec = job(["echo", "\(round)"])
            let versions = try await withThrowingTaskGroup(of: Int.self) { group in
                for store in stores {
                    group.addTask {
                        try await store.codespecs.upsert(name: "shared", spec: spec, now: Date()).version ?? 0
                    }
                }
                var all: [Int] = []
                for try await version in group { all.append(version) }
                return all
            }
            #expect(Set(versions) == [round + 1], "round \(round): versions \(versions)")
        }
    }
}
