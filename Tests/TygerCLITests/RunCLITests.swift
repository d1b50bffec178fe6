import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

// The runs guide, command by command, on the built `tyger` binary. Every test has its own TYGER_HOME, so its own
// embedded server, stopped at the end whatever happens.

/// The codespec of the guide.
let helloYAML = #"""
    name: hello
    image: ubuntu
    buffers:
      inputs: ["input"]
      outputs: ["output"]
    command:
      - "bash"
      - "-c"
      - |
        set -euo pipefail
        inp=$(cat "$INPUT_PIPE")
        echo "Hello ${inp}" > "$OUTPUT_PIPE"
    """#

/// The same codespec inline in a run specification.
private let inlineRunYAML = #"""
    job:
      codespec:
        image: ubuntu
        buffers:
          inputs: ["input"]
          outputs: ["output"]
        command:
          - "bash"
          - "-c"
          - |
            set -euo pipefail
            inp=$(cat "$INPUT_PIPE")
            echo "Hello ${inp}" > "$OUTPUT_PIPE"
    """#

let catRunYAML = #"""
    job:
      codespec:
        image: ubuntu
        buffers:
          inputs: ["input"]
          outputs: ["output"]
        command:
          - "bash"
          - "-c"
          - 'cat "$INPUT_PIPE" > "$OUTPUT_PIPE"'
    """#

/// A codespec without buffers running `script` with bash.
func scriptCodespec(_ name: String, _ script: String) -> String {
    let indented = script.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(
        separator: "\n"
    )
    return "name: \(name)\nimage: ubuntu\ncommand:\n  - bash\n  - -c\n  - |\n\(indented)\n"
}

/// A private TYGER_HOME (so a private embedded server) and a working directory for spec files.
struct TygerSession {
    let directory: String
    let home: String
    /// What the embedded server runs codespecs with.
    var executor: TestExecutor = .process
    /// The variables that choose it (``TestExecutor/environment()``).
    var executorEnvironment: [String: String] = [:]
    /// More variables for the CLI (and so for the embedded server it starts).
    var extraEnvironment: [String: String] = [:]

    var environment: [String: String] {
        ["TYGER_HOME": home].merging(executorEnvironment) { a, _ in a }.merging(extraEnvironment) { _, b in b }
    }

    func tyger(
        _ arguments: [String],
        input: ChildInput = .null,
        timeZone: String? = nil,
        timeout: Duration = .seconds(60)
    ) async throws -> ProcessResult {
        var environment = environment
        if let timeZone { environment["TZ"] = timeZone }
        return try await runProcess(
            TygerBinary.path(),
            arguments,
            input: input,
            environment: environment,
            timeout: timeout
        )
    }

    func start(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess(TygerBinary.path(), arguments, environment: environment)
    }

    /// Runs a bash script in `directory` with `$TYGER` and this session's TYGER_HOME.
    func shell(_ script: String, timeout: Duration = .seconds(60)) async throws -> ProcessResult {
        try await runShell("set -o pipefail\ncd '\(directory)'\n" + script, environment: environment, timeout: timeout)
    }

    @discardableResult
    func file(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try TestFiles.write(Array(text.utf8), to: path)
        return path
    }

    /// `codespec create -f` of a file written from `yaml`; expects success.
    func codespec(_ name: String, _ yaml: String) async throws {
        let path = try file(name + ".yml", yaml)
        let created = try await tyger(["codespec", "create", "-f", path])
        try #require(created.exitCode == 0, "\(created)")
    }

    /// `run create` with `arguments`; returns the run ID.
    func createRun(_ arguments: [String]) async throws -> String {
        let created = try await tyger(["run", "create"] + arguments)
        try #require(created.exitCode == 0, "\(created)")
        let id = created.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!id.isEmpty && !id.contains("\n"), "\(created)")
        return id
    }

    func show(_ id: String) async throws -> [String: Any] {
        let shown = try await tyger(["run", "show", id])
        try #require(shown.exitCode == 0, "\(shown)")
        return try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout)) as? [String: Any], "\(shown)")
    }

    /// Polls `run show` until the status is one of `statuses`.
    func waitForStatus(
        _ id: String,
        in statuses: Set<String>,
        timeout: Duration = .seconds(20)
    ) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let run = try await show(id)
            if let status = run["status"] as? String, statuses.contains(status) { return run }
            if ContinuousClock.now >= deadline {
                throw TestSupportError("run \(id) never reached \(statuses.sorted()); last: \(run)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// `run watch` until the run ends; returns its last status.
    func watch(_ id: String, timeout: Duration = .seconds(60)) async throws -> String {
        let watched = try await tyger(["run", "watch", id], timeout: timeout)
        try #require(watched.exitCode == 0, "\(watched)")
        // One pretty-printed object per change: the last one starts at the last line that is just "{".
        let lines = watched.stdoutText.split(separator: "\n")
        let start = try #require(lines.lastIndex(of: "{"), "\(watched)")
        let last = lines[start...].joined(separator: "\n")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
            "\(watched)"
        )
        return object["status"] as? String ?? "?"
    }

    func stopServer() async {
        _ = try? await tyger(["api", "stop"], timeout: .seconds(30))
    }
}

/// Runs `body` with a fresh session; its embedded server is stopped afterwards even when `body` throws.
func withTyger<T>(
    _ executor: TestExecutor = .process,
    environment: [String: String] = [:],
    _ body: (TygerSession) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory(prefix: "tyger-runcli") { dir in
        let session = TygerSession(
            directory: dir,
            home: dir + "/home",
            executor: executor,
            executorEnvironment: try await executor.environment(),
            extraEnvironment: environment
        )
        try TestFiles.makeDirectory(session.home)
        do {
            let result = try await body(session)
            await session.stopServer()
            return result
        } catch {
            await session.stopServer()
            throw error
        }
    }
}

func jsonArray(_ result: ProcessResult) throws -> [[String: Any]] {
    try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [[String: Any]], "\(result)")
}

private func read(_ path: String) throws -> String { String(decoding: try TestFiles.read(path), as: UTF8.self) }

// Serialized: each test starts its own server, and the timing checks (timeouts, follow) need the two cores.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RunCLITests {
    @Test(arguments: TestExecutor.available) func helloCodespecCreateIsIdempotentAndRunExecSaysHello(
        _ executor: TestExecutor
    ) async throws {
        try await withTyger(executor) { s in
            let hello = try s.file("hello.yml", helloYAML)
            let first = try await s.tyger(["codespec", "create", "-f", hello])
            #expect(first.exitCode == 0, "\(first)")
            #expect(first.stdoutText == "1\n", "\(first)")
            let again = try await s.tyger(["codespec", "create", "-f", hello])
            #expect(again.exitCode == 0, "\(again)")
            #expect(again.stdoutText == "1\n", "an unchanged codespec keeps its version: \(again)")

            let exec = try await s.shell(#"echo "Paul" | "$TYGER" run exec --codespec hello > result.txt"#)
            #expect(exec.exitCode == 0, "\(exec)")
            #expect(try read(s.directory + "/result.txt") == "Hello Paul\n")
            #expect(exec.stderrText.contains("Run created"), "\(exec)")
            #expect(exec.stderrText.contains("Succeeded"), "\(exec)")
        }
    }

    @Test(arguments: TestExecutor.available) func runExecFromARunFileByReferenceAndInline(
        _ executor: TestExecutor
    ) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("hello", helloYAML)
            try s.file("run.yml", "job:\n  codespec: hello\n")
            let byName = try await s.shell(#"echo World | "$TYGER" run exec -f run.yml"#)
            #expect(byName.exitCode == 0, "\(byName)")
            #expect(byName.stdoutText == "Hello World\n", "\(byName)")

            try s.file("inline.yml", inlineRunYAML)
            let inline = try await s.shell(#"echo Inline | "$TYGER" run exec -f inline.yml"#)
            #expect(inline.exitCode == 0, "\(inline)")
            #expect(inline.stdoutText == "Hello Inline\n", "\(inline)")
        }
    }

    @Test(arguments: TestExecutor.available) func runCreateThenBuffersShowWatchAndList(
        _ executor: TestExecutor
    ) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("hello", helloYAML)
            let started = ContinuousClock.now
            let id = try await s.createRun(["--codespec", "hello"])
            #expect(ContinuousClock.now - started < .seconds(15), "run create must not wait for the run")

            let run = try await s.show(id)
            #expect("\(run["id"] ?? "")" == id)
            let buffers = try #require((run["job"] as? [String: Any])?["buffers"] as? [String: Any], "\(run)")
            let input = try #require(buffers["input"] as? String, "\(run)")
            let output = try #require(buffers["output"] as? String, "\(run)")
            #expect(!input.isEmpty && !output.isEmpty && input != output)

            let written = try await s.shell(#"echo World | "$TYGER" buffer write "\#(input)""#)
            #expect(written.exitCode == 0, "\(written)")
            let read = try await s.tyger(["buffer", "read", output])
            #expect(read.exitCode == 0, "\(read)")
            #expect(read.stdoutText == "Hello World\n", "\(read)")
            #expect(try await s.watch(id) == "Succeeded")

            let listed = try jsonArray(try await s.tyger(["run", "list", "--limit", "1"]))
            #expect(listed.count == 1)
            #expect(listed.first.map { "\($0["id"] ?? "")" } == id)

            let createdAt = try #require(run["createdAt"] as? String, "\(run)")
            let since = try await s.tyger(["run", "list", "--since", createdAt])
            #expect(since.exitCode == 0, "\(since)")
            let after = try jsonArray(since)
            #expect(!after.contains { "\($0["id"] ?? "")" == id }, "--since is exclusive: \(createdAt) \(since)")
        }
    }

    @Test(arguments: TestExecutor.available) func aFailingCommandFailsRunExecWithTheExitCode(
        _ executor: TestExecutor
    ) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("fail", scriptCodespec("fail", "exit 3"))
            let exec = try await s.tyger(["run", "exec", "--codespec", "fail"])
            #expect(exec.exitCode != 0, "\(exec)")
            #expect(exec.stderrText.contains("Main exited with code 3"), "\(exec)")
        }
    }

    /// A command that does not exist fails the run and its output buffer; `run exec` reports the run's reason and
    /// where its logs are, not the output buffer's "permanently failed".
    @Test func runExecOfAMissingCommandSaysWhyAndWhereTheLogsAre() async throws {
        try await withTyger { s in
            let viaShell =
                "buffers:\n  inputs: [input]\n  outputs: [output]\ncommand: [bash, -c, no-such-command-xyz]\n"
            let direct = "buffers:\n  inputs: [input]\n  outputs: [output]\ncommand: [no-such-command-xyz]\n"
            try await s.codespec("viashell", "name: viashell\nimage: ubuntu\n" + viaShell)
            try await s.codespec("direct", "name: direct\nimage: ubuntu\n" + direct)
            for (codespec, reason) in [("viashell", "Main exited with code 127"), ("direct", "no-such-command-xyz")] {
                let exec = try await s.shell(#"echo x | "$TYGER" run exec --codespec \#(codespec)"#)
                #expect(exec.exitCode == 1, "\(exec)")
                let errors = exec.errorLines.filter { $0.contains(" ERR ") }
                #expect(errors.count == 1, "\(exec)")
                let line = String(errors.first ?? "")
                #expect(line.contains(reason), "\(codespec): \(exec)")
                #expect(line.range(of: #"tyger run logs \d+"#, options: .regularExpression) != nil, "\(exec)")
                #expect(!exec.stderrText.contains("permanently failed"), "\(exec)")
            }
        }
    }

    /// `run exec` reports both transfers as `buffer read/write` do (log lines every 2 s), with the input's percentage
    /// when its size is known (`-i FILE`, stdin a file, `--size`); `--quiet` silences it.
    @Test func runExecReportsItsTransfersUnlessQuiet() async throws {
        try await withTyger { s in
            let codespec =
                "buffers:\n  inputs: [input]\n  outputs: [output]\n"
                + #"command: [bash, -c, 'cat "$INPUT_PIPE" > held; sleep 5; cat held > "$OUTPUT_PIPE"']"# + "\n"
            try await s.codespec("slow", "name: slow\nimage: ubuntu\n" + codespec)
            // The input's size from the file (-i), or from --size for a pipe.
            for command in [
                #""$TYGER" run exec --codespec slow -i in.bin > out.bin && cmp in.bin out.bin"#,
                #"cat in.bin | "$TYGER" run exec --codespec slow --size 3M > out.bin && cmp in.bin out.bin"#,
            ] {
                let exec = try await s.shell(#""$TYGER" buffer gen 3M > in.bin && "# + command, timeout: .seconds(60))
                #expect(exec.exitCode == 0, "\(exec)")
                let reports = exec.stderrText.split(separator: "\n").filter {
                    $0.contains("Transfer progress") && $0.contains("run exec")
                }
                #expect(!reports.isEmpty, "\(exec)")
                #expect(reports.contains { $0.contains("input=\"3.00MiB") && $0.contains("percent=100%") }, "\(exec)")
                #expect(reports.allSatisfy { $0.contains("output=") }, "\(exec)")
            }
            let noInput = try await s.tyger(["run", "exec", "--codespec", "slow", "-i", "/nonexistent/in.bin"])
            #expect(noInput.exitCode == 1, "\(noInput)")
            #expect(noInput.stderrText.contains("cannot open '/nonexistent/in.bin' for reading"), "\(noInput)")
            #expect(
                try jsonArray(try await s.tyger(["run", "list"])).count == 2,
                "a run was created for a missing file"
            )
            let quiet = try await s.shell(
                #""$TYGER" run exec --codespec slow --quiet < in.bin > out2.bin && cmp in.bin out2.bin"#,
                timeout: .seconds(60)
            )
            #expect(quiet.exitCode == 0, "\(quiet)")
            #expect(!quiet.stderrText.contains("Transfer progress"), "\(quiet)")
            #expect(quiet.stderrText.contains("Succeeded"), "\(quiet)")
        }
    }

    /// `--since` without a zone is local time (TZ), to the fraction: exclusive at exactly the run's creation, so the
    /// instant sent keeps every digit and the zone's offset. Also dates, times of day and relative times.
    @Test func sinceReadsLocalTimesDatesTimesOfDayAndRelativeTimes() async throws {
        try await withTyger { s in
            try await s.codespec("quick", scriptCodespec("quick", "true"))
            let id = try await s.createRun(["--codespec", "quick"])
            let run = try await s.show(id)
            let createdText = try #require(run["createdAt"] as? String, "\(run)")
            let createdAt = try #require(parseRFC3339(createdText), "\(run)")
            func listed(_ since: String, _ zone: String) async throws -> Bool {
                let result = try await s.tyger(["run", "list", "--since", since], timeZone: zone)
                #expect(result.exitCode == 0, "\(since) in \(zone): \(result)")
                return try jsonArray(result).contains { "\($0["id"] ?? "")" == id }
            }
            /// `date` in `zone` without the zone, by `format`.
            func local(_ date: Date, _ zone: String, _ format: String) -> String {
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: zone)
                formatter.dateFormat = format
                return formatter.string(from: date)
            }
            /// Microseconds since the epoch in `zone` without the zone: `yyyy-MM-ddTHH:mm:ss.ffffff` (the formatter
            /// keeps only milliseconds, so the fraction is written by hand).
            func local(micros: Int64, _ zone: String) -> String {
                let seconds = micros / 1_000_000
                let fraction = String(micros % 1_000_000)
                let whole = local(Date(timeIntervalSince1970: Double(seconds)), zone, "yyyy-MM-dd'T'HH:mm:ss")
                return whole + "." + String(repeating: "0", count: 6 - fraction.count) + fraction
            }
            // The formatters keep milliseconds: the microseconds come from the text (`….123456Z`).
            let fraction = createdText.contains(".") ? createdText.split(separator: ".")[1].dropLast().prefix(6) : ""
            let microsText = fraction + String(repeating: "0", count: 6 - fraction.count)
            let micros = Int64(createdAt.timeIntervalSince1970.rounded(.down)) * 1_000_000 + (Int64(microsText) ?? 0)
            for zone in ["America/New_York", "Asia/Kolkata"] {
                // The stored time is whole microseconds: exactly it excludes the run, a microsecond before includes it.
                #expect(
                    try await !listed(local(micros: micros, zone), zone),
                    "exclusive at exactly createdAt in \(zone)"
                )
                #expect(try await listed(local(micros: micros - 1, zone), zone), "\(zone)")
                // Seconds only, no fraction, and a space: the time part is kept (never the whole day).
                #expect(try await listed(local(createdAt.addingTimeInterval(-1), zone, "yyyy-MM-dd HH:mm:ss"), zone))
                #expect(try await !listed(local(createdAt.addingTimeInterval(2), zone, "yyyy-MM-dd'T'HH:mm:ss"), zone))
                // A date alone: local midnight of that day.
                #expect(try await listed(local(createdAt, zone, "yyyy-MM-dd"), zone), "\(zone)")
                #expect(try await !listed(local(createdAt.addingTimeInterval(86_400), zone, "yyyy-MM-dd"), zone))
                // A time of day: today, local. Only asserted when today is the run's day in that zone.
                let day = local(createdAt, zone, "yyyy-MM-dd")
                let before = try await listed(local(createdAt.addingTimeInterval(-1), zone, "HH:mm:ss"), zone)
                if local(Date(), zone, "yyyy-MM-dd") == day { #expect(before, "time of day in \(zone)") }
            }
            // The same wall-clock text means different instants in different zones: 10h30 apart here.
            let kolkata = local(micros: micros - 60_000_000, "Asia/Kolkata")
            #expect(try await listed(kolkata, "Asia/Kolkata"))
            #expect(try await !listed(kolkata, "America/New_York"), "read as New York time it is hours after the run")
            for relative in ["1h", "30m", "2d", "1 hour ago", "2 days ago", "1h30m", "1 week ago"] {
                #expect(try await listed(relative, "Asia/Kolkata"), "\(relative)")
            }
            #expect(try await !listed("0s", "UTC"), "now is after the run")
        }
    }

    /// `bufferAccessTtl` is the lifetime `run exec` asks for its buffers' access URLs (as upstream's CLI): one the
    /// server allows works, one past its 1 h limit is refused by name; an invalid one is refused at creation.
    @Test(arguments: TestExecutor.available)
    func bufferAccessTtlBoundsTheAccessURLsOfRunExec(_ executor: TestExecutor) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("hello", helloYAML)
            try s.file("short.yml", "job:\n  codespec: hello\nbufferAccessTtl: \"00:05:00\"\n")
            let short = try await s.shell(#"echo TTL | "$TYGER" run exec -f short.yml"#)
            #expect(short.exitCode == 0, "\(short)")
            #expect(short.stdoutText == "Hello TTL\n", "\(short)")
            try s.file("long.yml", "job:\n  codespec: hello\nbufferAccessTtl: \"10.00:00:00\"\n")
            let long = try await s.shell(#"echo TTL | "$TYGER" run exec -f long.yml"#)
            #expect(long.exitCode == 1, "\(long)")
            #expect(long.stderrText.contains("ttl must be between"), "\(long)")
            try s.file("bad.yml", "job:\n  codespec: hello\nbufferAccessTtl: \"soon\"\n")
            let bad = try await s.tyger(["run", "create", "-f", s.directory + "/bad.yml"])
            #expect(bad.exitCode == 1, "\(bad)")
            #expect(
                bad.stderrText.contains("bufferAccessTtl must be a non-negative TimeSpan")
                    && bad.stderrText.contains("got 'soon'"),
                "\(bad)"
            )
        }
    }

    @Test(arguments: TestExecutor.available) func aTimeoutFailsARunningRun(_ executor: TestExecutor) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("sleeper", scriptCodespec("sleeper", "sleep 60"))
            let exec = try await s.tyger(
                ["run", "exec", "--codespec", "sleeper", "--timeout", "2s"],
                timeout: .seconds(30)
            )
            #expect(exec.exitCode != 0, "\(exec)")
            #expect(exec.elapsed < .seconds(7), "took \(exec.elapsed)")
            #expect(exec.stderrText.lowercased().contains("timeout"), "\(exec)")
        }
    }

    @Test(arguments: TestExecutor.available) func cancelARun(_ executor: TestExecutor) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("sleeper", scriptCodespec("sleeper", "sleep 60"))
            let id = try await s.createRun(["--codespec", "sleeper"])
            let canceled = try await s.tyger(["run", "cancel", id])
            #expect(canceled.exitCode == 0, "\(canceled)")
            let out = canceled.stdoutText
            #expect(out == "Job \(id) has been canceled\n" || out == "Cancel issued for job \(id)\n", "\(canceled)")
            let run = try await s.waitForStatus(id, in: ["Canceled", "Failed", "Succeeded"], timeout: .seconds(20))
            #expect(run["status"] as? String == "Canceled", "\(run)")
        }
    }

    @Test(arguments: TestExecutor.available) func cancelARunningRun(_ executor: TestExecutor) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("sleeper", scriptCodespec("sleeper", "sleep 60"))
            let id = try await s.createRun(["--codespec", "sleeper"])
            _ = try await s.waitForStatus(id, in: ["Running"])
            let started = ContinuousClock.now
            let canceled = try await s.tyger(["run", "cancel", id])
            #expect(canceled.exitCode == 0, "\(canceled)")
            // The process dies of SIGTERM at once, so the answer may already be Canceled.
            let out = canceled.stdoutText
            #expect(out == "Job \(id) has been canceled\n" || out == "Cancel issued for job \(id)\n", "\(canceled)")
            let run = try await s.waitForStatus(id, in: ["Canceled", "Failed", "Succeeded"], timeout: .seconds(20))
            #expect(run["status"] as? String == "Canceled", "\(run)")
            #expect(run["statusReason"] as? String == "Canceled by user", "\(run)")
            #expect(ContinuousClock.now - started < .seconds(10))
            // Canceling a canceled run again says so (as upstream); a succeeded run cannot be canceled.
            let again = try await s.tyger(["run", "cancel", id])
            #expect(again.exitCode == 0, "\(again)")
            #expect(again.stdoutText == "Job \(id) has been canceled\n", "\(again)")
            try await s.codespec("quick", scriptCodespec("quick", "true"))
            let quick = try await s.createRun(["--codespec", "quick"])
            #expect(try await s.watch(quick) == "Succeeded")
            let refused = try await s.tyger(["run", "cancel", quick])
            #expect(refused.exitCode != 0, "\(refused)")
            #expect(refused.stderrText.contains("Succeeded"), "\(refused)")
        }
    }

    @Test(arguments: TestExecutor.available) func interruptingRunExecCancelsTheRun(
        _ executor: TestExecutor
    ) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("sleeper", scriptCodespec("sleeper", "sleep 60"))
            let exec = try s.start(["run", "exec", "--codespec", "sleeper"])
            // The run is the only one: wait for it to run, then Ctrl-C the CLI.
            var id: String?
            let deadline = ContinuousClock.now + .seconds(20)
            while id == nil, ContinuousClock.now < deadline {
                let runs = try jsonArray(try await s.tyger(["run", "list"]))
                if let run = runs.first, run["status"] as? String == "Running" { id = "\(run["id"] ?? "")" }
                if id == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let running = try #require(id, "the run never started")
            exec.signal(SIGINT)
            let result = try await exec.wait(timeout: .seconds(20))
            #expect(result.exitCode == 130, "\(result)")
            #expect(result.stderrText.contains("Run canceled"), "\(result)")
            let run = try await s.waitForStatus(running, in: ["Canceled", "Failed", "Succeeded"])
            #expect(run["status"] as? String == "Canceled", "\(run)")
        }
    }

    @Test(arguments: TestExecutor.available) func logsTailTimestampsAndSince(_ executor: TestExecutor) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("count", scriptCodespec("count", "for i in 1 2 3 4 5; do echo $i; done"))
            let id = try await s.createRun(["--codespec", "count"])
            #expect(try await s.watch(id) == "Succeeded")

            let logs = try await s.tyger(["run", "logs", id])
            #expect(logs.exitCode == 0, "\(logs)")
            #expect(logs.stdoutText == "1\n2\n3\n4\n5\n", "\(logs)")
            let tail = try await s.tyger(["run", "logs", id, "--tail", "3"])
            #expect(tail.stdoutText == "3\n4\n5\n", "\(tail)")

            let stamped = try await s.tyger(["run", "logs", id, "--timestamps"])
            #expect(stamped.exitCode == 0, "\(stamped)")
            let lines = stamped.stdoutText.split(separator: "\n").map(String.init)
            try #require(lines.count == 5, "\(stamped)")
            let pattern = #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}) [1-5]$"#
            var stamps: [String] = []
            for (i, line) in lines.enumerated() {
                #expect(line.range(of: pattern, options: .regularExpression) != nil, "\(line)")
                #expect(line.hasSuffix(" \(i + 1)"))
                stamps.append(String(line.split(separator: " ")[0]))
            }
            // Lines stamped strictly after line 3, at the server's microsecond precision (the stamps are fixed-width
            // UTC, so they sort as strings).
            func micros(_ stamp: String) -> Substring { stamp.prefix(26) }
            let expected = (4...5).filter { micros(stamps[$0 - 1]) > micros(stamps[2]) }.map { "\($0)\n" }.joined()
            let since = try await s.tyger(["run", "logs", id, "--since", stamps[2]])
            #expect(since.exitCode == 0, "\(since)")
            #expect(since.stdoutText == expected, "since \(stamps[2]): \(since)")
            // A time with an offset, long before the run: every line.
            let offset = try await s.tyger(["run", "logs", id, "--since", "1970-01-01T01:00:00+01:00"])
            #expect(offset.stdoutText == "1\n2\n3\n4\n5\n", "\(offset)")
            let bad = try await s.tyger(["run", "logs", id, "--since", "yesterday"])
            #expect(bad.exitCode == 64, "\(bad)")
            #expect(bad.stderrText.contains("invalid time 'yesterday'"), "\(bad)")
        }
    }

    @Test(arguments: TestExecutor.available) func aTwoMegabyteLogLineStaysWhole(_ executor: TestExecutor) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("long", scriptCodespec("long", #"head -c 2000000 /dev/zero | tr '\0' a; echo"#))
            let id = try await s.createRun(["--codespec", "long"])
            #expect(try await s.watch(id) == "Succeeded")
            let logs = try await s.tyger(["run", "logs", id])
            #expect(logs.exitCode == 0, "\(logs)")
            #expect(logs.stdout.count == 2_000_001)
            #expect(logs.stdout.last == UInt8(ascii: "\n"))
            #expect(logs.stdout.dropLast().allSatisfy { $0 == UInt8(ascii: "a") })
        }
    }

    @Test(arguments: TestExecutor.available) func followStreamsUntilTheRunEnds(_ executor: TestExecutor) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("slow", scriptCodespec("slow", "for i in 1 2 3; do echo $i; sleep 1; done"))
            let id = try await s.createRun(["--codespec", "slow"])
            // Stamp each line as it arrives: streamed lines arrive about a second apart.
            let followed = try await s.shell(
                #""$TYGER" run logs -f "\#(id)" | while IFS= read -r line; do echo "$line $(date +%s.%N)"; done"#,
                timeout: .seconds(30)
            )
            #expect(followed.exitCode == 0, "\(followed)")
            let lines = followed.stdoutText.split(separator: "\n").map { $0.split(separator: " ") }
            try #require(lines.count == 3, "\(followed)")
            #expect(lines.map { String($0[0]) } == ["1", "2", "3"])
            let first = try #require(Double(lines[0][1]))
            let last = try #require(Double(lines[2][1]))
            #expect(last - first > 1.2, "the lines came at once: \(followed)")
            let run = try await s.show(id)
            #expect(run["status"] as? String == "Succeeded", "follow returned before the run ended: \(run)")
        }
    }

    @Test(arguments: TestExecutor.available) func runExecLogsShowsTheProcessStderr(
        _ executor: TestExecutor
    ) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("noisy", scriptCodespec("noisy", "echo to-stderr-42 >&2; echo to-stdout-42"))
            let exec = try await s.tyger(["run", "exec", "--codespec", "noisy", "--logs"])
            #expect(exec.exitCode == 0, "\(exec)")
            #expect(exec.stderrText.contains("to-stderr-42"), "\(exec)")
            #expect(exec.stderrText.contains("to-stdout-42"), "\(exec)")
            #expect(!exec.stdoutText.contains("to-std"), "logs go to stderr: \(exec)")
        }
    }

    @Test(arguments: TestExecutor.available) func ephemeralBuffers(_ executor: TestExecutor) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("hello", helloYAML)
            try s.file("run.yml", "job:\n  codespec: hello\n")
            let exec = try await s.shell(#"echo Eph | "$TYGER" run exec -f run.yml --buffer input=_ --buffer output=_"#)
            #expect(exec.exitCode == 0, "\(exec)")
            #expect(exec.stdoutText == "Hello Eph\n", "\(exec)")
            // The next run right after, with stored buffers: the ephemeral run's pipe release (which retries for up
            // to a minute) once reopened a reused descriptor number and ended this run's output empty.
            let stored = try await s.shell(#"echo Stored | "$TYGER" run exec -f run.yml"#, timeout: .seconds(30))
            #expect(stored.exitCode == 0, "\(stored)")
            #expect(stored.stdoutText == "Hello Stored\n", "\(stored)")
        }
    }

    @Test(arguments: TestExecutor.available)
    func oneGibibyteThroughACatRunAndAQuarterThroughEphemeralBuffers(
        _ executor: TestExecutor
    ) async throws {
        try await withTyger(executor) { s in
            try s.file("cat.yml", catRunYAML)
            let stored = try await s.shell(
                #"""
                a=$("$TYGER" buffer gen 1G | "$TYGER" run exec -f cat.yml | sha256sum)
                b=$("$TYGER" buffer gen 1G | sha256sum)
                echo "$a"; echo "$b"
                """#,
                timeout: .seconds(300)
            )
            #expect(stored.exitCode == 0, "\(stored)")
            let sums = stored.stdoutText.split(separator: "\n")
            try #require(sums.count == 2, "\(stored)")
            #expect(sums[0] == sums[1], "\(stored)")
            #expect(!sums[0].hasPrefix("e3b0c442"), "the empty stream's digest: \(stored)")

            let ephemeral = try await s.shell(
                #"""
                a=$("$TYGER" buffer gen 256M | "$TYGER" run exec -f cat.yml -b input=_ -b output=_ | sha256sum)
                b=$("$TYGER" buffer gen 256M | sha256sum)
                echo "$a"; echo "$b"
                """#,
                timeout: .seconds(180)
            )
            #expect(ephemeral.exitCode == 0, "\(ephemeral)")
            let esums = ephemeral.stdoutText.split(separator: "\n")
            try #require(esums.count == 2, "\(ephemeral)")
            #expect(esums[0] == esums[1], "\(ephemeral)")
        }
    }

    @Test(arguments: TestExecutor.available) func aRunInFlightFailsWhenTheServerStops(
        _ executor: TestExecutor
    ) async throws {
        try await withTyger(executor) { s in
            try await s.codespec("sleeper", scriptCodespec("sleeper", "sleep 60"))
            let id = try await s.createRun(["--codespec", "sleeper"])
            _ = try await s.waitForStatus(id, in: ["Running"])
            let stopped = try await s.tyger(["api", "stop"], timeout: .seconds(30))
            #expect(stopped.exitCode == 0, "\(stopped)")
            let started = ContinuousClock.now
            let run = try await s.waitForStatus(id, in: ["Failed", "Succeeded", "Canceled"], timeout: .seconds(10))
            #expect(ContinuousClock.now - started < .seconds(8))
            #expect(run["status"] as? String == "Failed", "\(run)")
            let reason = run["statusReason"] as? String ?? ""
            #expect(reason.contains("server"), "\(run)")
        }
    }

    @Test func aRunInFlightFailsWhenTheServerIsKilledAndItsProcessIsStopped() async throws {
        try await withTyger { s in
            let pidFile = s.directory + "/sleeper.pid"
            try await s.codespec("sleeper", scriptCodespec("sleeper", "echo $$ > '\(pidFile)'; exec sleep 60"))
            let id = try await s.createRun(["--codespec", "sleeper"])
            _ = try await s.waitForStatus(id, in: ["Running"])
            #expect(await eventually(timeout: .seconds(60)) { ((try? read(pidFile)) ?? "").hasSuffix("\n") })
            let sleeper = try #require(Int32(try read(pidFile).trimmingCharacters(in: .whitespacesAndNewlines)))
            let server = try #require(
                Int32(try read(s.home + "/server/server.pid").trimmingCharacters(in: .whitespacesAndNewlines))
            )
            #expect(kill(server, SIGKILL) == 0)
            #expect(await eventually(timeout: .seconds(60)) { kill(server, 0) != 0 })
            #expect(kill(sleeper, 0) == 0, "the run's process outlives a killed server")

            // The next command starts a new server, which fails the run and stops its leftover process.
            let run = try await s.waitForStatus(id, in: ["Failed", "Succeeded", "Canceled"], timeout: .seconds(20))
            #expect(run["status"] as? String == "Failed", "\(run)")
            #expect(
                run["statusReason"] as? String
                    == "The server restarted while the run was in progress; runs are never restarted",
                "\(run)"
            )
            #expect(
                await eventually(timeout: .seconds(60)) { kill(sleeper, 0) != 0 },
                "the leftover process \(sleeper) still runs"
            )
        }
    }

    @Test func runProcessesAndTheEmbeddedServerInheritOnlyStdio() async throws {
        try await withTyger { s in
            // The CLI that starts the server holds a descriptor of its own (7): the server must not keep it.
            let started = try await s.shell(
                #"""
                exec 7> "$PWD/marker"
                "$TYGER" api status > /dev/null
                ls -l "/proc/$(cat "$TYGER_HOME/server/server.pid")/fd"
                """#
            )
            #expect(started.exitCode == 0, "\(started)")
            #expect(!started.stdoutText.contains("marker"), "the server inherited the CLI's fd 7: \(started)")

            // A run's process sees stdin, stdout and stderr only (and the directory `ls` reads).
            try await s.codespec("fds", scriptCodespec("fds", "exec ls -1 /proc/self/fd"))
            let id = try await s.createRun(["--codespec", "fds"])
            #expect(try await s.watch(id) == "Succeeded")
            let logs = try await s.tyger(["run", "logs", id])
            let fds = Set(logs.stdoutText.split(separator: "\n").map(String.init))
            #expect(fds.isSubset(of: ["0", "1", "2", "3"]), "\(logs)")
        }
    }

    @Test func specFileErrorsNameTheFileAndLineBeforeAnyServerCall() async throws {
        try await withTyger { s in
            let unknown = try s.file("unknown.yml", "name: unknown\nimage: ubuntu\ncolour: blue\ncommand: [\"true\"]\n")
            let unknownField = try await s.tyger(["codespec", "create", "-f", unknown])
            #expect(unknownField.exitCode != 0, "\(unknownField)")
            #expect(unknownField.stderrText.contains("unknown.yml:3:1: "), "\(unknownField)")
            #expect(unknownField.stderrText.contains("unknown field 'colour' in codespec"), "\(unknownField)")

            let typed = try s.file("typed.yml", "name: typed\nimage: ubuntu\n\nmaxReplicas: many\n")
            let typeError = try await s.tyger(["codespec", "create", "-f", typed])
            #expect(typeError.exitCode != 0, "\(typeError)")
            #expect(typeError.stderrText.contains("typed.yml:4:"), "\(typeError)")
            #expect(typeError.stderrText.contains("maxReplicas"), "\(typeError)")

            let malformed = try s.file("malformed.yml", "job:\n  codespec: hello\n  buffers: {input: _\n")
            let yamlError = try await s.tyger(["run", "create", "-f", malformed])
            #expect(yamlError.exitCode != 0, "\(yamlError)")
            #expect(
                yamlError.stderrText.range(
                    of: #"malformed\.yml:\d+:\d+: invalid run file: "#,
                    options: .regularExpression
                ) != nil,
                "\(yamlError)"
            )

            // Yams' own words for the problem, on the one logged line.
            #expect(yamlError.stderrText.contains("did not find expected ',' or '}'"), "\(yamlError)")
            #expect(yamlError.errorLines.count == 1, "\(yamlError)")

            let badRun = try s.file("badrun.yml", "job:\n  codespec: hello\n  colour: 1\n")
            let runError = try await s.tyger(["run", "exec", "-f", badRun])
            #expect(runError.stderrText.contains("badrun.yml:3:3: "), "\(runError)")
            #expect(runError.stderrText.contains("unknown field 'colour' in job"), "\(runError)")

            // All of it before any server call: no embedded server was started.
            #expect(!TestFiles.exists(s.home + "/server/api.sock"), "a server was started for a bad file")
        }
    }

    @Test func flagsCompleteSpecFilesAsUpstreamsCLIDoes() async throws {
        try await withTyger { s in
            // A codespec file without an image: `--image` completes it; without the flag it is refused locally.
            let noImage = try s.file("noimage.yml", "name: partial\ncommand: [\"true\"]\n")
            let missing = try await s.tyger(["codespec", "create", "-f", noImage])
            #expect(missing.exitCode != 0, "\(missing)")
            #expect(missing.stderrText.contains("noimage.yml: "), "\(missing)")
            #expect(missing.stderrText.contains("Image"), "\(missing)")
            #expect(!TestFiles.exists(s.home + "/server/api.sock"), "a server was started for an incomplete file")
            let completed = try await s.tyger(["codespec", "create", "-f", noImage, "--image", "ubuntu"])
            #expect(completed.exitCode == 0, "\(completed)")
            #expect(completed.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(completed)")

            // A run file without a codespec: `--codespec` completes it, and the file's other fields are kept.
            let noCodespec = try s.file("nocodespec.yml", "job:\n  replicas: 1\ntimeoutSeconds: 600\n")
            let run = try await s.tyger(["run", "create", "-f", noCodespec, "--codespec", "partial"])
            #expect(run.exitCode == 0, "\(run)")
            let id = run.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            let shown = try await s.tyger(["run", "show", id])
            #expect(shown.stdoutText.contains("\"timeoutSeconds\": 600"), "\(shown)")
            let unnamed = try await s.tyger(["run", "create", "-f", noCodespec])
            #expect(unnamed.exitCode != 0, "\(unnamed)")
            #expect(unnamed.stderrText.contains("codespec reference"), "\(unnamed)")
        }
    }

    /// An embedded server that stops at start (here: its container engine is not there) has the CLI say why in its
    /// one line, not only in the server's log.
    @Test func anEmbeddedServerThatCannotStartSaysWhyInTheCLIsError() async throws {
        let host = "unix:///nonexistent/tyger-test/docker.sock"
        try await withTyger(environment: ["TYGER_EXECUTOR": "docker", "DOCKER_HOST": host]) { s in
            let created = try await s.tyger(["buffer", "create"])
            #expect(created.exitCode == 1, "\(created)")
            let lines = created.stderrText.split(separator: "\n")
            #expect(lines.count == 1, "\(created)")
            #expect(created.stderrText.contains("the local server exited at start (exit code 1): "), "\(created)")
            #expect(created.stderrText.contains(host), "\(created)")
        }
    }

    @Test func badInputGivesClearErrors() async throws {
        try await withTyger { s in
            let badName = try await s.tyger(["codespec", "create", "bad_NAME!"])
            #expect(badName.exitCode != 0, "\(badName)")
            #expect(badName.stderrText.contains("codespec names must contain only lower case letters"), "\(badName)")

            let unknown = try s.file("unknown.yml", "name: unknown\nimage: ubuntu\ncolour: blue\ncommand: [\"true\"]\n")
            let unknownField = try await s.tyger(["codespec", "create", "-f", unknown])
            #expect(unknownField.exitCode != 0, "\(unknownField)")
            #expect(unknownField.stderrText.contains("unknown field 'colour'"), "\(unknownField)")

            try await s.codespec("hello", helloYAML)
            let timeout = try await s.tyger(["run", "exec", "--codespec", "hello", "--timeout", "abc"])
            #expect(timeout.exitCode != 0, "\(timeout)")
            #expect(timeout.stderrText.contains("--timeout"), "\(timeout)")

            let two = "name: two\nimage: ubuntu\nbuffers:\n  inputs: [a, b]\n  outputs: [c]\ncommand: [\"true\"]\n"
            try await s.codespec("two", two)
            let exec = try await s.tyger(["run", "exec", "--codespec", "two"])
            #expect(exec.exitCode != 0, "\(exec)")
            #expect(exec.stderrText.contains("multiple unmapped input buffers"), "\(exec)")
            // No run was created for it.
            let runs = try jsonArray(try await s.tyger(["run", "list"]))
            #expect(runs.isEmpty, "\(runs)")

            for command in ["create", "exec"] {
                let missing = try await s.tyger(["run", command, "--codespec", "nosuch"])
                #expect(missing.exitCode != 0, "\(missing)")
                #expect(missing.stderrText.contains("The codespec 'nosuch' was not found"), "\(command): \(missing)")
            }
            let unknownRun = try await s.tyger(["run", "show", "999"])
            #expect(unknownRun.exitCode != 0, "\(unknownRun)")
            #expect(unknownRun.stderrText.contains("run '999' not found"), "\(unknownRun)")
            let badSince = try await s.tyger(["run", "list", "--since", "2026-13-45T00:00:00Z"])
            #expect(badSince.exitCode == 64, "\(badSince)")
            #expect(badSince.stderrText.contains("invalid time '2026-13-45T00:00:00Z'"), "\(badSince)")
            try s.file("badrun.yml", "job:\n  codespec: hello\n  colour: 1\n")
            let badRun = try await s.tyger(["run", "create", "-f", s.directory + "/badrun.yml"])
            #expect(badRun.exitCode != 0, "\(badRun)")
            #expect(badRun.stderrText.contains("unknown field 'colour' in job"), "\(badRun)")
        }
    }
}
