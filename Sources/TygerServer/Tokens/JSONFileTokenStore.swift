import Foundation
private import Synchronization
public import TygerModel

#if canImport(Glibc)
private import Glibc
#endif

/// Bearer tokens in a JSON file (`<dataDir>/tokens.json`, mode 0600): an array of `AccessTokenRecord`s.
///
/// `tyger-server token create/revoke` and a running server share the file: changes take an exclusive `flock` on
/// `<file>.lock` and replace the file atomically; the server re-reads it when its inode, size or mtime changed,
/// so a new or revoked token takes effect on the next request.
public final class JSONFileTokenStore: TokenStore {
    /// The token file.
    public let path: String
    private let clock: WallClock
    private let cache = Mutex<(version: [Int64], records: [AccessTokenRecord])?>(nil)

    /// A store over `path` (created on the first `create`).
    public init(path: String, clock: WallClock = .system) {
        self.path = path
        self.clock = clock
    }

    public func create(name: String) async throws -> IssuedToken {
        let issued = AccessTokens.generate(name: name, now: clock.seconds())
        try modify { $0.append(issued.record) }
        return issued
    }

    public func list() async throws -> [AccessTokenRecord] { try load() }

    public func revoke(id: String) async throws -> Bool {
        var found = false
        try modify { records in
            let before = records.count
            records.removeAll { $0.id == id }
            found = records.count != before
        }
        return found
    }

    public func authenticate(_ token: String) async throws -> AccessTokenRecord? {
        AccessTokens.find(token, in: try load())
    }

    private func load() throws -> [AccessTokenRecord] {
        guard let version = PrivateFile.version(path) else { return [] }
        if let cached = cache.withLock({ $0 }), cached.version == version { return cached.records }
        let records = try readRecords()
        cache.withLock { $0 = (version, records) }
        return records
    }

    private func readRecords() throws -> [AccessTokenRecord] {
        guard let bytes = try PrivateFile.read(path) else { return [] }
        do {
            return try TygerJSON.makeDecoder().decode([AccessTokenRecord].self, from: Data(bytes))
        } catch {
            throw TygerServerError(.tokenStore, "the token file \(path) is not a JSON array of tokens", cause: error)
        }
    }

    private func modify(_ change: (inout [AccessTokenRecord]) -> Void) throws {
        let lockPath = path + ".lock"
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try PrivateFile.makeDirectory(String(path[..<slash]), mode: 0o700)
        }
        let fd = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw TygerServerError(.tokenStore, "cannot open \(lockPath)", cause: PrivateFile.failure("open", lockPath))
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else {
            throw TygerServerError(
                .tokenStore,
                "cannot lock \(lockPath)",
                cause: PrivateFile.failure("flock", lockPath)
            )
        }
        var records = try readRecords()
        change(&records)
        let data: Data
        do {
            data = try TygerJSON.makePrettyEncoder().encode(records)
        } catch {
            throw TygerServerError(.tokenStore, "cannot encode tokens", cause: error)
        }
        try PrivateFile.replace(path, Array(data) + [0x0A], mode: 0o600)
    }
}

/// Tokens in memory, for tests and embedders that keep tokens elsewhere.
public final class InMemoryTokenStore: TokenStore {
    private let records = Mutex<[AccessTokenRecord]>([])
    private let clock: WallClock

    /// An empty store.
    public init(clock: WallClock = .system) { self.clock = clock }

    public func create(name: String) async throws -> IssuedToken {
        let issued = AccessTokens.generate(name: name, now: clock.seconds())
        records.withLock { $0.append(issued.record) }
        return issued
    }

    public func list() async throws -> [AccessTokenRecord] { records.withLock { $0 } }

    public func revoke(id: String) async throws -> Bool {
        records.withLock { list in
            let before = list.count
            list.removeAll { $0.id == id }
            return list.count != before
        }
    }

    public func authenticate(_ token: String) async throws -> AccessTokenRecord? {
        AccessTokens.find(token, in: records.withLock { $0 })
    }
}
