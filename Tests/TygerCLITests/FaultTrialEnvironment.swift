import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// How the CLI reaches its buffers in a fault trial.
enum TrialPath: String, CaseIterable, CustomTestStringConvertible, Sendable {
    /// `file://` buffers, no server.
    case local
    /// A `tyger-server` through its unix socket (`tyger login unix://…`).
    case unixSocket
    /// A `tyger-server` on 127.0.0.1 (`tyger login http://127.0.0.1:PORT --token T`).
    case tcp

    var testDescription: String { rawValue }
}

/// A private home, a working directory and (for the HTTP paths) a `tyger-server` the trials may kill and restart.
/// Every child runs with a non-UTC `TZ` (times without a zone must not depend on it).
final class FaultTrialEnvironment: @unchecked Sendable {
    // @unchecked: `server` changes only in `restartServer()`, which the serialized trials call from one task.
    let path: TrialPath
    let directory: String
    let home: String
    let dataDirectory: String
    private(set) var server: ServerProcess?
    private var token = ""
    private var counter = 0
    /// A marker in the command line of every run process, to find leftovers.
    let marker: String

    static let zone = "Asia/Kolkata"

    private init(path: TrialPath, directory: String) {
        self.path = path
        self.directory = directory
        home = directory + "/home"
        dataDirectory = directory + "/server"
        marker = "tyger-fault-marker-\(getpid())-\(path.rawValue)"
    }

    var environment: [String: String] { ["TYGER_HOME": home, "TZ": Self.zone] }

    /// Runs `body` with an environment for `path`; stops the server and removes everything afterwards.
    static func with(_ path: TrialPath, _ body: (FaultTrialEnvironment) async throws -> Void) async throws {
        // The trials write to the stdin of processes they kill: a write to a dead reader must fail, not end the test.
        signal(SIGPIPE, SIG_IGN)
        try await withTemporaryDirectory(prefix: "tyger-faults") { dir in
            let env = FaultTrialEnvironment(path: path, directory: dir)
            try TestFiles.makeDirectory(env.home)
            do {
                try await env.startServer()
                try await body(env)
            } catch {
                await env.tearDown()
                throw error
            }
            await env.tearDown()
        }
    }

    private func tearDown() async {
        if let server { _ = try? await server.stop() }
        for pid in ServerProcesses.serving(dataDirectory: dataDirectory) { kill(pid, SIGKILL) }
        for pid in processes(containing: marker) { kill(pid, SIGKILL) }
    }

    /// Starts (or restarts) the server and logs the CLI in to it.
    func startServer() async throws {
        guard path != .local else { return }
        if token.isEmpty {
            try TestFiles.makeDirectory(dataDirectory)
            token = try await TygerServerBinary.createToken(dataDirectory: dataDirectory)
        }
        let arguments = path == .tcp ? ["--tcp", "127.0.0.1:0"] : []
        let started = try await ServerProcess.start(dataDirectory: dataDirectory, arguments: arguments)
        server = started
        let login =
            path == .tcp
            ? ["login", try #require(started.tcpEndpoint), "--token", token]
            : ["login", "unix://" + started.socketPath]
        let result = try await tyger(login)
        try #require(result.exitCode == 0, "\(result)")
    }

    /// SIGKILL to the server, then a new one on the same data directory.
    func killAndRestartServer() async throws {
        guard let server else { return }
        server.process.signal(SIGKILL)
        _ = try await server.process.wait(timeout: .seconds(20))
        try await startServer()
    }

    /// Whether a writer began `buffer` (its `.bufferstart` is stored). A reader of a buffer that no writer began
    /// waits for one, as upstream's does: that wait is not a hang.
    func writerBegan(_ buffer: String) -> Bool {
        let folder = buffer.hasPrefix("file://") ? String(buffer.dropFirst(7)) : dataDirectory + "/buffers/" + buffer
        return TestFiles.exists(folder + "/.bufferstart")
    }

    /// Runs `tyger` to completion.
    func tyger(
        _ arguments: [String],
        input: ChildInput = .null,
        timeout: Duration = .seconds(60)
    ) async throws
        -> ProcessResult
    {
        try await runProcess(TygerBinary.path(), arguments, input: input, environment: environment, timeout: timeout)
    }

    /// Starts `tyger` without waiting.
    func start(_ arguments: [String], input: ChildInput = .null) throws -> ChildProcess {
        try ChildProcess(TygerBinary.path(), arguments, input: input, environment: environment)
    }

    /// A new, empty buffer: a `file://` path, or a buffer created on the server.
    func newBuffer() async throws -> String {
        counter += 1
        if path == .local { return "file://\(directory)/buffers/b\(counter)" }
        let created = try await tyger(["buffer", "create"])
        try #require(created.exitCode == 0, "\(created)")
        return created.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Creates the `faultcat` codespec (copies input to output; its command line carries the marker).
    func createCodespec() async throws {
        guard path != .local else { return }
        let yaml = """
            name: faultcat
            image: ubuntu
            buffers:
              inputs: [input]
              outputs: [output]
            command:
              - sh
              - -c
              - cat "$INPUT_PIPE" > "$OUTPUT_PIPE"
              - \(marker)

            """
        let file = directory + "/faultcat.yml"
        try TestFiles.write(Array(yaml.utf8), to: file)
        let created = try await tyger(["codespec", "create", "-f", file])
        try #require(created.exitCode == 0, "\(created)")
    }

    /// Whether the server answers (`tyger buffer list --limit 1`).
    func serverAnswers() async -> Bool {
        guard path != .local else { return true }
        let listed = try? await tyger(["buffer", "list", "--limit", "1"], timeout: .seconds(30))
        return listed?.exitCode == 0
    }

    /// The pids of live processes whose command line contains `text`.
    func processes(containing text: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let me = getpid()
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), pid != me,
                let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                String(decoding: data, as: UTF8.self).contains(text)
            else { return nil }
            // A zombie waiting for its reaper is gone already.
            let status = (try? String(contentsOfFile: "/proc/\(entry)/status", encoding: .utf8)) ?? ""
            return status.contains("State:\tZ") ? nil : pid
        }
    }

    /// Leftovers of the trials: live processes that are not the server (CLIs, run processes), FIFOs, temporary
    /// files of unfinished blobs.
    func leftovers() -> [String] {
        let serverPID = server?.process.pid
        var found: [String] = []
        for pid in processes(containing: home) + processes(containing: marker) where pid != serverPID {
            let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "?"
            found.append("process \(pid): \(cmd.replacingOccurrences(of: "\0", with: " "))")
        }
        for root in [directory] {
            guard let e = FileManager.default.enumerator(atPath: root) else { continue }
            while let item = e.nextObject() as? String {
                var st = stat()
                guard lstat(root + "/" + item, &st) == 0 else { continue }
                if (st.st_mode & S_IFMT) == S_IFIFO { found.append("FIFO \(item)") }
                if item.contains(".tmp-") { found.append("temporary file \(item)") }
            }
        }
        return found
    }

    /// Waits (up to `bound`) until no leftovers remain; returns those still there.
    func leftoversAfterSettling(bound: Duration = .seconds(30)) async -> [String] {
        var last: [String] = []
        _ = await eventually(timeout: bound, every: .milliseconds(100)) {
            last = leftovers()
            return last.isEmpty
        }
        return last
    }
}

extension ChildProcess {
    /// Waits up to `timeout`; `nil` (after SIGKILL) when the process was still running.
    func waitBounded(_ timeout: Duration) async -> ProcessResult? {
        try? await wait(timeout: timeout)
    }
}
