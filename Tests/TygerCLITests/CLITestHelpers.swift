import Foundation
import Testing
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
    /// `postgres`: host processes, with buffers, codespecs and runs in a PostgreSQL database of the test's own.
    case process, docker, postgres

    /// The container engine of the tests, if any.
    static var dockerHost: String? {
        guard let host = ProcessInfo.processInfo.environment["TYGER_TEST_DOCKER_HOST"], !host.isEmpty else {
            return nil
        }
        return host
    }

    /// The executors (and databases) a run-engine test runs on here.
    static var available: [TestExecutor] {
        [.process] + (dockerHost == nil ? [] : [.docker]) + (PostgresTestDatabase.adminURL == nil ? [] : [.postgres])
    }

    /// What makes the embedded server use this executor (for `.postgres`, a new database).
    func environment() async throws -> [String: String] {
        switch self {
        case .process: ["TYGER_EXECUTOR": "process"]
        case .docker: ["TYGER_EXECUTOR": "docker", "DOCKER_HOST": Self.dockerHost ?? "unix:///nonexistent"]
        case .postgres: ["TYGER_EXECUTOR": "process", "TYGER_DATABASE": try await PostgresTestDatabase.createEmpty()]
        }
    }

    /// What makes a `tyger-server run` use this executor (for `.postgres`, a new database).
    func serverArguments() async throws -> [String] {
        switch self {
        case .process: ["--executor", "process"]
        case .docker: ["--executor", "docker", "--docker-host", Self.dockerHost ?? "unix:///nonexistent"]
        case .postgres: ["--executor", "process", "--database", try await PostgresTestDatabase.createEmpty()]
        }
    }

    var description: String { rawValue }
}
