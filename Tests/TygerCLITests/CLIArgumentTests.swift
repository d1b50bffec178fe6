import Testing
import TygerTestSupport

/// A command line that must be refused, and how.
struct Refusal: Sendable, CustomTestStringConvertible {
    var arguments: [String]
    var message: String
    var exitCode: Int32
    var testDescription: String { arguments.joined(separator: " ") }
}

/// The placeholder for a fresh buffer path in `Refusal.arguments`.
let bufferPlaceholder = "BUFFER"

@Suite struct CLIArgumentTests {
    /// Usage errors: the command line itself is wrong (README, "Exit status"): exit 64 (EX_USAGE) with one line,
    /// `Error: …`, whether ArgumentParser, `validate()` or the command found it.
    static let usageErrors: [Refusal] = [
        Refusal(arguments: ["buffer", "gen", "12Q"], message: "invalid size '12Q'", exitCode: 64),
        Refusal(arguments: ["buffer", "gen", "1.5"], message: "invalid size '1.5'", exitCode: 64),
        Refusal(arguments: ["buffer", "gen"], message: "Missing expected argument", exitCode: 64),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--flush-interval", "5x"],
            message: "invalid duration '5x'",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--flush-interval=-1s"],
            message: "invalid duration '-1s'",
            exitCode: 64
        ),
        // A token in clear to another machine: refused before any connection (https://, or --allow-insecure).
        Refusal(
            arguments: ["login", "http://192.0.2.1:8080", "--token", "t"],
            message: "refusing to send a token in clear to http://192.0.2.1:8080",
            exitCode: 64
        ),
        // Huge numbers: refused with their limit, never a crash (exit 132) or a process eating all memory.
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--dop", "99999999999"],
            message: "--dop must be from 1 to 1024, got 99999999999",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "-f", "1e10"],
            message: "longer than the limit of 9000000000 seconds",
            exitCode: 64
        ),
        Refusal(
            arguments: ["run", "exec", "--codespec", "x", "--timeout", "1e30"],
            message: "longer than the limit of 9000000000 seconds",
            exitCode: 64
        ),
        Refusal(
            arguments: ["run", "exec", "--codespec", "x", "--read-dop", "5000"],
            message: "--read-dop must be from 1 to 1024, got 5000",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--dop", "0"],
            message: "--dop must be from 1 to 1024, got 0",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "read", bufferPlaceholder, "--dop", "0"],
            message: "--dop must be from 1 to 1024, got 0",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--format", "0.4"],
            message: "unknown --format '0.4'",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--format", "0.3.0", "--compress", "fast"],
            message: "--compress needs the native format",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--compress", "zstd"],
            message: "zstd",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--block-size", "100"],
            message: "--block-size must be between 1K and 256M",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--block-size", "1G"],
            message: "--block-size must be between 1K and 256M",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "--block-size", "4X"],
            message: "invalid size '4X'",
            exitCode: 64
        ),
        Refusal(arguments: ["buffer", "frobnicate"], message: "frobnicate", exitCode: 64),
        Refusal(arguments: ["buffer", "read"], message: "Missing expected argument", exitCode: 64),
        Refusal(arguments: ["buffer", "gen", "1M", "--no-such-option"], message: "--no-such-option", exitCode: 64),
        Refusal(arguments: ["buffer", "read", ""], message: "a buffer ID, access URL or file", exitCode: 64),
        Refusal(
            arguments: ["buffer", "read", "ftp://host/b?sv=1"],
            message: "unsupported access URL scheme 'ftp'",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", "gs://bucket/b"],
            message: "unsupported access URL scheme 'gs'",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "write", "s3://bucket?endpoint=http://127.0.0.1:1"],
            message: "names no buffer",
            exitCode: 64
        ),
        Refusal(
            arguments: ["buffer", "read", "s3://BUCKET/b"],
            message: "the bucket name must be",
            exitCode: 64
        ),
        Refusal(arguments: ["buffer", "read", "file://"], message: "invalid file URL 'file://'", exitCode: 64),
        Refusal(
            arguments: ["buffer", "read", "http://h/c?sv=1", "--access-ttl", "01:00"],
            message: "--access-ttl can only be used with a buffer ID",
            exitCode: 64
        ),
        Refusal(
            arguments: ["run", "create", "--codespec", "x", "--buffer", "input"],
            message: "invalid --buffer 'input': expected KEY=VALUE",
            exitCode: 64
        ),
        Refusal(
            arguments: ["run", "exec", "--codespec", "x", "--buffer-ttl", "1.2.3"],
            message: "invalid --buffer-ttl '1.2.3'",
            exitCode: 64
        ),
        Refusal(
            arguments: ["run", "create", "--codespec", "x", "--run-tag", "=v"],
            message: "invalid --run-tag '=v'",
            exitCode: 64
        ),
        Refusal(arguments: ["run", "create"], message: "a codespec is required", exitCode: 64),
        Refusal(arguments: ["run", "create", "--codespec", "x", "-r", "0"], message: "--replicas", exitCode: 64),
        Refusal(arguments: ["run", "list", "--since", "yesterday"], message: "invalid time 'yesterday'", exitCode: 64),
        Refusal(
            arguments: ["run", "counts", "--since", "2026-13-45T00:00:00Z"],
            message: "invalid time '2026-13-45T00:00:00Z'",
            exitCode: 64
        ),
        Refusal(arguments: ["run", "logs", "1", "--since", "25:00"], message: "invalid time '25:00'", exitCode: 64),
        Refusal(arguments: ["run", "list", "--since", "2026-02-30"], message: "invalid time", exitCode: 64),
        Refusal(arguments: ["run", "list", "--since", "5 parsecs ago"], message: "invalid time", exitCode: 64),
        Refusal(arguments: ["run", "show"], message: "Missing expected argument", exitCode: 64),
        Refusal(arguments: ["codespec", "create", "c"], message: "a container image is required", exitCode: 64),
        Refusal(
            arguments: ["codespec", "create", "c", "--image", "i", "--endpoint", "web=http"],
            message: "invalid --endpoint 'web=http'",
            exitCode: 64
        ),
        Refusal(arguments: ["--log-level", "loud", "buffer", "gen", "1"], message: "loud", exitCode: 64),
    ]

    /// Errors found while running: exit 1 with one logged line.
    static let runtimeErrors: [Refusal] = [
        // A server that cannot be reached: which one and why, in words (no NIO type names).
        Refusal(
            arguments: ["buffer", "read", "http+unix:///nonexistent/api.sock:/containers/b?sv=1"],
            message: "cannot reach http+unix:///nonexistent/api.sock: no such file or directory",
            exitCode: 1
        ),
        Refusal(
            arguments: ["buffer", "read", "http://127.0.0.1:1/containers/b?sv=1"],
            message: "cannot reach http://127.0.0.1:1: connection refused",
            exitCode: 1
        ),
        Refusal(arguments: ["buffer", "read", bufferPlaceholder], message: "the buffer does not exist", exitCode: 1),
        Refusal(
            arguments: ["buffer", "read", "nosuchbufferid"],
            message: "buffer 'nosuchbufferid' not found",
            exitCode: 1
        ),
        Refusal(arguments: ["run", "show", "12345"], message: "run '12345' not found", exitCode: 1),
        Refusal(arguments: ["run", "logs", "12345"], message: "run '12345' not found", exitCode: 1),
        Refusal(arguments: ["codespec", "show", "nosuch"], message: "codespec 'nosuch' not found", exitCode: 1),
        // A file named on the command line that is missing or unreadable: the world disagrees, exit 1.
        Refusal(
            arguments: ["run", "create", "-f", "/nonexistent/run.yml"],
            message: "cannot read the file '/nonexistent/run.yml'",
            exitCode: 1
        ),
        Refusal(
            arguments: ["buffer", "read", "no/such/file"],
            message: "is not a buffer ID, an access URL, or a file holding an access URL",
            exitCode: 1
        ),
        Refusal(
            arguments: ["buffer", "write", bufferPlaceholder, "-i", "/nonexistent/input"],
            message: "cannot open '/nonexistent/input' for reading",
            exitCode: 1
        ),
    ]

    @Test(arguments: usageErrors + runtimeErrors)
    func refused(refusal: Refusal) async throws {
        try await withTemporaryDirectory { dir in
            let buffer = dir + "/buffer"
            let arguments = refusal.arguments.map { $0 == bufferPlaceholder ? "file://" + buffer : $0 }
            let result = try await TygerBinary.run(arguments, timeout: .seconds(30))
            #expect(result.exitCode == refusal.exitCode, "\(result)")
            #expect(result.stderrText.contains(refusal.message), "\(result)")
            #expect(!result.stderrText.contains("CommandError("), "raw parser error leaked: \(result)")
            #expect(!result.stderrText.contains("Error("), "a type name leaked: \(result)")
            #expect(result.stdout.isEmpty)
            let lines = result.stderrText.split(separator: "\n")
            if refusal.exitCode == 64 {
                #expect(lines.count == 1, "one line: \(result)")
                #expect(lines.first?.hasPrefix("Error: ") == true, "\(result)")
            } else {
                #expect(result.errorLines.count == 1, "one line: \(result)")
                #expect(result.errorLines.first?.contains(" ERR ") == true, "\(result)")
            }
            // A refused command leaves nothing behind.
            #expect(!TestFiles.exists(buffer))
        }
    }

    @Test func helpAndVersion() async throws {
        let help = try await TygerBinary.run(["--help"])
        #expect(help.exitCode == 0, "\(help)")
        #expect(help.stdoutText.contains("USAGE: tyger"))
        #expect(help.stdoutText.contains("buffer"))
        let bufferHelp = try await TygerBinary.run(["buffer", "write", "--help"])
        #expect(bufferHelp.exitCode == 0)
        #expect(bufferHelp.stdoutText.contains("--flush-interval"))
        #expect(bufferHelp.stdoutText.contains("--compress"))
        let version = try await TygerBinary.run(["--version"])
        #expect(version.exitCode == 0, "\(version)")
        #expect(version.stdoutText.split(separator: ".").count == 3)
    }

    @Test func bufferAliasWorks() async throws {
        let result = try await TygerBinary.run(["buffers", "gen", "64"])
        #expect(result.exitCode == 0)
        #expect(result.stdout == Payload.generated(count: 64))
    }
}
