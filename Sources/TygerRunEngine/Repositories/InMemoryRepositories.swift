public import Foundation
public import TygerModel

/// Codespecs in memory (tests, throwaway servers).
public actor InMemoryCodespecRepository: CodespecRepository {
    private var versions: [String: [Codespec]] = [:]

    public init() {}

    public func upsert(name: String, spec: Codespec, now: Date) async throws -> Codespec {
        switch CodespecUpsert(name: name, spec: spec, latest: versions[name]?.last, now: now) {
        case .existing(let latest): return latest
        case .next(let stored):
            versions[name, default: []].append(stored)
            return stored
        }
    }

    public func latest(name: String) async throws -> Codespec? { versions[name]?.last }

    public func get(name: String, version: Int) async throws -> Codespec? {
        guard let list = versions[name], version >= 1, version <= list.count else { return nil }
        return list[version - 1]
    }

    public func list(prefix: String?, limit: Int, after: String?) async throws -> [Codespec] {
        let names = versions.keys
            .filter { name in prefix.map { name.hasPrefix($0) } ?? true }
            .filter { name in after.map { Array($0.utf8).lexicographicallyPrecedes(Array(name.utf8)) } ?? true }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return names.prefix(max(0, limit)).compactMap { versions[$0]?.last }
    }
}

/// Runs in memory (tests, throwaway servers).
public actor InMemoryRunRepository: RunRepository {
    private var runs: [Int64: Run] = [:]
    private var nextId: Int64 = 1
    private var idempotencyKeys: [String: Int64] = [:]

    public init() {}

    public func create(_ run: Run, now: Date, idempotencyKey: String?) async throws -> Run {
        if let idempotencyKey, idempotencyKeys[idempotencyKey] != nil {
            throw TygerRunEngineError(.conflict, "The idempotency key was already used")
        }
        var stored = run
        stored.id = nextId
        stored.createdAt = now
        stored = stored.withComputedETag
        nextId += 1
        runs[nextId - 1] = stored
        if let idempotencyKey { idempotencyKeys[idempotencyKey] = nextId - 1 }
        return stored
    }

    public func run(idempotencyKey: String) async throws -> Run? {
        idempotencyKeys[idempotencyKey].flatMap { runs[$0] }
    }

    public func get(id: Int64) async throws -> Run? { runs[id] }

    @discardableResult
    public func update(_ run: Run) async throws -> Run {
        guard let id = run.id else { preconditionFailure("updating a run without an id") }
        var stored = run
        stored.tags = runs[id]?.tags ?? run.tags
        stored = stored.withComputedETag
        runs[id] = stored
        return stored
    }

    public func updateTags(id: Int64, tags: [String: String]?, ifMatch: String?) async throws -> Run {
        guard var stored = runs[id] else { throw TygerRunEngineError(.notFound, ErrorCode.notFoundMessage) }
        guard stored.matches(ifMatch: ifMatch) else {
            throw TygerRunEngineError(.preconditionFailed, "The ETag does not match")
        }
        stored.tags = tags
        stored = stored.withComputedETag
        runs[id] = stored
        return stored
    }

    public func list(_ query: RunQuery) async throws -> [Run] {
        let sinceMicros = query.since.map(RunPosition.micros)
        return runs.values
            .filter { run in
                let position = RunPosition(run)
                if let sinceMicros, position.createdAtMicros <= sinceMicros { return false }
                if !query.statuses.isEmpty, !query.statuses.contains(run.status ?? .pending) { return false }
                if !query.tags.allSatisfy({ run.tags?[$0.key] == $0.value }) { return false }
                if let after = query.after, !position.isAfter(after) { return false }
                return true
            }
            .sorted { RunPosition($1).isAfter(RunPosition($0)) }
            .prefix(max(0, query.limit))
            .map { $0 }
    }

    public func counts(since: Date?, tags: [String: String]) async throws -> [RunStatus: Int] {
        let all = try await list(RunQuery(limit: Int.max, since: since, tags: tags))
        return Dictionary(grouping: all, by: { $0.status ?? .pending }).mapValues(\.count)
    }

    public func nonTerminal() async throws -> [Run] {
        runs.values.filter { !($0.status ?? .pending).isTerminal }.sorted { ($0.id ?? 0) < ($1.id ?? 0) }
    }
}
