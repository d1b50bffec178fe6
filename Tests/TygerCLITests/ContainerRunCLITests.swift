import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

// Runs in containers through a real Docker Engine API (Podman's, started by tools/container-engine with images built
// from Debian packages). The run-engine tests of RunCLITests also run on this executor; these cover what only
// containers have. Skipped where TYGER_TEST_DOCKER_HOST is not set (tools/test always sets it).

/// `curl` against the test engine's API: `arguments`, then the URL of `path` under `/v1.41`.
func engineRequest(_ path: String, _ arguments: [String] = []) async throws -> ProcessResult {
    let socket = String(try #require(TestExecutor.dockerHost).dropFirst("unix://".count))
    return try await runProcess(
        "/usr/bin/curl",
        ["-s", "--unix-socket", socket] + arguments + ["http://d/v1.41" + path]
    )
}

/// Removes an image from the test engine (so that a run must pull it).
private func removeImage(_ reference: String) async throws {
    _ = try await engineRequest("/images/\(reference)?force=true", ["-X", "DELETE"])
}

/// The containers of the test engine carrying `label` (`key=value`), as the Docker API lists them.
func containers(label: String) async throws -> [[String: Any]] {
    let filters = "{\"label\":[\"\(label)\"]}"
    let listed = try await engineRequest(
        "/containers/json",
        ["-f", "-G", "--data-urlencode", "all=true", "--data-urlencode", "filters=\(filters)"]
    )
    try #require(listed.exitCode == 0, "\(listed)")
    return try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout)) as? [[String: Any]])
}

/// Creates (not starts) a container carrying `labels` in the test engine; returns its ID.
private func createContainer(labels: [String: String]) async throws -> String {
    let body = try JSONSerialization.data(withJSONObject: ["Image": "busybox", "Cmd": ["true"], "Labels": labels])
    let created = try await engineRequest(
        "/containers/create",
        ["-f", "-H", "Content-Type: application/json", "-d", String(decoding: body, as: UTF8.self)]
    )
    try #require(created.exitCode == 0, "\(created)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(created.stdout)) as? [String: Any])
    return try #require(object["Id"] as? String)
}

/// Removes a container of the test engine.
private func removeContainer(_ id: String) async throws {
    _ = try await engineRequest("/containers/\(id)?force=true", ["-f", "-X", "DELETE"])
}

/// A relay from a TCP port on 127.0.0.1 to a unix socket, each connection copied both ways on threads of its own: the
/// test engine reached as `tcp://127.0.0.1:PORT`, as a remote Docker daemon would be.
private final class TCPToUnixRelay: Sendable {
    let port: Int
    private let listener: Int32
    private let accepted = Locked(0)

    /// How many connections it has relayed.
    var connections: Int { accepted.value }

    init(unixSocket: String) throws {
        let socket = try LoopbackSocket(listening: true)
        let fd = socket.descriptor
        listener = fd
        port = socket.port
        let accepted = accepted
        startThread {
            while true {
                let client = accept(fd, nil, nil)
                if client >= 0 { _ = fcntl(client, F_SETFD, FD_CLOEXEC) }
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return  // closed by stop()
                }
                let engine = Self.connect(unixSocket)
                guard engine >= 0 else {
                    close(client)
                    continue
                }
                accepted.withLock { $0 += 1 }
                let ended = Locked(0)
                for (from, to) in [(client, engine), (engine, client)] {
                    startThread {
                        Self.copy(from, to)
                        // The second direction to end closes both.
                        let count = ended.withLock {
                            $0 += 1
                            return $0
                        }
                        if count == 2 {
                            close(client)
                            close(engine)
                        }
                    }
                }
            }
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        if !connected { close(fd) }
        return connected ? fd : -1
    }

    /// Copies `from` to `to` until `from` ends or either fails, then ends the writing side of `to`.
    private static func copy(_ from: Int32, _ to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        loop: while true {
            let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            var offset = 0
            while offset < n {
                let w = buffer.withUnsafeBytes { send(to, $0.baseAddress! + offset, n - offset, Int32(MSG_NOSIGNAL)) }
                if w < 0 && errno == EINTR { continue }
                if w <= 0 { break loop }
                offset += w
            }
        }
        shutdown(to, Int32(SHUT_WR))
    }
}

private func text(_ path: String) throws -> String { String(decoding: try TestFiles.read(path), as: UTF8.self) }

@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestExecutor.dockerHost != nil))
struct ContainerRunCLITests {
    /// The code runs inside the image (a file only the image has), with the image's environment plus the codespec's
    /// and the pipe variables, none of the server's own; `command` replaces the entrypoint and `args` the command.
    @Test func theCodespecRunsInsideItsImageWithOnlyItsEnvironment() async throws {
        try await withTyger(.docker, environment: ["TYGER_TEST_SERVER_SECRET": "leaked-42"]) { s in
            try await s.codespec(
                "inside",
                """
                name: inside
                image: ubuntu
                buffers:
                  inputs: ["my-input"]
                  outputs: ["output"]
                env:
                  GREETING: "hi $(MY-INPUT_PIPE)"
                command: ["bash", "-c"]
                args:
                  - |
                    set -euo pipefail
                    {
                      cat /tyger-image.txt
                      cat "$MY_INPUT_PIPE"
                      echo "greeting=$GREETING"
                      echo "run=$TYGER_RUN_ID replica=$TYGER_REPLICA_INDEX pwd=$PWD"
                      env | grep -c TYGER_TEST_SERVER_SECRET || true
                    } > "$OUTPUT_PIPE"
                """
            )
            let exec = try await s.shell(#"echo data | "$TYGER" run exec --codespec inside"#)
            #expect(exec.exitCode == 0, "\(exec)")
            let lines = exec.stdoutText.split(separator: "\n").map(String.init)
            try #require(lines.count == 5, "\(exec)")
            #expect(lines[0] == "ubuntu", "not inside the image: \(exec)")
            #expect(lines[1] == "data")
            #expect(lines[2].hasPrefix("greeting=hi /run/secrets/") && lines[2].hasSuffix("/pipes/my-input.pipe"))
            #expect(lines[3].hasPrefix("run=") && lines[3].hasSuffix(" replica=0 pwd=/"), "\(lines[3])")
            #expect(lines[4] == "0", "the server's environment reached the container: \(exec)")

            // The run records the image that ran, as the engine identifies it.
            let runs = try jsonArray(try await s.tyger(["run", "list", "--limit", "1"]))
            let id = try #require(runs.first.map { "\($0["id"] ?? "")" })
            let run = try await s.show(id)
            let executed = try #require(run["executedImage"] as? [String: Any], "\(run)")
            #expect(executed["reference"] as? String == "ubuntu")
            let inspected = try await engineRequest("/images/ubuntu/json", ["-f"])
            let image = try #require(try JSONSerialization.jsonObject(with: Data(inspected.stdout)) as? [String: Any])
            #expect(executed["imageId"] as? String == image["Id"] as? String, "\(run)")
            #expect((executed["imageId"] as? String ?? "").hasPrefix("sha256:"), "\(run)")

            // An empty `command` keeps the image's entrypoint; `args` become its command.
            try s.file(
                "entry.yml",
                "job:\n  codespec:\n    image: localhost/tyger-test/busybox-nobody\n    args: [\"a\", \"b\"]\n"
            )
            let entry = try await s.tyger(["run", "exec", "-f", s.directory + "/entry.yml", "--logs"])
            #expect(entry.exitCode == 0, "\(entry)")
            #expect(entry.stderrText.contains("entrypoint: a b"), "\(entry)")
        }
    }

    /// An image whose user is not root reads and writes the run's pipes.
    @Test func aNonRootImageUserUsesThePipes() async throws {
        try await withTyger(.docker) { s in
            try s.file(
                "cat.yml",
                """
                job:
                  codespec:
                    image: localhost/tyger-test/busybox-nobody
                    buffers:
                      inputs: ["input"]
                      outputs: ["output"]
                    command: ["sh", "-c", "echo uid=$(id -u) > $OUTPUT_PIPE; cat $INPUT_PIPE > /dev/null"]
                """
            )
            let exec = try await s.shell(#"echo x | "$TYGER" run exec -f cat.yml"#)
            #expect(exec.exitCode == 0, "\(exec)")
            #expect(exec.stdoutText == "uid=65534\n", "\(exec)")
        }
    }

    /// Replicas are one container each, with their index; containers are removed once the run ends.
    @Test func replicasAreContainersThatAreRemovedAtTheEnd() async throws {
        try await withTyger(.docker) { s in
            try s.file(
                "replicas.yml",
                """
                job:
                  replicas: 3
                  codespec:
                    image: busybox
                    command: ["sh", "-c", "echo replica $TYGER_REPLICA_INDEX of $TYGER_REPLICA_COUNT"]
                """
            )
            let id = try await s.createRun(["-f", s.directory + "/replicas.yml"])
            let instance = try text(s.home + "/server/instance-id").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await s.watch(id) == "Succeeded")
            let logs = try await s.tyger(["run", "logs", id])
            let lines = Set(logs.stdoutText.split(separator: "\n").map(String.init))
            #expect(
                lines == ["[replica-0] replica 0 of 3", "[replica-1] replica 1 of 3", "[replica-2] replica 2 of 3"],
                "\(logs)"
            )
            #expect(
                await eventually(timeout: .seconds(60)) {
                    (try? await containers(label: "tyger-instance=\(instance)"))?.isEmpty == true
                },
                "the run's containers are still there"
            )
        }
    }

    /// A codespec asking for GPUs is refused at creation where the engine has no GPU runtime, never left Pending; a
    /// container that exits without opening its pipes ends the run at once, its output buffer failed.
    @Test func gpuRequestsAreRefusedAndUnopenedPipesEndTheRun() async throws {
        try await withTyger(.docker) { s in
            try s.file(
                "gpu.yml",
                "job:\n  codespec:\n    image: busybox\n    command: [\"true\"]\n    resources:\n      gpu: 1\n"
            )
            let gpu = try await s.tyger(["run", "create", "-f", s.directory + "/gpu.yml"])
            #expect(gpu.exitCode == 1, "\(gpu)")
            #expect(gpu.stderrText.contains("requests GPUs") && gpu.stderrText.contains("NVIDIA"), "\(gpu)")

            try s.file(
                "unopened.yml",
                """
                job:
                  codespec:
                    image: busybox
                    buffers:
                      inputs: ["input"]
                      outputs: ["output"]
                    command: ["sh", "-c", "exit 4"]
                """
            )
            let exec = try await s.shell(#"echo x | "$TYGER" run exec -f unopened.yml"#, timeout: .seconds(30))
            #expect(exec.exitCode == 1, "\(exec)")
            #expect(exec.elapsed < .seconds(15), "took \(exec.elapsed)")
            #expect(exec.stderrText.contains("Main exited with code 4"), "\(exec)")
        }
    }

    /// A container killed for memory names the OOM killer in the run's reason.
    @Test func aContainerOverItsMemoryLimitFailsTheRunWithTheReason() async throws {
        try await withTyger(.docker) { s in
            try s.file(
                "oom.yml",
                """
                job:
                  codespec:
                    image: ubuntu
                    command: ["tail", "/dev/zero"]
                    resources:
                      limits:
                        memory: 32Mi
                """
            )
            let exec = try await s.tyger(["run", "exec", "-f", s.directory + "/oom.yml"], timeout: .seconds(60))
            #expect(exec.exitCode == 1, "\(exec)")
            #expect(exec.stderrText.contains("Main exited with code 137"), "\(exec)")
            #expect(exec.stderrText.contains("OOM killer"), "\(exec)")
        }
    }

    /// Images: a malformed reference and (with pulls off) a missing image are refused at creation, naming the image;
    /// a failed pull fails the run within 10 s with the engine's reason.
    @Test func imageProblemsAreRefusedOrFailTheRunNamingTheImage() async throws {
        try await withTyger(.docker) { s in
            try s.file("bad.yml", "job:\n  codespec:\n    image: \"Ubuntu:!!\"\n    command: [\"true\"]\n")
            let bad = try await s.tyger(["run", "create", "-f", s.directory + "/bad.yml"])
            #expect(bad.exitCode == 1, "\(bad)")
            #expect(bad.stderrText.contains("The image 'Ubuntu:!!' is not a valid reference"), "\(bad)")

            try s.file(
                "unreachable.yml",
                "job:\n  codespec:\n    image: 127.0.0.1:1/nothing/here:1\n    command: [\"true\"]\n"
            )
            let started = ContinuousClock.now
            let pull = try await s.tyger(
                ["run", "exec", "-f", s.directory + "/unreachable.yml"],
                timeout: .seconds(30)
            )
            #expect(pull.exitCode == 1, "\(pull)")
            #expect(
                ContinuousClock.now - started < .seconds(10),
                "the failed pull took \(ContinuousClock.now - started)"
            )
            #expect(pull.stderrText.contains("cannot pull the image '127.0.0.1:1/nothing/here:1'"), "\(pull)")
        }
        try await withTyger(.docker, environment: ["TYGER_PULL": "never"]) { s in
            try s.file(
                "missing.yml",
                "job:\n  codespec:\n    image: localhost/no-such-image:1\n    command: [\"true\"]\n"
            )
            let missing = try await s.tyger(["run", "create", "-f", s.directory + "/missing.yml"])
            #expect(missing.exitCode == 1, "\(missing)")
            #expect(missing.stderrText.contains("The image 'localhost/no-such-image:1' was not found"), "\(missing)")
            #expect(missing.stderrText.contains("--pull never"), "\(missing)")
            let runs = try jsonArray(try await s.tyger(["run", "list"]))
            #expect(runs.isEmpty, "a refused run was created: \(runs)")
        }
    }

    /// Pulls from a registry (Debian's docker-registry on a loopback port): a missing image is pulled at start and
    /// the run records its repository digest; `--pull` pulls first; a server that does not pull refuses `--pull`;
    /// a server of host processes ignores it with a warning.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TYGER_TEST_REGISTRY"] != nil))
    func imagesArePulledFromARegistryAsThePolicySays() async throws {
        let registry = try #require(ProcessInfo.processInfo.environment["TYGER_TEST_REGISTRY"])
        let image = "\(registry)/tyger-test/busybox:1"
        let spec = "job:\n  codespec:\n    image: \(image)\n    command: [cat, /tyger-image.txt]\n"
        try await removeImage(image)
        try await withTyger(.docker) { s in
            try s.file("pulled.yml", spec)
            let exec = try await s.tyger(["run", "exec", "-f", s.directory + "/pulled.yml", "--logs"])
            #expect(exec.exitCode == 0, "\(exec)")
            #expect(exec.stderrText.contains("busybox"), "\(exec)")
            let runs = try jsonArray(try await s.tyger(["run", "list", "--limit", "1"]))
            let run = try await s.show(try #require(runs.first.map { "\($0["id"] ?? "")" }))
            let executed = try #require(run["executedImage"] as? [String: Any], "\(run)")
            let digest = executed["repoDigest"] as? String ?? ""
            #expect(digest.hasPrefix("\(registry)/tyger-test/busybox@sha256:"), "\(run)")

            let again = try await s.tyger(["run", "exec", "-f", s.directory + "/pulled.yml", "--pull"])
            #expect(again.exitCode == 0, "\(again)")
        }
        try await withTyger(.docker, environment: ["TYGER_PULL": "never"]) { s in
            try s.file("pulled.yml", spec)
            let refused = try await s.tyger(["run", "create", "-f", s.directory + "/pulled.yml", "--pull"])
            #expect(refused.exitCode == 1, "\(refused)")
            #expect(refused.stderrText.contains("does not pull images (--pull never)"), "\(refused)")
        }
        try await withTyger(.process) { s in
            try s.file("host.yml", "job:\n  codespec:\n    image: \(image)\n    command: [\"true\"]\n")
            let ignored = try await s.tyger(["run", "exec", "-f", s.directory + "/host.yml", "--pull"])
            #expect(ignored.exitCode == 0, "\(ignored)")
            #expect(ignored.stderrText.contains("--pull has no effect"), "\(ignored)")
        }
    }

    /// A registry that needs a password: the pull fails naming the image without credentials, and works with the
    /// credentials of the Docker client configuration (`DOCKER_CONFIG`: an `auths` entry, then a credential helper),
    /// which the server sends in `X-Registry-Auth`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TYGER_TEST_AUTH_REGISTRY"] != nil))
    func aRegistryThatNeedsAPasswordGetsTheDockerConfigsCredentials() async throws {
        let settings = try #require(ProcessInfo.processInfo.environment["TYGER_TEST_AUTH_REGISTRY"])
            .split(separator: " ").map(String.init)
        try #require(settings.count == 3, "\(settings)")
        let (registry, user, password) = (settings[0], settings[1], settings[2])
        let image = "\(registry)/tyger-test/private:1"
        try await removeImage(image)
        let spec = "job:\n  codespec:\n    image: \(image)\n    command: [cat, /tyger-image.txt]\n"
        try await withTemporaryDirectory(prefix: "tyger-docker-config") { config in
            try await withTyger(.docker, environment: ["DOCKER_CONFIG": config]) { s in
                try s.file("private.yml", spec)
                let refused = try await s.tyger(["run", "exec", "-f", s.directory + "/private.yml"])
                #expect(refused.exitCode == 1, "\(refused)")
                #expect(refused.stderrText.contains("cannot pull the image '\(image)'"), "\(refused)")
            }
            let auth = Data("\(user):\(password)".utf8).base64EncodedString()
            try TestFiles.write(
                Array("{\"auths\": {\"\(registry)\": {\"auth\": \"\(auth)\"}}}".utf8),
                to: config + "/config.json"
            )
            try await withTyger(.docker, environment: ["DOCKER_CONFIG": config]) { s in
                try s.file("private.yml", spec)
                let pulled = try await s.tyger(["run", "exec", "-f", s.directory + "/private.yml", "--logs"])
                #expect(pulled.exitCode == 0, "\(pulled)")
                #expect(pulled.stderrText.contains("busybox"), "\(pulled)")
            }

            // The same credentials from a credential helper on PATH (`credHelpers`), the auths entry gone.
            try await removeImage(image)
            let helper =
                "#!/bin/sh\nread -r registry\n"
                + "[ \"$registry\" = '\(registry)' ] || exit 1\n"
                + "echo '{\"Username\":\"\(user)\",\"Secret\":\"\(password)\"}'\n"
            try TestFiles.write(Array(helper.utf8), to: config + "/docker-credential-test")
            #expect(chmod(config + "/docker-credential-test", 0o755) == 0)
            try TestFiles.write(
                Array("{\"credHelpers\": {\"\(registry)\": \"test\"}}".utf8),
                to: config + "/config.json"
            )
            let path = config + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            try await withTyger(.docker, environment: ["DOCKER_CONFIG": config, "PATH": path]) { s in
                try s.file("private.yml", spec)
                let pulled = try await s.tyger(["run", "exec", "-f", s.directory + "/private.yml", "--logs"])
                #expect(pulled.exitCode == 0, "\(pulled)")
                #expect(pulled.stderrText.contains("busybox"), "\(pulled)")
            }
        }
    }

    /// `api status` names the executor and the engine; `/metadata` has upstream's `Docker` capability.
    /// An engine at `tcp://HOST:PORT` (a remote Docker daemon's address form) runs codespecs as one at a unix socket
    /// does: the container's output, its logs and the engine in `api status`, every request through that port.
    @Test func anEngineAtATCPAddressRunsTheCodespec() async throws {
        let socket = String(try #require(TestExecutor.dockerHost).dropFirst("unix://".count))
        let relay = try TCPToUnixRelay(unixSocket: socket)
        defer { relay.stop() }
        let host = "tcp://127.0.0.1:\(relay.port)"
        try await withTyger(.docker, environment: ["DOCKER_HOST": host]) { s in
            try s.file(
                "tcp.yml",
                """
                job:
                  codespec:
                    image: ubuntu
                    buffers:
                      inputs: ["input"]
                      outputs: ["output"]
                    command: ["bash", "-c"]
                    args:
                      - |
                        { cat /tyger-image.txt; tr a-z A-Z < "$INPUT_PIPE"; } > "$OUTPUT_PIPE"
                        echo logged >&2
                """
            )
            let exec = try await s.shell(#"echo over tcp | "$TYGER" run exec -f tcp.yml --logs"#)
            #expect(exec.exitCode == 0, "\(exec)")
            #expect(exec.stdoutText == "ubuntu\nOVER TCP\n", "\(exec)")
            #expect(exec.stderrText.contains("logged"), "\(exec)")
            let status = try await s.tyger(["api", "status"])
            #expect(status.stdoutText.contains("Podman"), "\(status)")
        }
        #expect(relay.connections > 0, "nothing went through the TCP address")
    }

    @Test func apiStatusNamesTheExecutorAndTheEngine() async throws {
        try await withTyger(.docker) { s in
            let status = try await s.tyger(["api", "status"])
            #expect(status.exitCode == 0, "\(status)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout)) as? [String: Any])
            let metadata = try #require(object["metadata"] as? [String: Any], "\(status)")
            let executor = try #require(metadata["executor"] as? [String: Any], "\(status)")
            #expect(executor["kind"] as? String == "docker")
            #expect((executor["engine"] as? String ?? "").contains("Podman"), "\(status)")
            #expect(
                metadata["capabilities"] as? [String] == [
                    "DistributedRuns", "EphemeralBuffers", "Docker", "LocalBuffers",
                ],
                "\(status)"
            )
        }
        try await withTyger(.process) { s in
            let status = try await s.tyger(["api", "status"])
            #expect(
                status.stdoutText.contains("\"kind\" : \"process\"")
                    || status.stdoutText.contains("\"kind\": \"process\""),
                "\(status)"
            )
        }
    }

    /// A server killed while its run's container runs leaves the container; the next server fails the run and
    /// removes the container. Containers of another server instance on the same engine are left alone.
    @Test func aRestartedServerRemovesItsLeftoverContainersOnly() async throws {
        try await withTyger(.docker) { s in
            try await s.codespec("sleeper", scriptCodespec("sleeper", "exec sleep 60"))
            let id = try await s.createRun(["--codespec", "sleeper"])
            _ = try await s.waitForStatus(id, in: ["Running"])
            let server = try #require(
                Int32(try text(s.home + "/server/server.pid").trimmingCharacters(in: .whitespacesAndNewlines))
            )
            let instance = try text(s.home + "/server/instance-id").trimmingCharacters(in: .whitespacesAndNewlines)
            // Another server's container for a run with the same ID.
            let foreign = try await createContainer(labels: ["tyger-run": id, "tyger-instance": "0123456789abcdef"])
            #expect(kill(server, SIGKILL) == 0)
            #expect(await eventually(timeout: .seconds(60)) { kill(server, 0) != 0 })
            let left = try await containers(label: "tyger-instance=\(instance)")
            #expect(left.count == 1, "the run's container outlives a killed server: \(left)")

            let run = try await s.waitForStatus(id, in: ["Failed", "Succeeded", "Canceled"], timeout: .seconds(20))
            #expect(run["status"] as? String == "Failed", "\(run)")
            #expect(
                await eventually(timeout: .seconds(60)) {
                    (try? await containers(label: "tyger-instance=\(instance)"))?.isEmpty == true
                },
                "the leftover container is still there"
            )
            let others = try await containers(label: "tyger-instance=0123456789abcdef")
            #expect(others.map { $0["Id"] as? String } == [foreign], "another server's container was touched")
            try await removeContainer(foreign)
        }
    }

    /// A run without buffers whose container ended while no server was running gets the container's exit status
    /// from the next server, not a generic failure.
    @Test func aContainerThatEndedWhileTheServerWasDownGivesItsExitStatus() async throws {
        try await withTyger(.docker) { s in
            try await s.codespec("brief", scriptCodespec("brief", "sleep 2; exit 3"))
            let id = try await s.createRun(["--codespec", "brief"])
            _ = try await s.waitForStatus(id, in: ["Running"])
            let server = try #require(
                Int32(try text(s.home + "/server/server.pid").trimmingCharacters(in: .whitespacesAndNewlines))
            )
            let instance = try text(s.home + "/server/instance-id").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(kill(server, SIGKILL) == 0)
            #expect(await eventually(timeout: .seconds(60)) { kill(server, 0) != 0 })
            // The container ends by itself meanwhile.
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(200)) {
                    let left = (try? await containers(label: "tyger-instance=\(instance)")) ?? []
                    return left.count == 1 && (left[0]["State"] as? String) == "exited"
                },
                "the container did not end by itself"
            )
            let run = try await s.waitForStatus(id, in: ["Failed", "Succeeded", "Canceled"], timeout: .seconds(20))
            #expect(run["status"] as? String == "Failed", "\(run)")
            #expect(run["statusReason"] as? String == "Main exited with code 3", "\(run)")
            #expect(
                await eventually(timeout: .seconds(60)) {
                    (try? await containers(label: "tyger-instance=\(instance)"))?.isEmpty == true
                },
                "the ended container is still there"
            )
        }
    }

    /// A container has no network by default: a port listening on the host's loopback is out of its reach. With
    /// `--container-network host` (`TYGER_CONTAINER_NETWORK`) it shares the host's and reaches it.
    @Test func theContainerNetworkIsNoneUnlessHostIsConfigured() async throws {
        let listener = try LoopbackSocket(listening: true)
        defer { listener.close() }
        let port = listener.port
        let spec = """
            job:
              codespec:
                image: ubuntu
                command: ["bash", "-c", "if echo hi 2>/dev/null > /dev/tcp/127.0.0.1/\(port); then echo reached; else echo unreachable; fi"]
            """
        for (network, expected) in [(nil, "unreachable"), ("host", "reached")] as [(String?, String)] {
            let environment = network.map { ["TYGER_CONTAINER_NETWORK": $0] } ?? [:]
            try await withTyger(.docker, environment: environment) { s in
                let id = try await s.createRun(["-f", try s.file("network.yml", spec)])
                #expect(try await s.watch(id) == "Succeeded")
                let logs = try await s.tyger(["run", "logs", id])
                #expect(logs.stdoutText == expected + "\n", "network \(network ?? "default"): \(logs)")
            }
        }
    }

    /// Workers are containers too: in the default network (none) they share the first worker's network namespace
    /// and the job joins it, so it reaches them on loopback while the host does not; with the host's network they
    /// are on the host's loopback. The job starts once every endpoint listens, and the workers go with the job.
    @Test func workersAreContainersTheJobReachesOnLoopback() async throws {
        let spec = workerProbingRun(
            jobImage: "ubuntu",
            path: "/tyger-image.txt",
            before: "echo \"workers at $TYGER_HTTP_WORKER_ENDPOINT_ADDRESSES\"\nsleep 3",
            worker: """
                worker:
                  codespec:
                    kind: worker
                    image: busybox
                    endpoints: {http: 8080}
                    command: [busybox, httpd, -f, -h, /, -p]
                    args: ["127.0.0.1:$(TYGER_HTTP_PORT)"]
                  replicas: 2

                """
        )
        for network in [nil, "host"] as [String?] {
            let environment = network.map { ["TYGER_CONTAINER_NETWORK": $0] } ?? [:]
            try await withTyger(.docker, environment: environment) { s in
                let file = try s.file("distributed.yml", spec)
                let id = try await s.createRun(["-f", file])
                let instance = try text(s.home + "/server/instance-id").trimmingCharacters(in: .whitespacesAndNewlines)
                // While the job runs, its workers listen: on the host's loopback with the host network, out of the
                // host's reach with none.
                var announced: [Int] = []
                #expect(
                    await eventually(timeout: .seconds(60)) {
                        let logs = (try? await s.tyger(["run", "logs", id]))?.stdoutText ?? ""
                        guard let line = logs.split(separator: "\n").first(where: { $0.hasPrefix("workers at ") })
                        else { return false }
                        announced = line.split(separator: ":").dropFirst().compactMap {
                            Int($0.prefix(while: \.isNumber))
                        }
                        return true
                    },
                    "network \(network ?? "none"): the job never started"
                )
                #expect(announced.count == 2, "\(announced)")
                let reachable = announced.filter { accepts(port: $0) }
                #expect(
                    reachable == (network == "host" ? announced : []),
                    "network \(network ?? "none"): reachable from the host: \(reachable) of \(announced)"
                )
                #expect(try await s.watch(id) == "Succeeded", "network \(network ?? "none")")
                var ports: [Int] = []
                let buffers = try #require(
                    (try await s.show(id)["job"] as? [String: Any])?["buffers"] as? [String: Any]
                )
                let output = try #require(buffers["output"] as? String)
                let read = try await s.tyger(["buffer", "read", output])
                #expect(read.exitCode == 0, "\(read)")
                let lines = read.stdoutText.split(separator: "\n").map(String.init)
                #expect(lines.first == #"["127.0.0.1","127.0.0.1"]"#, "network \(network ?? "none"): \(read)")
                for answer in lines.dropFirst() {
                    let parts = answer.split(separator: " ").map(String.init)
                    #expect(parts.count >= 3 && parts[1].hasPrefix("HTTP/1."), "\(answer)")
                    #expect(parts.last == "busybox", "the worker's own image served it: \(answer)")
                    if let port = parts.first?.split(separator: ":").last.flatMap({ Int($0) }) { ports.append(port) }
                }
                #expect(Set(ports).count == 2, "two workers, two ports: \(lines)")
                let logs = try await s.tyger(["run", "logs", id])
                #expect(!logs.stdoutText.contains("Failed"), "\(logs)")
                // The workers' containers went with the job.
                #expect(
                    await eventually(timeout: .seconds(60)) {
                        (try? await containers(label: "tyger-instance=\(instance)"))?.isEmpty == true
                    },
                    "the run's containers are still there"
                )
            }
        }
    }

    /// A CPU limit becomes the container's CFS quota; an exit after the first seconds (when the executor waits
    /// differently on Podman) still ends the run at once with the container's exit code.
    @Test func aCPULimitIsTheContainersQuotaAndALaterExitGivesItsCode() async throws {
        try await withTyger(.docker) { s in
            let spec = try s.file(
                "cpu.yml",
                """
                job:
                  codespec:
                    image: ubuntu
                    command:
                      - bash
                      - -c
                      - "cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us); sleep 4; exit 3"
                    resources:
                      limits:
                        cpu: 500m
                """
            )
            let id = try await s.createRun(["-f", spec])
            _ = try await s.waitForStatus(id, in: ["Running"])
            let started = ContinuousClock.now
            let run = try await s.waitForStatus(id, in: ["Failed", "Succeeded", "Canceled"], timeout: .seconds(30))
            #expect(run["status"] as? String == "Failed", "\(run)")
            #expect(run["statusReason"] as? String == "Main exited with code 3", "\(run)")
            #expect(ContinuousClock.now - started < .seconds(15), "the exit took \(ContinuousClock.now - started)")
            let logs = try await s.tyger(["run", "logs", id])
            #expect(logs.stdoutText == "50000 100000\n", "\(logs)")
        }
    }

    /// Bad settings: an unknown executor is a usage error; an engine that is not there stops the server at start
    /// with one line naming it.
    @Test func badExecutorSettingsGiveClearErrors() async throws {
        try await withTemporaryDirectory(prefix: "tyger-exec") { dir in
            let unknown = try await runProcess(
                TygerServerBinary.path(),
                ["run", "--data-dir", dir + "/a", "--executor", "kubernetes"]
            )
            #expect(unknown.exitCode == 64, "\(unknown)")
            #expect(unknown.stderrText.contains("unknown --executor 'kubernetes'"), "\(unknown)")
            let absent = try await runProcess(
                TygerServerBinary.path(),
                ["run", "--data-dir", dir + "/b", "--executor", "docker", "--docker-host", "unix://\(dir)/none.sock"],
                timeout: .seconds(30)
            )
            #expect(absent.exitCode == 1, "\(absent)")
            #expect(
                absent.stderrText.contains("cannot reach the container engine at unix://\(dir)/none.sock"),
                "\(absent)"
            )

            // An engine speaking an API older than 1.41 (no such engine runs here: a stand-in answers /version).
            let socket = dir + "/old.sock"
            let standIn = try ChildProcess(
                "/usr/bin/python3",
                [
                    "-c",
                    """
                    import http.server, socketserver, sys
                    class H(http.server.BaseHTTPRequestHandler):
                        def do_GET(self):
                            body = b'{"ApiVersion":"1.30","Version":"17.06.0","Platform":{"Name":"Docker Engine"}}'
                            self.send_response(200)
                            self.send_header("Content-Type", "application/json")
                            self.send_header("Content-Length", str(len(body)))
                            self.end_headers()
                            self.wfile.write(body)
                        def log_message(self, *a): pass
                    class S(socketserver.UnixStreamServer):
                        def get_request(self):
                            request, _ = super().get_request()
                            return request, ("local", 0)
                    S(sys.argv[1], H).serve_forever()
                    """,
                    socket,
                ]
            )
            defer { standIn.signal(SIGKILL) }
            #expect(await eventually(timeout: .seconds(60)) { FileManager.default.fileExists(atPath: socket) })
            let old = try await runProcess(
                TygerServerBinary.path(),
                ["run", "--data-dir", dir + "/c", "--executor", "docker", "--docker-host", "unix://\(socket)"],
                timeout: .seconds(30)
            )
            #expect(old.exitCode == 1, "\(old)")
            #expect(old.stderrText.contains("speaks API 1.30; at least 1.41 is needed"), "\(old)")
        }
    }
}
