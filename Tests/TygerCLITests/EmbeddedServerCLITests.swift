import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

extension LiveServerCLITests {
    /// The embedded local server: started on demand in `$TYGER_HOME`, reused, stopped by `tyger api stop`.
    @Suite(.timeLimit(.minutes(3))) struct EmbeddedServerCLITests {
        @Test func theFirstCommandStartsTheServerLaterOnesReuseItAndStopEndsIt() async throws {
            try await withCLIHome { home in
                let socket = home.serverDirectory + "/api.sock"
                #expect(!TestFiles.exists(socket))
                #expect(home.embeddedServerPID == nil)

                let status = try object(try await home.json(["api", "status"]))
                #expect(status["controlPlaneEndpoint"] as? String == "http+unix://\(socket):")
                #expect(status["mode"] as? String == "embedded")
                #expect(status["healthy"] as? Bool == true)
                #expect(status["home"] as? String == home.path)
                #expect(status["dataDirectory"] as? String == home.serverDirectory)
                let pid = Int32(try #require(status["pid"] as? Int, "\(status)"))
                #expect(home.embeddedServerPID == pid)
                #expect(ServerProcesses.serving(dataDirectory: home.serverDirectory) == [pid])
                #expect(TestFiles.exists(socket))

                // A second command reuses it.
                let id = try await home.output(["buffer", "create"])
                #expect(isBufferID(id), "\(id)")
                #expect(TestFiles.exists(home.serverDirectory + "/buffers/" + id))
                let again = try object(try await home.json(["api", "status"]))
                #expect(again["pid"] as? Int == Int(pid))
                #expect(ServerProcesses.serving(dataDirectory: home.serverDirectory) == [pid])

                let stop = try await home.run(["api", "stop"])
                #expect(stop.exitCode == 0, "\(stop)")
                #expect(stop.stderrText.contains("Stopped the local server"), "\(stop)")
                #expect(
                    await eventually(timeout: .seconds(60)) {
                        ServerProcesses.serving(dataDirectory: home.serverDirectory).isEmpty
                    }
                )
                #expect(home.embeddedServerPID == nil)
                #expect(!TestFiles.exists(socket), "a graceful stop removes the socket")

                let stopAgain = try await home.run(["api", "stop"])
                #expect(stopAgain.exitCode == 0, "\(stopAgain)")
                #expect(stopAgain.stderrText.contains("The local server is not running"), "\(stopAgain)")
                #expect(
                    ServerProcesses.serving(dataDirectory: home.serverDirectory).isEmpty,
                    "api stop must not start a server"
                )

                // The next command starts a new server, which still has the buffer.
                let shown = try object(try await home.json(["buffer", "show", id]))
                #expect(shown["id"] as? String == id)
                let restarted = try #require(home.embeddedServerPID)
                #expect(restarted != pid)
                #expect(ServerProcesses.serving(dataDirectory: home.serverDirectory) == [restarted])
            }
        }

        @Test func racingCLIsFromACleanHomeStartExactlyOneServer() async throws {
            try await withCLIHome { home in
                let children = try (0..<6).map { _ in try home.start(["buffer", "create"]) }
                var created: [String] = []
                for child in children {
                    let result = try await child.wait(timeout: .seconds(90))
                    #expect(result.exitCode == 0, "\(result)")
                    created.append(result.line)
                }
                #expect(created.allSatisfy(isBufferID), "\(created)")
                #expect(Set(created).count == 6, "\(created)")

                let servers = ServerProcesses.serving(dataDirectory: home.serverDirectory)
                #expect(servers.count == 1, "\(servers)")
                #expect(servers.first == home.embeddedServerPID)
                // Only one server ever started: one listening line in the server's log, and no refused second start.
                let log = String(
                    decoding: (try? TestFiles.read(home.serverDirectory + "/server.log")) ?? [],
                    as: UTF8.self
                )
                #expect(log.components(separatedBy: "endpoint=http+unix://").count - 1 == 1, "\(log)")
                #expect(!log.contains("already listening"), "\(log)")

                let listed = try objects(try await home.json(["buffer", "list"]))
                #expect(Set(ids(listed)) == Set(created))
            }
        }

        @Test func aServerKilledWithoutCleanupIsReplacedByTheNextCommand() async throws {
            try await withCLIHome { home in
                _ = try await home.output(["buffer", "list"])
                let pid = try #require(home.embeddedServerPID)
                kill(pid, SIGKILL)
                #expect(
                    await eventually(timeout: .seconds(60)) {
                        ServerProcesses.serving(dataDirectory: home.serverDirectory).isEmpty
                    }
                )
                // The stale socket and pid file are left behind; the next command must still get a working server.
                let id = try await home.output(["buffer", "create"])
                #expect(isBufferID(id))
                let replacement = try #require(home.embeddedServerPID)
                #expect(replacement != pid)
                #expect(ServerProcesses.serving(dataDirectory: home.serverDirectory) == [replacement])
            }
        }

        /// After a crash the PID in `server.pid` may name an unrelated process: `api stop` must leave it alone.
        @Test func apiStopNeverSignalsAProcessThatIsNotThisHomesServer() async throws {
            try await withCLIHome { home in
                let bystander = try ChildProcess("/bin/sleep", ["300"])
                defer { bystander.signal(SIGKILL) }
                try TestFiles.makeDirectory(home.serverDirectory)
                try TestFiles.write(Array("\(bystander.pid)\n".utf8), to: home.serverDirectory + "/server.pid")
                let stop = try await home.run(["api", "stop"])
                #expect(stop.exitCode == 0, "\(stop)")
                #expect(stop.stderrText.contains("The local server is not running"), "\(stop)")
                // Still running half a second later (a signalled `sleep` would have ended at once); `wait` kills it
                // when its time is up, and says so by throwing.
                let ended = try? await bystander.wait(timeout: .milliseconds(500))
                #expect(
                    ended == nil,
                    "api stop signalled a process that is not the server: \(String(describing: ended))"
                )
                #expect(!TestFiles.exists(home.serverDirectory + "/server.pid"), "the stale pid file is removed")
                #expect(ServerProcesses.serving(dataDirectory: home.serverDirectory).isEmpty)
            }
        }

        /// Buffer data and databases are private to the user: a blob, the databases and every directory the server
        /// creates are 0600/0700, and another user (`nobody`) cannot read a blob.
        @Test func nothingTheServerCreatesIsReadableByOthers() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                let write = try await home.run(["buffer", "write", id], input: .bytes(Array("secret\n".utf8)))
                #expect(write.exitCode == 0, "\(write)")
                func mode(_ path: String) throws -> Int {
                    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1) & 0o777
                }
                func isDirectory(_ path: String) -> Bool {
                    var directory: ObjCBool = false
                    return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
                }
                // Every directory 0700, every file 0600 (the socket too).
                #expect(try mode(home.serverDirectory) == 0o700)
                var blob: String?
                for sub in try FileManager.default.subpathsOfDirectory(atPath: home.serverDirectory) {
                    let path = home.serverDirectory + "/" + sub
                    #expect(try mode(path) == (isDirectory(path) ? 0o700 : 0o600), "\(sub)")
                    if sub.hasPrefix("buffers/\(id)/"), !isDirectory(path),
                        !(sub as NSString).lastPathComponent.hasPrefix(".")
                    {
                        blob = path
                    }
                }
                // As another user: refused. (Only root can switch users; elsewhere the modes above are the check.)
                let blobPath = try #require(blob, "no blob was written")
                guard getuid() == 0 else { return }
                let other = try await runProcess(
                    "/usr/sbin/runuser",
                    ["-u", "nobody", "--", "/bin/cat", blobPath],
                    timeout: .seconds(30)
                )
                #expect(other.exitCode != 0, "\(other)")
                #expect(other.stderrText.contains("Permission denied"), "\(other)")
            }
        }
    }
}
