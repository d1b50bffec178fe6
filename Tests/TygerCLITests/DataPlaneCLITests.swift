import Foundation
import Testing
import TygerTestSupport

/// `tyger-server data-plane` processes behind one control plane (`tyger-server run --data-plane NAME=URL`): a
/// buffer's location names the data plane that holds it, its access URLs lead there, and runs read and write it there.
@Suite(.timeLimit(.minutes(3))) struct DataPlaneCLITests {
    /// Runs `body` with a control plane and two data planes, `east` and `west`, that accept its signing key, and a
    /// home logged in to the control plane (its unix socket).
    func withDataPlanes(
        controlPlaneArguments: [String] = [],
        _ body: (_ home: CLIHome, _ directories: [String: String], _ planes: [String: ServerProcess]) async throws ->
            Void
    ) async throws {
        try await withTemporaryDirectory(prefix: "tyger-dp") { dir in
            let key = try await TygerServerBinary.run(["signing-key", "--data-dir", dir + "/cp"])
            try #require(key.exitCode == 0, "\(key)")
            #expect(key.stdoutText.hasPrefix("-----BEGIN PUBLIC KEY-----"), "\(key)")
            try TestFiles.write(Array(key.stdoutText.utf8), to: dir + "/cp.pub")
            let planeArguments = ["--tcp", "127.0.0.1:0", "--no-unix-socket", "--signing-key", dir + "/cp.pub"]
            let east = try await ServerProcess.start(
                dataDirectory: dir + "/east",
                arguments: planeArguments,
                command: "data-plane"
            )
            defer { east.process.signal(SIGKILL) }
            let west = try await ServerProcess.start(
                dataDirectory: dir + "/west",
                arguments: planeArguments,
                command: "data-plane"
            )
            defer { west.process.signal(SIGKILL) }
            let planes = [
                "--data-plane", "east=" + (try #require(east.tcpEndpoint)),
                "--data-plane", "west=" + (try #require(west.tcpEndpoint)),
            ]
            try await withServer(dataDirectory: dir + "/cp", arguments: planes + controlPlaneArguments) { server in
                try await withCLIHome { home in
                    let login = try await home.run(["login", "unix://" + server.socketPath])
                    try #require(login.exitCode == 0, "\(login)")
                    try await body(
                        home,
                        ["east": dir + "/east", "west": dir + "/west", "local": dir + "/cp"],
                        ["east": east, "west": west]
                    )
                }
            }
        }
    }

    @Test func buffersLiveOnTheDataPlaneTheirLocationNames() async throws {
        try await withDataPlanes { home, directories, _ in
            var ids: [String: String] = [:]
            for location in ["east", "west", "local"] {
                let id = try await home.output(["buffer", "create", "--location", location])
                ids[location] = id
                for (other, directory) in directories {
                    #expect(
                        TestFiles.exists(directory + "/buffers/" + id) == (other == location),
                        "\(location) buffer \(id) in \(other)"
                    )
                }
                let shown = try object(try await home.json(["buffer", "show", id]))
                #expect(shown["location"] as? String == location, "\(shown)")
                let written = try await home.shell("$TYGER buffer gen 9M | $TYGER buffer write \(id)")
                #expect(written.exitCode == 0, "\(written)")
                let read = try await home.shell("$TYGER buffer read \(id) | sha256sum")
                let expected = try await home.shell("$TYGER buffer gen 9M | sha256sum")
                #expect(shaOf(read) == shaOf(expected), "\(location)")
            }
            let access = try await home.output(["buffer", "access", ids["west"]!])
            #expect(!access.hasPrefix("http+unix://"), "a data plane's URL: \(access)")
            let unknown = try await home.run(["buffer", "create", "--location", "north"])
            #expect(unknown.exitCode == 1, "\(unknown)")
            #expect(unknown.stderrText.contains("Unknown buffer location 'north'"), "\(unknown)")

            // A run reads its input from one data plane and writes its output to the other.
            let spec = home.path + "/cat.yml"
            try TestFiles.write(
                Array(
                    """
                    kind: job
                    name: cat
                    image: local
                    buffers:
                      inputs: [input]
                      outputs: [output]
                    command: [sh, -c, 'cat "$INPUT_PIPE" > "$OUTPUT_PIPE"']

                    """.utf8
                ),
                to: spec
            )
            _ = try await home.output(["codespec", "create", "-f", spec])
            let output = try await home.output(["buffer", "create", "--location", "west"])
            let ran = try await home.run([
                "run", "exec", "--codespec", "cat", "--buffer", "input=\(ids["east"]!)", "--buffer", "output=\(output)",
            ])
            #expect(ran.exitCode == 0, "\(ran)")
            #expect(TestFiles.exists(directories["west"]! + "/buffers/" + output + "/.bufferend"))
            let copied = try await home.shell("$TYGER buffer read \(output) | sha256sum")
            let expected = try await home.shell("$TYGER buffer gen 9M | sha256sum")
            #expect(shaOf(copied) == shaOf(expected))
        }
    }

    /// Before: a data plane of its own process kept no writer leases, so the readers of a writer that died waited
    /// for ever and a second writer was not refused. It keeps them in its data directory now.
    @Test func aDataPlaneKeepsTheLeasesOfItsWriters() async throws {
        try await withDataPlanes { home, directories, _ in
            let id = try await home.output(["buffer", "create", "--location", "east"])
            let writer = try home.start(
                ["buffer", "write", id, "--flush-interval", "50ms", "--block-size", "16K"],
                input: .pipe
            )
            try writer.writeStdin(Array("first line\n".utf8))
            let stored = await eventually(timeout: .seconds(30)) {
                TestFiles.exists(directories["east"]! + "/buffers/\(id)/00/000")
            }
            #expect(stored, "the writer never stored its first blob: \(writer.stderrSoFar)")
            let second = try await home.run(["buffer", "write", id], input: .bytes(Array("second\n".utf8)))
            #expect(second.exitCode == 1, "\(second)")
            // Refused by the lease, or (when the first `.bufferstart` is already there) by write-once.
            #expect(
                second.stderrText.contains("another writer") || second.stderrText.contains("cannot be overwritten"),
                "\(second)"
            )

            writer.signal(SIGKILL)
            _ = try await writer.wait(timeout: .seconds(10))
            let read = try await home.run(["buffer", "read", id], timeout: .seconds(60))
            #expect(read.exitCode == 1, "\(read)")
            #expect(read.stderrText.contains("writer stopped without finishing"), "\(read)")
            #expect(read.elapsed < .seconds(30), "the reader took \(read.elapsed)")
            #expect(read.stdoutText == "first line\n")
        }
    }

    @Test func purgedBuffersLeaveTheirDataPlane() async throws {
        try await withDataPlanes(controlPlaneArguments: ["--expiry-interval", "1s", "--soft-deleted-lifetime", "1s"]) {
            home,
            directories,
            _ in
            let id = try await home.output(["buffer", "create", "--location", "east"])
            _ = try await home.output(["buffer", "delete", id])
            #expect(
                await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                    !TestFiles.exists(directories["east"]! + "/buffers/" + id)
                },
                "the buffer was never removed from its data plane"
            )
        }
    }

    /// Before: a purge deleted the buffer's record first and its container on every data plane; with one data plane
    /// down, the purge failed and the container stayed there for good. Now the container goes first, on the data
    /// plane the buffer's location names: other buffers are purged meanwhile, and this one once its data plane is back.
    @Test func aBufferPurgedWhileItsDataPlaneIsDownGoesWhenItIsBack() async throws {
        try await withTemporaryDirectory(prefix: "tyger-dp") { dir in
            let key = try await TygerServerBinary.run(["signing-key", "--data-dir", dir + "/cp"])
            try #require(key.exitCode == 0, "\(key)")
            try TestFiles.write(Array(key.stdoutText.utf8), to: dir + "/cp.pub")
            // A port of its own, so that the data plane comes back where the control plane expects it.
            let held = try LoopbackSocket(listening: false)
            let port = held.port
            held.close()
            let planeArguments = ["--tcp", "127.0.0.1:\(port)", "--no-unix-socket", "--signing-key", dir + "/cp.pub"]
            var east = try await ServerProcess.start(
                dataDirectory: dir + "/east",
                arguments: planeArguments,
                command: "data-plane"
            )
            defer { east.process.signal(SIGKILL) }
            let arguments = [
                "--data-plane", "east=http://127.0.0.1:\(port)", "--expiry-interval", "1s",
                "--soft-deleted-lifetime", "1s",
            ]
            try await withServer(dataDirectory: dir + "/cp", arguments: arguments) { server in
                try await withCLIHome { home in
                    let login = try await home.run(["login", "unix://" + server.socketPath])
                    try #require(login.exitCode == 0, "\(login)")
                    let remote = try await home.output(["buffer", "create", "--location", "east"])
                    let local = try await home.output(["buffer", "create"])
                    east.process.signal(SIGKILL)
                    _ = try await east.process.wait(timeout: .seconds(10))
                    _ = try await home.output(["buffer", "delete", remote])
                    _ = try await home.output(["buffer", "delete", local])
                    #expect(
                        await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                            !TestFiles.exists(dir + "/cp/buffers/" + local)
                        },
                        "the local buffer was not purged while the data plane was down"
                    )
                    #expect(
                        await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                            server.log.contains("cannot delete the container of a buffer due to be purged")
                        },
                        "\(server.log)"
                    )
                    #expect(TestFiles.exists(dir + "/east/buffers/" + remote))
                    east = try await ServerProcess.start(
                        dataDirectory: dir + "/east",
                        arguments: planeArguments,
                        command: "data-plane"
                    )
                    #expect(
                        await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                            !TestFiles.exists(dir + "/east/buffers/" + remote)
                        },
                        "the buffer was never removed from its data plane once it was back"
                    )
                    let gone = try await home.run(["buffer", "show", remote, "--soft-deleted"])
                    #expect(gone.exitCode == 1, "\(gone)")
                }
            }
        }
    }

    /// A data plane that is down is named, with a 503 the CLI reports as such; the others go on working.
    /// `api status` shows whether each data plane answers.
    @Test func anUnreachableDataPlaneIsNamed() async throws {
        try await withDataPlanes { home, _, planes in
            func health() async throws -> [String: Bool] {
                let status = try object(try await home.json(["api", "status"]))
                let metadata = try #require(status["metadata"] as? [String: Any], "\(status)")
                let listed = try #require(metadata["dataPlanes"] as? [[String: Any]], "\(metadata)")
                return Dictionary(
                    uniqueKeysWithValues: listed.map { ($0["name"] as? String ?? "", $0["healthy"] as? Bool ?? false) }
                )
            }
            #expect(try await health() == ["east": true, "west": true])
            let id = try await home.output(["buffer", "create", "--location", "east"])
            planes["east"]!.process.signal(SIGKILL)
            _ = try await planes["east"]!.process.wait(timeout: .seconds(10))
            #expect(try await health() == ["east": false, "west": true])
            for arguments in [["buffer", "create", "--location", "east"], ["buffer", "access", id]] {
                let result = try await home.run(arguments)
                #expect(result.exitCode == 1, "\(result)")
                #expect(
                    result.stderrText.contains("ServiceUnavailable: The data plane 'east' cannot be reached"),
                    "\(result)"
                )
            }
            #expect(try await home.run(["buffer", "create", "--location", "west"]).exitCode == 0)
        }
    }

    /// A data plane accepts only the keys it was given: a control plane with another key can neither make buffers
    /// there nor get at them.
    @Test func aDataPlaneRefusesOtherControlPlanes() async throws {
        try await withTemporaryDirectory(prefix: "tyger-dp") { dir in
            let key = try await TygerServerBinary.run(["signing-key", "--data-dir", dir + "/trusted"])
            try TestFiles.write(Array(key.stdoutText.utf8), to: dir + "/trusted.pub")
            let plane = try await ServerProcess.start(
                dataDirectory: dir + "/plane",
                arguments: ["--tcp", "127.0.0.1:0", "--no-unix-socket", "--signing-key", dir + "/trusted.pub"],
                command: "data-plane"
            )
            defer { plane.process.signal(SIGKILL) }
            let endpoint = try #require(plane.tcpEndpoint)
            try await withServer(dataDirectory: dir + "/other", arguments: ["--data-plane", "east=" + endpoint]) {
                server in
                try await withCLIHome { home in
                    _ = try await home.output(["login", "unix://" + server.socketPath])
                    let refused = try await home.run(["buffer", "create", "--location", "east"])
                    #expect(refused.exitCode == 1, "\(refused)")
                    let made = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/plane/buffers")) ?? []
                    #expect(made.isEmpty, "\(made)")
                }
            }
            let missing = try await TygerServerBinary.run([
                "data-plane", "--data-dir", dir + "/p2", "--tcp", "127.0.0.1:0",
            ])
            #expect(missing.exitCode == 64, "\(missing)")
            #expect(missing.stderrText.contains("--signing-key is required"), "\(missing)")
        }
    }
}
