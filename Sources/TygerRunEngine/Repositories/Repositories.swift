public import Foundation
public import TygerModel

/// Where codespecs are kept. Versions are immutable; a new version is made only when the spec changes.
public protocol CodespecRepository: Sendable {
    /// Stores `spec` as the next version of `name`, unless it is equivalent to the latest version, which is then
    /// returned unchanged (`Codespec.isEquivalent(to:)`).
    ///
    /// - Returns: The stored codespec with `name`, `version` and `createdAt` set.
    /// - Throws: `TygerRunEngineError` `.storage` when the database fails.
    func upsert(name: String, spec: Codespec, now: Date) async throws -> Codespec

    /// The latest version of `name`, or `nil`.
    func latest(name: String) async throws -> Codespec?

    /// Version `version` of `name`, or `nil`.
    func get(name: String, version: Int) async throws -> Codespec?

    /// The latest version of each codespec, by name in byte order, starting after `after`.
    ///
    /// - Parameters:
    ///   - prefix: Only names starting with this.
    ///   - limit: At most this many.
    ///   - after: The last name of the previous page.
    func list(prefix: String?, limit: Int, after: String?) async throws -> [Codespec]
}

/// Where runs are kept.
/// What storing a codespec under a name means, the same in every repository: the latest version when the new one
/// is equivalent to it (an unchanged codespec keeps its version), else the new one as the next version, named,
/// numbered and stamped.
public enum CodespecUpsert: Sendable {
    case existing(Codespec)
    case next(Codespec)

    public init(name: String, spec: Codespec, latest: Codespec?, now: Date) {
        if let latest, latest.isEquivalent(to: spec) {
            self = .existing(latest)
            return
        }
        var stored = spec
        stored.name = name
        stored.version = (latest?.version ?? 0) + 1
        stored.createdAt = now
        self = .next(stored)
    }
}

/// Where the run engine keeps its codespecs and runs: `SQLiteRunEngineStore`, or a shared database's store.
public protocol RunEngineStore: Sendable {
    var codespecs: any CodespecRepository { get }
    var runs: any RunRepository { get }
    /// How the servers sharing this store divide the runs; `nil` (the default) for a store of one server.
    var coordination: (any RunCoordination)? { get }
}

extension RunEngineStore {
    public var coordination: (any RunCoordination)? { nil }
}

/// Several servers on one database: each run is supervised by the server that created it (its owner), servers show
/// they are alive by a heartbeat, the runs of a server that stopped beating are taken over (and failed, their
/// processes being out of reach) by exactly one other server, and cancel requests reach the owner through the
/// database.
///
/// The store knows which server it serves (``instance``): runs it creates are owned by that server.
public protocol RunCoordination: Sendable {
    /// This server's instance ID.
    var instance: String { get }

    /// Records that this server is alive at `now`, reachable at `endpoint` (its TCP listener's URL) when it has one.
    func heartbeat(now: Date, endpoint: String?) async throws

    /// The endpoint of the live server (beaten since `staleBefore`) other than this one that owns run `id`, when it
    /// has one.
    func ownerEndpoint(ofRun id: Int64, staleBefore: Date) async throws -> String?

    /// The non-terminal runs this server owns (its leftovers after a restart, and its live runs).
    func ownedNonTerminal() async throws -> [Run]

    /// Takes over the non-terminal runs whose owner has not beaten since `staleBefore`, atomically: each such run is
    /// returned to one server only, which becomes its owner. Each comes with its previous owner.
    func claimAbandoned(staleBefore: Date) async throws -> [(run: Run, previousOwner: String)]

    /// The owner of run `id` when it is another server that beat since `staleBefore`; `nil` when this server owns
    /// it, or its owner stopped.
    func liveOtherOwner(ofRun id: Int64, staleBefore: Date) async throws -> String?

    /// Those of `ids` (runs this server supervises) that another server has taken over meanwhile.
    func takenOver(among ids: [Int64]) async throws -> [Int64]

    /// Asks the owner of run `id` to cancel it.
    func requestCancel(runId: Int64, now: Date) async throws

    /// The runs of this server whose cancel was requested through ``requestCancel(runId:now:)`` since the last call.
    func takeCancelRequests() async throws -> [Int64]

    /// Stores `bytes` of run `runId`'s log at byte `offset` (the owner ships its log as it grows; a piece already
    /// stored at that offset is kept).
    func appendLog(runId: Int64, offset: Int64, bytes: [UInt8]) async throws

    /// The stored bytes of run `runId`'s log from byte `offset` on, up to about `limit` bytes (whole pieces).
    func log(runId: Int64, from offset: Int64, limit: Int) async throws -> [UInt8]

    /// Whether ``listen(_:)`` delivers changes: the loops that follow the database then look only now and then, in
    /// case a notice was lost, and are woken by the notices otherwise.
    var notifies: Bool { get }

    /// Calls `changed` with each change any server on the database commits (cancel requests, run states, log
    /// pieces), as soon as it is committed, until the calling task is cancelled. A notice can be lost (the
    /// listening connection breaks and is made again): callers still look now and then.
    func listen(_ changed: @escaping @Sendable (CoordinationChange) -> Void) async
}

extension RunCoordination {
    public var notifies: Bool { false }
    public func listen(_ changed: @escaping @Sendable (CoordinationChange) -> Void) async {}
}

/// A change a server committed to the shared database, as ``RunCoordination/listen(_:)`` tells it.
public enum CoordinationChange: Sendable, Hashable {
    /// A cancel of the run was requested (``RunCoordination/requestCancel(runId:now:)``).
    case cancelRequested(Int64)
    /// The run's stored state changed.
    case runChanged(Int64)
    /// A piece of the run's log was stored (``RunCoordination/appendLog(runId:offset:bytes:)``).
    case logAppended(Int64)

    /// The change as a notice's text: `cancel:ID`, `run:ID`, `log:ID`.
    public var payload: String {
        switch self {
        case .cancelRequested(let id): "cancel:\(id)"
        case .runChanged(let id): "run:\(id)"
        case .logAppended(let id): "log:\(id)"
        }
    }

    /// The change a notice's text stands for; `nil` for any other text.
    public init?(payload: String) {
        let parts = payload.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let id = Int64(parts[1]) else { return nil }
        switch parts[0] {
        case "cancel": self = .cancelRequested(id)
        case "run": self = .runChanged(id)
        case "log": self = .logAppended(id)
        default: return nil
        }
    }
}

public protocol RunRepository: Sendable {
    /// Inserts a run, assigning its `id` (increasing from 1), `createdAt` (`now`) and `eTag`.
    ///
    /// - Parameter idempotencyKey: When set, remembered with the run in the same transaction: a later
    ///   ``run(idempotencyKey:)`` finds it. A key already taken throws `.conflict`.
    func create(_ run: Run, now: Date, idempotencyKey: String?) async throws -> Run

    /// The run created with `idempotencyKey`, or `nil`.
    func run(idempotencyKey: String) async throws -> Run?

    /// The run with `id`, or `nil`.
    func get(id: Int64) async throws -> Run?

    /// Replaces the stored run with the same `id`, except its tags, which only ``updateTags(id:tags:ifMatch:)``
    /// changes after creation (so a supervisor persisting its copy never undoes a tag update).
    ///
    /// - Returns: The run as stored, with the stored tags and a fresh `eTag`.
    /// - Precondition: `run.id` is set.
    @discardableResult
    func update(_ run: Run) async throws -> Run

    /// Replaces the tags of run `id` when `ifMatch` matches its ETag (``Run/matches(ifMatch:)``), atomically.
    ///
    /// - Returns: The run as stored, with a fresh `eTag`.
    /// - Throws: `TygerRunEngineError` `.notFound`, or `.preconditionFailed` when the ETag does not match.
    func updateTags(id: Int64, tags: [String: String]?, ifMatch: String?) async throws -> Run

    /// Runs newest first (createdAt desc, id desc) matching `query`.
    func list(_ query: RunQuery) async throws -> [Run]

    /// The number of runs per status, created after `since`, with all of `tags`.
    func counts(since: Date?, tags: [String: String]) async throws -> [RunStatus: Int]

    /// Every run whose status is not terminal (for restart recovery).
    func nonTerminal() async throws -> [Run]
}

/// A filter and page of `RunRepository.list`.
public struct RunQuery: Sendable, Hashable {
    /// At most this many runs.
    public var limit: Int
    /// Only runs created strictly after this.
    public var since: Date?
    /// Only runs in one of these statuses (empty: any).
    public var statuses: Set<RunStatus>
    /// Only runs having every one of these tags.
    public var tags: [String: String]
    /// Only runs after this position (the last run of the previous page).
    public var after: RunPosition?

    public init(
        limit: Int = 20,
        since: Date? = nil,
        statuses: Set<RunStatus> = [],
        tags: [String: String] = [:],
        after: RunPosition? = nil
    ) {
        self.limit = limit
        self.since = since
        self.statuses = statuses
        self.tags = tags
        self.after = after
    }
}

/// A run's place in the newest-first order: creation time (microseconds) and id.
public struct RunPosition: Sendable, Hashable, Codable {
    public var createdAtMicros: Int64
    public var id: Int64

    public init(createdAtMicros: Int64, id: Int64) {
        self.createdAtMicros = createdAtMicros
        self.id = id
    }

    /// The position of `run` (which must have been created).
    public init(_ run: Run) {
        self.init(createdAtMicros: Self.micros(run.createdAt ?? Date(timeIntervalSince1970: 0)), id: run.id ?? 0)
    }

    static func micros(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down)) }

    /// Whether `self` comes after `other` in the newest-first order.
    func isAfter(_ other: RunPosition) -> Bool {
        createdAtMicros < other.createdAtMicros || (createdAtMicros == other.createdAtMicros && id < other.id)
    }

    /// The opaque continuation token (z-base-32 of `[createdAtMicros,id]`, like upstream's tokens).
    public var token: String { ZBase32.encode(Array("[\(createdAtMicros),\(id)]".utf8)) }

    /// Parses a continuation token.
    /// - Throws: `TygerRunEngineError` `.invalidInput` "Invalid continuation token."
    public init(token: String) throws {
        guard let bytes = ZBase32.decode(token), let text = String(validating: bytes, as: UTF8.self),
            text.hasPrefix("["), text.hasSuffix("]")
        else { throw TygerRunEngineError.invalid("Invalid continuation token.") }
        let parts = text.dropFirst().dropLast().split(separator: ",")
        guard parts.count == 2, let c = Int64(parts[0]), let i = Int64(parts[1]) else {
            throw TygerRunEngineError.invalid("Invalid continuation token.")
        }
        self.init(createdAtMicros: c, id: i)
    }
}

/// z-base-32 (the alphabet upstream's continuation tokens use).
enum ZBase32 {
    static let alphabet = Array("ybndrfg8ejkmcpqxot1uwisza345h769".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var buffer = 0
        var bits = 0
        for b in bytes {
            buffer = (buffer << 8) | Int(b)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = 0
        var bits = 0
        for c in text.utf8 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            buffer = ((buffer << 5) | v) & 0xFFFF
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> (bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        return out
    }
}

/// Codespec names as continuation tokens (z-base-32 of `["name"]`).
public enum CodespecContinuation {
    public static func token(after name: String) -> String { ZBase32.encode(Array("[\"\(name)\"]".utf8)) }

    /// - Throws: `TygerRunEngineError` `.invalidInput` "Invalid continuation token."
    public static func name(fromToken token: String) throws -> String {
        guard let bytes = ZBase32.decode(token), let text = String(validating: bytes, as: UTF8.self),
            text.hasPrefix("[\""), text.hasSuffix("\"]"), text.count >= 4
        else { throw TygerRunEngineError.invalid("Invalid continuation token.") }
        return String(text.dropFirst(2).dropLast(2))
    }
}
