import ArgumentParser
import Foundation
import Logging
import NIOCore
import Synchronization
import TygerClient
import TygerCore
import TygerIO
import TygerModel

/// `tyger run …`
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Create, run and inspect runs.",
        subcommands: [
            Create.self, Exec.self, Show.self, Watch.self, Wait.self, List.self, Cancel.self, Logs.self, Counts.self,
            Set.self,
        ],
        aliases: ["runs"]
    )
}

/// Options shared by `run create` and `run exec`.
struct RunSpecOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "A YAML run specification; flags override its values.") var file: String?
    @Option(name: .shortAndLong, help: "The job codespec name.") var codespec: String?
    @Option(help: "The codespec version.") var version: Int?
    @Option(name: .shortAndLong, help: "Job replicas.") var replicas: Int?
    @Option(name: [.customShort("b"), .long], help: "Buffer argument PARAM=ID (`_` for an ephemeral buffer).")
    var buffer: [String] = []
    @Option(
        name: [.customLong("tag"), .customLong("buffer-tag")],
        help: "Tag KEY=VALUE for the buffers the run creates."
    )
    var tag: [String] = []
    @Option(name: .customLong("run-tag"), help: "Tag KEY=VALUE on the run itself.") var runTag: [String] = []
    @Option(help: "Time to live of the buffers the run creates, D.HH:MM[:SS].") var bufferTtl: String?
    @Option(help: "Timeout, e.g. 300s, 1.5h, 2h45m (from creation).") var timeout: String?
    @Option(help: "Target cluster.") var cluster: String?
    @Option(help: "Node pool.") var nodePool: String?
    @Flag(help: "Pull the codespec's image before the run is created (servers that run containers).")
    var pull = false

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

    /// The run to create: the file's (decoded strictly, before any server call), with the flags applied.
    func runRequest() throws -> Run {
        if let file { return try SpecFiles.run(file, flags: applyFlags(to:)) }
        guard codespec != nil else {
            throw UsageError("a codespec is required: --codespec NAME or job.codespec in --file")
        }
        var run = Run(job: JobRunCodeTarget(codespec: .named("")))
        try applyFlags(to: &run)
        return run
    }

    /// Applies the flags to `run`: they complete or override what a file says.
    private func applyFlags(to run: inout Run) throws {
        if let codespec { run.job.codespec = .named(version.map { "\(codespec)/versions/\($0)" } ?? codespec) }
        if case .inline(var inline) = run.job.codespec {
            inline.kind = .job
            run.job.codespec = .inline(inline)
        }
        if let replicas { run.job.replicas = replicas }
        if let nodePool { run.job.nodePool = nodePool }
        if !buffer.isEmpty {
            let arguments = try parseTags(buffer, option: "--buffer")
            run.job.buffers = (run.job.buffers ?? [:]).merging(arguments) { _, new in new }
        }
        if !tag.isEmpty { run.job.tags = (run.job.tags ?? [:]).merging(try parseTags(tag)) { _, new in new } }
        if let bufferTtl { run.job.bufferTtl = timeSpan(try parseTTL(bufferTtl, option: "--buffer-ttl")) }
        if !runTag.isEmpty {
            run.tags = (run.tags ?? [:]).merging(try parseTags(runTag, option: "--run-tag")) { _, new in new }
        }
        if let cluster { run.cluster = cluster }
        if let timeout { run.timeoutSeconds = Int(seconds(try DurationParser.parse(timeout)).rounded(.up)) }
    }
}

/// `POST /runs` with a fresh idempotency key.
///
/// - Parameter pull: `--pull`: the server pulls the codespec's image first. A server that runs host processes has
///   no images (no `Docker` capability): the flag is ignored with a warning, as upstream's CLI does.
func createRun(_ run: Run, pull: Bool = false, connection: Connection) async throws -> Run {
    var pullImage = false
    if pull {
        let capabilities = try await connection.client.metadata().capabilities ?? []
        if capabilities.contains("Docker") {
            pullImage = true
        } else {
            logger.warning("--pull has no effect: the server runs codespecs as host processes")
        }
    }
    return try await connection.client.createRun(run, idempotencyKey: UUID().uuidString, pullImage: pullImage)
}

func runID(_ run: Run) -> String { run.id.map(String.init) ?? "?" }

extension RunCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a run and print its ID (returns at once).")
        @OptionGroup var spec: RunSpecOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = try spec.runRequest()
            let run = try await withConnection { try await createRun(request, pull: spec.pull, connection: $0) }
            try Console.line(runID(run))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a run as JSON.", aliases: ["get"])
        @Argument var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let run = try await withConnection { try await $0.client.getRun(id: id) }
            try Console.json(run)
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the run as JSON on each status change until it ends."
        )
        @Argument var id: String
        @Flag(help: "Print the whole run, not just its status fields.") var fullResource = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await withConnection { connection in
                try await watchRun(id: id, connection: connection) { run in
                    if fullResource { try Console.json(run) } else { try Console.json(RunStatusOutput(run)) }
                }
            }
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until a run ends and print its final status as JSON.",
            discussion: """
                Exit status: 0 when the run succeeded, 1 when it failed, 2 when it was canceled, 124 when --timeout \
                passed first (the run goes on).
                """
        )
        @Argument var id: String
        @Option(help: "Give up after this long: seconds (90), or with a unit (30s, 5m, 2h).") var timeout: String?
        @OptionGroup var global: GlobalOptions

        /// The exit status of a run canceled, and of a wait that timed out (as `timeout(1)`'s).
        static let canceledStatus = ExitCode(2)
        static let timedOutStatus = ExitCode(124)

        func validate() throws {
            if let timeout, parseWaitTimeout(timeout) == nil {
                throw ValidationError("--timeout '\(timeout)' must be seconds or a number with s, m or h (90, 5m)")
            }
        }

        func run() async throws {
            let limit = timeout.flatMap(parseWaitTimeout)
            let id = id
            let last = LastRun()
            let ended = try await withConnection { connection in
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        try await watchRun(id: id, connection: connection) { run in last.run.withLock { $0 = run } }
                        return true
                    }
                    if let limit {
                        group.addTask {
                            try await Task.sleep(for: limit)
                            return false
                        }
                    }
                    defer { group.cancelAll() }
                    return try await group.next() ?? false
                }
            }
            guard ended, let run = last.run.withLock({ $0 }), run.status?.isTerminal == true else {
                let status = last.run.withLock { $0?.status?.rawValue } ?? "unknown"
                logger.error("run \(id) had not ended after \(timeout ?? "") (status \(status))")
                throw Self.timedOutStatus
            }
            try Console.json(RunStatusOutput(run))
            switch run.status {
            case .succeeded: return
            case .canceled:
                logger.error("run \(id) was canceled")
                throw Self.canceledStatus
            default:
                throw CommandFailure("run \(id) failed\(run.statusReason.map { ": \($0)" } ?? "")")
            }
        }

        /// The last state the watch reported.
        final class LastRun: Sendable {
            let run = Mutex<Run?>(nil)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @Option(
            name: .shortAndLong,
            help: "Only runs created after this time (RFC 3339, local date/time, or relative: 1h, '2 days ago')."
        ) var since: String?
        @Option(name: .long, help: "Only runs with this tag KEY=VALUE.") var tag: [String] = []
        @Option(name: .long, help: "Only runs with this status (repeatable).") var status: [String] = []
        @Option(name: .shortAndLong, help: "The maximum number of runs (default 1000).") var limit: Int?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let filter = RunFilter(
                since: try since.map { try normalizeTime($0) },
                tags: try parseTags(tag),
                statuses: status
            )
            let items = try await listPaged(limit: limit) { try await $0.listRuns(filter, limit: $1) }
            try Console.json(items)
        }
    }

    struct Counts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count runs by status.", aliases: ["count"])
        @Option(
            name: .shortAndLong,
            help: "Only runs created after this time (RFC 3339, local date/time, or relative: 1h, '2 days ago')."
        ) var since: String?
        @Option(name: .long, help: "Only runs with this tag KEY=VALUE.") var tag: [String] = []
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let filter = RunFilter(since: try since.map { try normalizeTime($0) }, tags: try parseTags(tag))
            let counts = try await withConnection { try await $0.client.runCounts(filter) }
            try Console.json(counts)
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a run (asynchronous).", aliases: ["stop"])
        @Argument var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let run = try await withConnection { try await $0.client.cancelRun(id: id) }
            switch run.status {
            case .canceling: try Console.line("Cancel issued for job \(id)")
            case .canceled: try Console.line("Job \(id) has been canceled")
            default:
                let status = run.status?.rawValue ?? "?"
                let reason = run.statusReason.map { " (\($0))" } ?? ""
                throw CommandFailure("unable to cancel job \(id) because its status is \(status)\(reason)")
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a run's tags.")
        @Argument var id: String
        @Option(name: .long, help: "Set a tag KEY=VALUE (repeatable); other tags are kept unless --clear-tags.")
        var tag: [String] = []
        @Flag(help: "Replace all tags with the --tag values (none: remove all).") var clearTags = false
        @Option(help: "Only change the run if its ETag is this.") var etag: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let newTags = try parseTags(tag)
            let run = try await withConnection { connection -> Run in
                while true {
                    var tags = newTags
                    var ifMatch = etag
                    if !clearTags {
                        let current = try await connection.client.getRun(id: id)
                        if let etag, let serverETag = current.eTag, serverETag != etag {
                            throw CommandFailure("the server's ETag does not match the provided ETag")
                        }
                        tags = (current.tags ?? [:]).merging(newTags) { _, new in new }
                        ifMatch = etag ?? current.eTag
                    }
                    do {
                        return try await connection.client.setRunTags(
                            id: id,
                            tags: tags.isEmpty ? nil : tags,
                            ifMatch: ifMatch
                        )
                    } catch let e as TygerClientError where e.status == 412 && etag == nil {
                        continue  // someone else changed it between our read and write: read again
                    }
                }
            }
            try Console.json(run)
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a run's logs (stdout and stderr of its processes)."
        )
        @Argument var id: String
        @Flag(help: "Prefix each line with its RFC 3339 timestamp.") var timestamps = false
        @Option(help: "Only the last N lines.") var tail: Int?
        @Option(
            name: .shortAndLong,
            help: "Only lines after this time (RFC 3339, local date/time, or relative: 10m, '1 hour ago')."
        ) var since: String?
        @Flag(name: .shortAndLong, help: "Keep streaming until the run ends.") var follow = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let options = RunLogOptions(
                timestamps: timestamps,
                tailLines: tail,
                since: try since.map { try normalizeTime($0) },
                follow: follow
            )
            try await withConnection { connection in
                try await streamLogs(id: id, options, connection: connection) { chunk in
                    try writeChunk(chunk, to: 1)
                }
            }
        }
    }
}

/// Streams `GET /runs/{id}?watch=true`, calling `onRun` for each state, until a final status.
func watchRun(id: String, connection: Connection, onRun: (Run) async throws -> Void) async throws {
    try await connection.client.watchRun(id: id, onRun: onRun)
}

/// Streams `GET /runs/{id}/logs`.
func streamLogs(
    id: String,
    _ options: RunLogOptions,
    connection: Connection,
    onChunk: (ByteBuffer) async throws -> Void
) async throws {
    try await connection.client.runLogs(id: id, options, onChunk: onChunk)
}

/// Writes a chunk of a stream (logs) to a descriptor.
func writeChunk(_ buffer: ByteBuffer, to fd: Int32) throws {
    try buffer.withUnsafeReadableBytes { try FileDescriptorOps.writeAll(fd, $0) }
}

/// A wait's bound: whole or fractional seconds, bare or with `s`, `m` or `h` (up to a year); nil when malformed.
func parseWaitTimeout(_ text: String) -> Duration? {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
    var number = Substring(text)
    var scale = 1.0
    if let last = number.last, let unit = units[last] {
        scale = unit
        number = number.dropLast()
    }
    guard let value = Double(number), value.isFinite, value >= 0, value * scale <= 366 * 86400,
        number.allSatisfy({ $0.isNumber || $0 == "." })
    else { return nil }
    return .milliseconds(Int64((value * scale * 1000).rounded()))
}
