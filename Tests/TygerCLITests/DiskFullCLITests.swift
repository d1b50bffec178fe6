import Foundation
import Testing
import TygerTestSupport

extension LiveServerCLITests {
    /// A server whose disk fills during `tyger buffer write` over HTTP: one clear line, exit 1, the buffer marked
    /// failed, and the server still answering. The server's data directory is an 8 MiB tmpfs.
    @Suite(.timeLimit(.minutes(3))) struct DiskFullCLITests {
        @Test func aWriteToAFullDiskFailsWithOneLineAndMarksTheBufferFailed() async throws {
            try await withTemporaryDirectory(prefix: "tyger-full") { dir in
                let mount = dir + "/small"
                try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
                let mounted = try await runProcess("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mount])
                try #require(mounted.exitCode == 0, "\(mounted)")
                do {
                    try await check(dataDirectory: mount + "/server")
                } catch {
                    _ = try? await runProcess("/usr/bin/umount", ["-l", mount])
                    throw error
                }
                _ = try await runProcess("/usr/bin/umount", ["-l", mount])
            }
        }

        private func check(dataDirectory: String) async throws {
            try await withServer(dataDirectory: dataDirectory) { server in
                try await withCLIHome { home in
                    #expect(try await home.run(["login", "unix://" + server.socketPath]).exitCode == 0)
                    let id = try await home.output(["buffer", "create"])
                    let wrote = try await home.run(
                        ["buffer", "write", id],
                        input: .bytes(Payload.random(count: 24 << 20, seed: 7))
                    )
                    #expect(wrote.exitCode == 1, "\(wrote)")
                    let lines = wrote.stderrText.split(separator: "\n").filter { !$0.isEmpty }
                    #expect(lines.count == 1, "\(wrote.stderrText)")
                    #expect(wrote.stderrText.contains("disk is full"), "\(wrote.stderrText)")
                    let read = try await home.run(["buffer", "read", id])
                    #expect(read.exitCode == 1, "\(read)")
                    #expect(read.stderrText.lowercased().contains("failed"), "\(read.stderrText)")
                    // The server still answers.
                    #expect(try await home.run(["buffer", "show", id]).exitCode == 0)
                }
            }
        }
    }
}
