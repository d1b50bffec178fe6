import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

extension LiveServerCLITests {
    /// HTTP writers hold a lease kept by the control plane: readers stop on a dead writer, a second writer is
    /// refused, a restart keeps the verdict; soft-deleted buffers are out of reach; crash leftovers are removed.
    @Suite(.timeLimit(.minutes(3))) struct WriterLeaseCLITests {
        /// Starts `tyger buffer write ID --transport http` with an open stdin pipe and waits until it stored
        /// `00/000`.
        func startHTTPWriter(_ home: CLIHome, _ id: String, first: [UInt8]) async throws -> ChildProcess {
            let writer = try home.start(
                ["buffer", "write", id, "--transport", "http", "--flush-interval", "50ms", "--block-size", "16K"],
                input: .pipe
            )
            try writer.writeStdin(first)
            let stored = await eventually(timeout: .seconds(30)) {
                TestFiles.exists(home.serverDirectory + "/buffers/\(id)/00/000")
            }
            #expect(stored, "the writer never stored its first blob: \(writer.stderrSoFar)")
            return writer
        }

        /// Before: readers waited forever on a killed HTTP writer (there was no lease over HTTP).
        @Test func aKilledHTTPWriterIsReportedAsAbandonedByHTTPAndLocalReaders() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                let writer = try await startHTTPWriter(home, id, first: Array("first line\n".utf8))
                writer.signal(SIGKILL)
                _ = try await writer.wait(timeout: .seconds(10))
                for transport in ["http", "auto"] {
                    let read = try await home.run(
                        ["buffer", "read", id, "--transport", transport],
                        timeout: .seconds(60)
                    )
                    #expect(read.exitCode == 1, "\(transport): \(read)")
                    #expect(read.stderrText.contains("writer stopped without finishing"), "\(transport): \(read)")
                    #expect(read.elapsed < .seconds(30), "\(transport): the reader took \(read.elapsed)")
                    #expect(read.stdoutText == "first line\n", "\(transport)")
                }
            }
        }

        /// Before: the second writer took the 409 on `.bufferstart` for its own retry and wrote into the buffer.
        @Test func aSecondHTTPWriterIsRefusedAndTheFirstWritersBufferReadsBack() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                let first = Payload.random(count: 20_000, seed: 5)
                let writer = try await startHTTPWriter(home, id, first: first)
                let second = try await home.run(
                    ["buffer", "write", id, "--transport", "http"],
                    input: .bytes(Payload.random(count: 50_000, seed: 6))
                )
                #expect(second.exitCode == 1, "\(second)")
                // Refused by the lease, or (when the first `.bufferstart` is already there) by write-once.
                #expect(
                    second.stderrText.contains("another writer") || second.stderrText.contains("cannot be overwritten"),
                    "\(second)"
                )
                let rest = Payload.random(count: 30_000, seed: 7)
                try writer.writeStdin(rest)
                writer.closeStdin()
                let wrote = try await writer.wait(timeout: .seconds(60))
                #expect(wrote.exitCode == 0, "\(wrote)")
                for transport in ["http", "auto"] {
                    let read = try await home.run(["buffer", "read", id, "--transport", transport])
                    #expect(read.exitCode == 0, "\(read)")
                    #expect(mismatch(read.stdout, first + rest) == nil, "\(transport)")
                }
            }
        }

        /// Before: a restarted server knew nothing of the writer, and the reader waited forever.
        @Test func aRestartedServerReportsAnAbandonedBufferInsteadOfHanging() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                let writer = try await startHTTPWriter(home, id, first: Array("before the crash\n".utf8))
                writer.signal(SIGKILL)
                _ = try await writer.wait(timeout: .seconds(10))
                let stopped = try await home.run(["api", "stop"], timeout: .seconds(30))
                #expect(stopped.exitCode == 0, "\(stopped)")
                #expect(home.embeddedServerPID == nil)
                // The next command starts the server again; the lease it finds has run out, or soon will.
                let read = try await home.run(["buffer", "read", id, "--transport", "http"], timeout: .seconds(60))
                #expect(read.exitCode == 1, "\(read)")
                #expect(read.stderrText.contains("writer stopped without finishing"), "\(read)")
                #expect(read.elapsed < .seconds(30), "the reader took \(read.elapsed)")
                #expect(read.stdoutText == "before the crash\n")
            }
        }

        /// Before: upstream (and we) let a soft-deleted buffer be read and written by ID.
        @Test func aSoftDeletedBufferIsRefusedUntilRestored() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                let wrote = try await home.run(["buffer", "write", id], input: .bytes(Array("kept\n".utf8)))
                #expect(wrote.exitCode == 0, "\(wrote)")
                let other = try await home.output(["buffer", "create"])
                #expect(try await home.run(["buffer", "delete", id, other]).exitCode == 0)
                for arguments in [
                    ["buffer", "read", id],
                    ["buffer", "read", id, "--transport", "http"],
                    ["buffer", "write", other],
                    ["buffer", "write", other, "--transport", "http"],
                    ["buffer", "access", id],
                ] {
                    let refused = try await home.run(arguments, input: .bytes(Array("x\n".utf8)))
                    #expect(refused.exitCode == 1, "\(arguments): \(refused)")
                    #expect(refused.stderrText.contains("soft-deleted"), "\(arguments): \(refused)")
                    #expect(refused.errorLines.count == 1, "\(arguments): \(refused)")
                    #expect(refused.stdout.isEmpty, "\(arguments)")
                }
                #expect(TestFiles.regularFiles(under: home.serverDirectory + "/buffers/" + other).isEmpty)
                #expect(try await home.run(["buffer", "restore", id]).exitCode == 0)
                let read = try await home.run(["buffer", "read", id, "--transport", "http"])
                #expect(read.exitCode == 0, "\(read)")
                #expect(read.stdoutText == "kept\n")
            }
        }

        /// Before: the temporary file of an upload cut short by a crash stayed beside the blobs forever.
        @Test func temporaryUploadFilesOfDeadProcessesAreRemovedAtServerStart() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                let directory = home.serverDirectory + "/buffers/" + id
                #expect(try await home.run(["api", "stop"], timeout: .seconds(30)).exitCode == 0)
                // No process has a pid above pid_max (at most 2^22): a crashed writer's file. The test's own pid is
                // a live writer's.
                let stale = [directory + "/.bufferstart.tmp-999999999-1", directory + "/00/000.tmp-999999998-7"]
                let live = directory + "/00/001.tmp-\(getpid())-1"
                try TestFiles.makeDirectory(directory + "/00")
                for path in stale + [live] { try TestFiles.write(Array("partial".utf8), to: path) }
                // Any command starts the server again.
                #expect(try await home.run(["buffer", "list"]).exitCode == 0)
                #expect(home.embeddedServerPID != nil)
                for path in stale { #expect(!TestFiles.exists(path), "\(path) survived the start") }
                #expect(TestFiles.exists(live))
            }
        }
    }
}
