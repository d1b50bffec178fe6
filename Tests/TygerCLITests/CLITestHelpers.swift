import Foundation
import Testing
import TygerClient
import TygerTestSupport

/// A buffer ID: 16 random bytes in lowercase base32 without padding.
func isBufferID(_ text: String) -> Bool {
    text.utf8.count == 26 && text.allSatisfy { ("a"..."z").contains($0) || ("2"..."7").contains($0) }
}

/// RFC 3339 in UTC with a fraction of a second, as the server writes timestamps.
func isRFC3339WithFraction(_ text: String) -> Bool {
    text.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z/) != nil
}

/// Parses an RFC 3339 timestamp with or without a fraction.
func parseRFC3339(_ text: String) -> Date? {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = f.date(from: text) { return date }
    f.formatOptions = [.withInternetDateTime]
    return f.date(from: text)
}

/// A JSON object from a CLI's output.
func object(_ value: Any) throws -> [String: Any] {
    try #require(value as? [String: Any], "not a JSON object: \(value)")
}

/// A JSON array of objects from a CLI's output.
func objects(_ value: Any) throws -> [[String: Any]] {
    try #require(value as? [[String: Any]], "not a JSON array of objects: \(value)")
}

/// The `tags` of a buffer, `[:]` when it has none.
func tags(_ buffer: [String: Any]) -> [String: String] {
    buffer["tags"] as? [String: String] ?? [:]
}

/// The IDs of a list of buffers, in order.
func ids(_ buffers: [[String: Any]]) -> [String] {
    buffers.compactMap { $0["id"] as? String }
}

/// The output's stdout as one trimmed line.
extension ProcessResult {
    var line: String { stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// The stderr lines that are not progress or info logs.
    var errorLines: [Substring] {
        stderrText.split(separator: "\n").filter { !$0.contains(" INF ") && !$0.contains(" DBG ") }
    }
}

/// The SHA-256 of `tyger buffer gen SIZE`, computed once per size.
actor GeneratedDigests {
    static let shared = GeneratedDigests()
    private var digests: [String: String] = [:]

    func digest(of size: String) async throws -> String {
        if let d = digests[size] { return d }
        let result = try await runShell("$TYGER buffer gen \(size) | sha256sum", timeout: .seconds(120))
        guard result.exitCode == 0, let d = result.stdoutText.split(separator: " ").first else {
            throw TestSupportError("gen \(size) | sha256sum failed: \(result)")
        }
        digests[size] = String(d)
        return String(d)
    }
}

/// The first word of `sha256sum`'s output.
func shaOf(_ result: ProcessResult) -> String {
    String(result.stdoutText.split(separator: " ").first ?? "")
}

/// The suites that run `tyger` against live servers (embedded, socket, TCP, TLS). They run one test at a time:
/// each starts servers and pipes tens of MiB through debug builds, and in parallel they would load a 2-core machine
/// enough to upset the timing assertions of other suites.
@Suite(.serialized) struct LiveServerCLITests {}

/// What the embedded server of a test runs codespecs with. `docker` is there when `TYGER_TEST_DOCKER_HOST` names a
/// Docker Engine API: `tools/test` starts Podman's (`tools/container-engine`) and sets it.
enum TestExecutor: String, Sendable, CaseIterable, CustomStringConvertible {
    /// `postgres`: host processes, with buffers, codespecs and runs in a PostgreSQL database of the test's own; `s3`:
    /// host processes, with the blobs of buffers in a bucket of the test's own (SeaweedFS) and, where a PostgreSQL
    /// cluster runs, everything else in a database of its own: a shared deployment's parts together.
    /// `slurm`: batch jobs on the single-node cluster of `tools/slurm` (their agents move stored buffers).
    case process, docker, postgres, s3, slurm

    /// The container engine of the tests, if any.
    static var dockerHost: String? {
        guard let host = ProcessInfo.processInfo.environment["TYGER_TEST_DOCKER_HOST"], !host.isEmpty else {
            return nil
        }
        return host
    }

    /// The executors (and databases) a run-engine test runs on here.
    /// `TYGER_TEST_EXECUTORS` (comma-separated names) narrows them, to run one executor's tests alone.
    static var available: [TestExecutor] {
        var all: [TestExecutor] = [.process]
        if dockerHost != nil { all.append(.docker) }
        if PostgresTestDatabase.adminURL != nil { all.append(.postgres) }
        if S3TestStore.settings != nil { all.append(.s3) }
        if SlurmTestCluster.configuration != nil { all.append(.slurm) }
        guard let chosen = ProcessInfo.processInfo.environment["TYGER_TEST_EXECUTORS"], !chosen.isEmpty else {
            return all
        }
        let names = Set(chosen.split(separator: ",").map(String.init))
        return all.filter { names.contains($0.rawValue) }
    }

    /// `--blob-store` of a new bucket, the store's credentials, and a new database where PostgreSQL runs.
    private static func s3BlobStore() async throws -> (store: String, credentials: [String: String], database: String?)
    {
        let settings = try #require(S3TestStore.settings)
        let (bucket, endpoint) = try await settings.makeBucket("runs")
        let database = PostgresTestDatabase.adminURL == nil ? nil : try await PostgresTestDatabase.createEmpty()
        return ("s3://\(bucket)/buffers?endpoint=\(endpoint)", settings.credentialsEnvironment, database)
    }

    /// What makes the embedded server use this executor (for `.postgres`, a new database).
    func environment() async throws -> [String: String] {
        switch self {
        case .process: ["TYGER_EXECUTOR": "process"]
        case .docker: ["TYGER_EXECUTOR": "docker", "DOCKER_HOST": Self.dockerHost ?? "unix:///nonexistent"]
        case .postgres: ["TYGER_EXECUTOR": "process", "TYGER_DATABASE": try await PostgresTestDatabase.createEmpty()]
        case .slurm: SlurmTestCluster.environment
        case .s3:
            try await {
                let (store, credentials, database) = try await Self.s3BlobStore()
                var environment = credentials.merging(["TYGER_EXECUTOR": "process", "TYGER_BLOB_STORE": store]) {
                    $1
                }
                environment["TYGER_DATABASE"] = database
                return environment
            }()
        }
    }

    /// What makes a `tyger-server run` use this executor (for `.postgres`, a new database; for `.s3`, a new
    /// bucket).
    func serverSettings() async throws -> ServerSettings {
        switch self {
        case .process: ServerSettings(arguments: ["--executor", "process"])
        case .docker:
            ServerSettings(arguments: [
                "--executor", "docker", "--docker-host", Self.dockerHost ?? "unix:///nonexistent",
            ])
        case .postgres:
            ServerSettings(
                arguments: ["--executor", "process", "--database", try await PostgresTestDatabase.createEmpty()]
            )
        case .slurm:
            ServerSettings(
                arguments: ["--executor", "slurm", "--tcp", "127.0.0.1:0"],
                environment: ["SLURM_CONF": SlurmTestCluster.configuration ?? "/nonexistent"]
            )
        case .s3:
            try await {
                let (store, credentials, database) = try await Self.s3BlobStore()
                return ServerSettings(
                    arguments: ["--executor", "process", "--blob-store", store]
                        + (database.map { ["--database", $0] } ?? []),
                    environment: credentials,
                    blobStore: store
                )
            }()
        }
    }

    var description: String { rawValue }
}

/// How a test starts a `tyger-server run`: its arguments and environment, and where its buffers' blobs are.
struct ServerSettings: Sendable {
    var arguments: [String]
    var environment: [String: String] = [:]
    /// `--blob-store`, when the blobs are in an S3 store rather than the data directory.
    var blobStore: String?

    /// Whether any data of buffer `id` is left: its directory under the data directory, or its objects in the store.
    func bufferDataExists(_ id: String, dataDirectory: String) async throws -> Bool {
        guard let blobStore else { return TestFiles.exists(dataDirectory + "/buffers/" + id) }
        let settings = try #require(S3TestStore.settings)
        let location = try S3Location(parsing: blobStore)
        return try await HTTPTransport.withTransport { transport in
            let client = S3Client(
                location: location,
                credentials: S3Credentials(accessKeyId: settings.accessKey, secretAccessKey: settings.secretKey),
                transport: transport
            )
            return try await !client.keys(under: location.prefix + id + "/").isEmpty
        }
    }
}
