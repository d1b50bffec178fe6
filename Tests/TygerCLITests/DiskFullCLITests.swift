import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A small tmpfs mounted for one test and always unmounted afterwards (also when the test fails). Needs root; the
/// tests that use it are skipped otherwise.
func withTmpfs<T>(megabytes: Int, _ body: (String) async throws -> T) async throws -> T? {
    guard getuid() == 0 else { return nil }
    return try await withTemporaryDirectory(prefix: "tyger-tmpfs") { dir in
        let mount = try await runProcess("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", dir])
        guard mount.exitCode == 0 else { return nil }
        do {
            let result = try await body(dir)
            _ = try? await runProcess("/usr/bin/umount", ["-l", dir])
            return result
        } catch {
            _ = try? await runProcess("/usr/bin/umount", ["-l", dir])
            throw error
        }
    }
}

extension LiveServerCLITests {
    /// Disk full: a 16 MiB tmpfs as a `file://` target, as `TYGER_HOME` (the embedded server's data directory, which the
    /// CLI writes through the local store) and as the data directory of a server the CLI reaches over TCP (HTTP).
    /// A write that cannot be stored fails with one clear line and a non-zero exit; a reader never returns its buffer as
    /// complete; nothing temporary is left behind; the server still answers.
    @Suite(.serialized, .timeLimit(.minutes(5))) struct DiskFullCLITests {
        @Test func fileTargetOnAFullDisk() async throws {
            let ran = try await withTmpfs(megabytes: 16) { fs in
                let buffer = "file://\(fs)/b"
                let wrote = try await runShell(
                    "$TYGER buffer gen 64M | $TYGER buffer write \(buffer) -b 1M",
                    timeout: .seconds(120)
                )
                #expect(wrote.exitCode == 1, "\(wrote)")
                #expect(wrote.errorLines.count == 1, "one line: \(wrote.stderrText)")
                #expect(wrote.stderrText.lowercased().contains("space"), "\(wrote)")
                let read = try await TygerBinary.run(
                    ["buffer", "read", buffer, "-o", "/dev/null"],
                    timeout: .seconds(60)
                )
                #expect(read.exitCode == 1, "a failed buffer reads as complete: \(read)")
                let temporary = TestFiles.regularFiles(under: fs).filter { $0.contains(".tmp-") }
                #expect(temporary.isEmpty, "\(temporary)")
                // The same write fits once space is freed.
                removeTree(fs + "/b")
                let again = try await runShell(
                    "$TYGER buffer gen 4M | $TYGER buffer write \(buffer)",
                    timeout: .seconds(60)
                )
                #expect(again.exitCode == 0, "\(again)")
                return true
            }
            if ran == nil {
                FaultSettings.report("disk full (file://): skipped (needs root)")
            } else {
                FaultSettings.report("disk full (file://): 1 trial, 0 data lost")
            }
        }

        @Test func embeddedServerOnAFullDisk() async throws {
            let ran = try await withTmpfs(megabytes: 16) { fs in
                let home = fs + "/home"
                try TestFiles.makeDirectory(home)
                let env = ["TYGER_HOME": home]
                defer { for pid in ServerProcesses.serving(dataDirectory: home + "/server") { kill(pid, SIGKILL) } }
                let created = try await runProcess(TygerBinary.path(), ["buffer", "create"], environment: env)
                try #require(created.exitCode == 0, "\(created)")
                let id = created.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                try await checkWriteToAFullDisk(id, environment: env, leftoversUnder: home)
                _ = try? await runProcess(TygerBinary.path(), ["api", "stop"], environment: env, timeout: .seconds(30))
                return true
            }
            if ran == nil {
                FaultSettings.report("disk full (TYGER_HOME): skipped (needs root)")
            } else {
                FaultSettings.report("disk full (TYGER_HOME): 1 trial, 0 data lost")
            }
        }

        /// A server over TCP whose data directory is on the full tmpfs: the write goes through the HTTP data plane.
        @Test func serverDataDirectoryOnAFullDiskOverHTTP() async throws {
            let ran = try await withTmpfs(megabytes: 16) { fs in
                try await withTemporaryDirectory(prefix: "tyger-diskfull-home") { home in
                    let data = fs + "/server"
                    try TestFiles.makeDirectory(data)
                    let token = try await TygerServerBinary.createToken(dataDirectory: data)
                    try await withServer(dataDirectory: data, arguments: ["--tcp", "127.0.0.1:0"]) { server in
                        let env = ["TYGER_HOME": home]
                        let tyger = try TygerBinary.path()
                        let endpoint = try #require(server.tcpEndpoint)
                        let login = try await runProcess(
                            tyger,
                            ["login", endpoint, "--token", token],
                            environment: env
                        )
                        try #require(login.exitCode == 0, "\(login)")
                        let created = try await runProcess(tyger, ["buffer", "create"], environment: env)
                        try #require(created.exitCode == 0, "\(created)")
                        let id = created.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                        try await checkWriteToAFullDisk(id, environment: env, leftoversUnder: data)
                    }
                }
                return true
            }
            FaultSettings.report(
                "disk full (server data over HTTP): \(ran == nil ? "skipped (needs root)" : "1 trial, 0 data lost")"
            )
        }

        /// Writes 64 MiB into buffer `id`, whose store is on the full tmpfs: the write fails with one clear line and
        /// exit 1, a reader of the buffer exits 1 (never reads it as complete), the server still answers, and no
        /// temporary file is left under `leftoversUnder`.
        private func checkWriteToAFullDisk(
            _ id: String,
            environment env: [String: String],
            leftoversUnder directory: String
        ) async throws {
            let tyger = try TygerBinary.path()
            let wrote = try await runShell(
                "$TYGER buffer gen 64M | $TYGER buffer write \(id) -b 1M",
                environment: env,
                timeout: .seconds(120)
            )
            #expect(wrote.exitCode == 1, "\(wrote)")
            #expect(wrote.errorLines.count == 1, "one line: \(wrote.stderrText)")
            #expect(
                wrote.stderrText.lowercased().contains("space") || wrote.stderrText.contains("full"),
                "\(wrote)"
            )
            let read = try await runProcess(
                tyger,
                ["buffer", "read", id, "-o", "/dev/null"],
                environment: env,
                timeout: .seconds(60)
            )
            #expect(read.exitCode == 1, "a failed buffer reads as complete: \(read)")
            let listed = try await runProcess(tyger, ["buffer", "list", "--limit", "1"], environment: env)
            #expect(listed.exitCode == 0, "the server does not answer after a full disk: \(listed)")
            let temporary = TestFiles.regularFiles(under: directory).filter { $0.contains(".tmp-") }
            #expect(temporary.isEmpty, "\(temporary)")
        }
    }
}
