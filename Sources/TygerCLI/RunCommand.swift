import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import TygerClient
import TygerCore
import TygerIO

/// `tyger run …`
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Create, run and inspect runs.",
        subcommands: [Create.self, Exec.self, Show.self, Watch.self, List.self, Cancel.self, Logs.self, Counts.self],
        aliases: ["runs"])

    static let order = [
        "id", "status", "statusReason", "runningCount", "createdAt", "startedAt", "finishedAt", "job", "worker", "cluster",
        "timeoutSeconds", "tags", "eTag", "bufferAccessTtl", "kind",
    ]
    static let terminal: Set<String> = ["Failed", "Succeeded", "Canceled"]
}

/// Options shared by `run create` and `run exec`.
struct RunSpecOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "A YAML run specification; flags override its values.") var file: String?
    @Option(name: .shortAndLong, help: "The job codespec name.") var codespec: String?
    @Option(help: "The codespec version.") var version: Int?
    @Option(name: .shortAndLong, help: "Job replicas.") var replicas: Int?
    @Option(name: [.customShort("b"), .long], help: "Buffer argument PARAM=ID (`_` for an ephemeral buffer).")
    var buffer: [String] = []
    @Option(name: [.customLong("tag"), .customLong("buffer-tag")], help: "Tag KEY=VALUE for the buffers the run creates.")
    var tag: [String] = []
    @Option(name: .customLong("run-tag"), help: "Tag KEY=VALUE on the run itself.") var runTag: [String] = []
    @Option(help: "Time to live of the buffers the run creates, D.HH:MM[:SS].") var bufferTtl: String?
    @Option(help: "Timeout, e.g. 300s, 1.5h, 2h45m (from creation).") var timeout: String?
    @Option(help: "Target cluster.") var cluster: String?
    @Option(help: "Node pool.") var nodePool: String?

    func validate() throws {
        if let replicas, replicas < 1 { throw ValidationError("--replicas must be at least 1") }
        if let timeout {
            do {
                let d = try DurationParser.parse(timeout)
                if d <= .zero { throw ValidationError("--timeout must be positive") }
            } catch let e as TygerCoreError { throw ValidationError("--timeout: \(e.message)") }
        }
        if version != nil && codespec == nil { throw ValidationError("--version needs --codespec") }
    }

    /// The run body to POST.
    func runBody() throws -> [String: Any] {
        var run = try file.map(SpecFiles.load) ?? [:]
        var job = run["job"] as? [String: Any] ?? [:]
        if let codespec { job["codespec"] = version.map { "\(codespec)/versions/\($0)" } ?? codespec }
        if var inline = job["codespec"] as? [String: Any] {
            inline["kind"] = "job"
            job["codespec"] = inline
        }
        guard job["codespec"] != nil else { throw UsageError("a codespec is required: --codespec NAME or job.codespec in --file") }
        if let replicas { job["replicas"] = replicas }
        if let nodePool { job["nodePool"] = nodePool }
        if !buffer.isEmpty {
            var buffers = job["buffers"] as? [String: Any] ?? [:]
            for (k, v) in try parseTags(buffer, option: "--buffer") { buffers[k] = v }
            job["buffers"] = buffers
        }
        if !tag.isEmpty {
            var tags = job["tags"] as? [String: Any] ?? [:]
            for (k, v) in try parseTags(tag) { tags[k] = v }
            job["tags"] = tags
        }
        if let bufferTtl { job["bufferTtl"] = timeSpan(try parseTTL(bufferTtl, option: "--buffer-ttl")) }
        run["job"] = job
        if !runTag.isEmpty {
            var tags = run["tags"] as? [String: Any] ?? [:]
            for (k, v) in try parseTags(runTag, option: "--run-tag") { tags[k] = v }
            run["tags"] = tags
        }
        if let cluster { run["cluster"] = cluster }
        if let timeout { run["timeoutSeconds"] = Int(seconds(try DurationParser.parse(timeout)).rounded(.up)) }
        return run
    }
}

func createRun(_ body: [String: Any], connection: Connection) async throws -> [String: Any] {
    let response = try await connection.client.call(
        .POST, "/runs", body: try JSONSerialization.data(withJSONObject: body),
        headers: ["Idempotency-Key": UUID().uuidString])
    guard let run = try JSONOutput.parse(response.text) as? [String: Any] else {
        throw UsageError("the server returned an invalid run")
    }
    return run
}

func runID(_ run: [String: Any]) -> String { (run["id"]).map { "\($0)" } ?? "?" }

extension RunCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a run and print its ID (returns at once).")
        @OptionGroup var spec: RunSpecOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            let body = try spec.runBody()
            let run = try await withConnection { try await createRun(body, connection: $0) }
            print(runID(run))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a run as JSON.", aliases: ["get"])
        @Argument var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            let response = try await withConnection { try await $0.client.call(.GET, "/runs/\(ControlPlaneClient.escape(id))") }
            print(JSONOutput.render(try JSONOutput.parse(response.text), order: RunCommand.order))
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a JSON line per status change until the run ends.")
        @Argument var id: String
        @Flag(help: "Print the whole run, not just its status fields.") var fullResource = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            try await withConnection { connection in
                try await watchRun(id: id, connection: connection) { run in
                    let shown = fullResource ? run : run.filter {
                        ["id", "status", "statusReason", "runningCount", "createdAt", "startedAt", "finishedAt", "tags"].contains($0.key)
                    }
                    let data = try JSONSerialization.data(withJSONObject: shown, options: [.sortedKeys])
                    print(String(decoding: data, as: UTF8.self))
                    fflush(nil)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @Option(name: .shortAndLong, help: "Only runs created after this time (RFC 3339).") var since: String?
        @Option(name: .long, help: "Only runs with this tag KEY=VALUE.") var tag: [String] = []
        @Option(name: .long, help: "Only runs with this status (repeatable).") var status: [String] = []
        @Option(name: .shortAndLong, help: "The maximum number of runs (default 1000).") var limit: Int?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            var query = try filterQuery(tag: tag, excludeTag: [], softDeleted: nil)
            if let since { query.append(("since", try normalizeTime(since))) }
            for s in status { query.append(("status", s)) }
            let items = try await listPaged(path: "/runs", query: query, limit: limit)
            print(JSONOutput.render(items, order: RunCommand.order))
        }
    }

    struct Counts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count runs by status.", aliases: ["count"])
        @Option(name: .shortAndLong, help: "Only runs created after this time.") var since: String?
        @Option(name: .long, help: "Only runs with this tag KEY=VALUE.") var tag: [String] = []
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            var query = try filterQuery(tag: tag, excludeTag: [], softDeleted: nil)
            if let since { query.append(("since", try normalizeTime(since))) }
            let response = try await withConnection { try await $0.client.call(.GET, "/runs/counts", query: query) }
            print(JSONOutput.render(try JSONOutput.parse(response.text)))
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a run (asynchronous).", aliases: ["stop"])
        @Argument var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            let response = try await withConnection {
                try await $0.client.call(.POST, "/runs/\(ControlPlaneClient.escape(id))/cancel")
            }
            let run = try JSONOutput.parse(response.text) as? [String: Any] ?? [:]
            let status = run["status"] as? String ?? "?"
            switch status {
            case "Canceling": print("Cancel issued for job \(id)")
            case "Canceled": print("Job \(id) has been canceled")
            default:
                let reason = (run["statusReason"] as? String).map { " (\($0))" } ?? ""
                throw UsageError("unable to cancel job \(id) because its status is \(status)\(reason)")
            }
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a run's logs (stdout and stderr of its processes).")
        @Argument var id: String
        @Flag(help: "Prefix each line with its RFC 3339 timestamp.") var timestamps = false
        @Option(help: "Only the last N lines.") var tail: Int?
        @Option(name: .shortAndLong, help: "Only lines after this time (RFC 3339).") var since: String?
        @Flag(name: .shortAndLong, help: "Keep streaming until the run ends.") var follow = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            let sinceValue = try since.map(normalizeTime)
            try await withConnection { connection in
                try await streamLogs(
                    id: id, timestamps: timestamps, tail: tail, since: sinceValue, follow: follow, connection: connection
                ) { chunk in
                    try FileDescriptorWriter.write(1, chunk)
                }
            }
        }
    }
}

/// Parses a user time (RFC 3339, with or without fraction, or a date) and returns RFC 3339.
///
/// A full RFC 3339 date-time is sent as written: a `Date` (and `ISO8601DateFormatter`) keeps only milliseconds, so
/// `--since` with a stamp the server printed (micro- or nanoseconds) would have included that very run or log line.
func normalizeTime(_ text: String) throws -> String {
    let dateTime = #"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"#
    if text.range(of: dateTime, options: .regularExpression) != nil { return text }
    let f = ISO8601DateFormatter()
    for options: ISO8601DateFormatter.Options in [
        [.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime], [.withFullDate],
    ] {
        f.formatOptions = options
        if let date = f.date(from: text) { return rfc3339(date) }
    }
    throw UsageError("invalid time '\(text)': expected RFC 3339, e.g. 2026-11-26T07:00:00Z")
}

/// Streams `GET /runs/{id}?watch=true`, calling `onRun` for each JSON line, until a terminal status.
func watchRun(id: String, connection: Connection, onRun: ([String: Any]) async throws -> Void) async throws {
    var pending = ByteBuffer()
    try await runNotFound {
        try await connection.client.stream("/runs/\(ControlPlaneClient.escape(id))", query: [("watch", "true")]) { chunk in
            var c = chunk
            pending.writeBuffer(&c)
            while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending.readString(length: newline - pending.readerIndex) ?? ""
                pending.moveReaderIndex(forwardBy: 1)
                if line.isEmpty { continue }
                if let run = try JSONOutput.parse(line) as? [String: Any] { try await onRun(run) }
            }
        }
    }
}

/// Streams `GET /runs/{id}/logs`.
func streamLogs(
    id: String, timestamps: Bool, tail: Int?, since: String?, follow: Bool, connection: Connection,
    onChunk: (ByteBuffer) async throws -> Void
) async throws {
    var query = [("timestamps", timestamps ? "true" : "false")]
    if let tail { query.append(("tailLines", String(tail))) }
    if let since { query.append(("since", since)) }
    if follow { query.append(("follow", "true")) }
    try await runNotFound {
        try await connection.client.stream("/runs/\(ControlPlaneClient.escape(id))/logs", query: query, onChunk: onChunk)
    }
}

/// Turns a 404 of a run's stream into `run not found`, as upstream's CLI says it.
private func runNotFound(_ body: () async throws -> Void) async throws {
    do { try await body() } catch let error as TygerClientError where error.status == 404 {
        throw UsageError("run not found")
    }
}

enum FileDescriptorWriter {
    static func write(_ fd: Int32, _ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { try FileDescriptorOps.writeAll(fd, $0) }
    }
}
