import Foundation
import NIOCore
import Testing
import TygerRunEngine
import TygerTestSupport

@testable import TygerContainers

@Suite struct ImageReferenceTests {
    @Test(arguments: [
        "ubuntu", "ubuntu:22.04", "library/ubuntu", "docker.io/library/ubuntu:latest", "ghcr.io/org/recon:1.2",
        "localhost/tyger-test/busybox-nobody", "127.0.0.1:5000/a/b:c", "localhost:5000/x",
        "busybox@sha256:" + String(repeating: "a", count: 64), "my-registry.example.com/a__b/c.d-e:v1.0_rc",
    ])
    func validReferencesPass(_ reference: String) {
        #expect(ImageReference.problem(reference) == nil, "\(reference)")
    }

    @Test(arguments: [
        ("", "empty"), ("Ubuntu", "not a valid image name component"), ("ubuntu:!!", "the tag '!!'"),
        ("a//b", "not a valid image name component"), ("ubuntu:", "the tag ''"), ("-x", "component"),
        ("busybox@sha256:xyz", "digest"), ("a b", "component"), (String(repeating: "a", count: 256), "255"),
        ("ubuntu:.v1", "the tag '.v1'"),
    ])
    func invalidReferencesSayWhy(_ reference: String, _ reason: String) throws {
        let problem = try #require(ImageReference.problem(reference), "\(reference) passed")
        #expect(problem.contains(reason), "\(reference): \(problem)")
    }
}

/// One frame of the engine's multiplexed log stream.
private func frame(_ stream: UInt8, _ text: String) -> [UInt8] {
    let payload = Array(text.utf8)
    let n = payload.count
    return [stream, 0, 0, 0, UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
        + payload
}

@Suite struct LogDemuxerTests {
    /// Feeds `bytes` to a demuxer in chunks of `chunk` bytes and returns the log file's lines.
    private func demux(_ bytes: [UInt8], chunk: Int, prefix: String = "") throws -> [String] {
        try withTemporaryDirectorySync(prefix: "tyger-demux") { dir in
            let log = try RunLogWriter(path: dir + "/run.log")
            var demuxer = LogDemuxer(log: log, prefix: prefix)
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                demuxer.consume(ByteBuffer(bytes: bytes[offset..<end]))
                offset = end
            }
            demuxer.finish()
            let text = String(decoding: try TestFiles.read(dir + "/run.log"), as: UTF8.self)
            return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        }
    }

    @Test(arguments: [1, 3, 8, 9, 64, 1 << 20])
    func framesSplitAnywhereGiveWholeLinesWithTheEngineStamps(chunk: Int) throws {
        let stream =
            frame(1, "2026-12-03T06:00:00.000000001Z first\n")
            + frame(2, "2026-12-03T06:00:00.000000002Z to stderr\n")
            + frame(1, "2026-12-03T06:00:00.000000003Z a long line cut")
            + frame(1, "2026-12-03T06:00:00.000000004Z  in two\n")
            + frame(1, "2026-12-03T06:00:00.000000005Z no newline")
        let lines = try demux(stream, chunk: chunk, prefix: "[replica-1] ")
        #expect(
            lines == [
                "2026-12-03T06:00:00.000000001Z [replica-1] first",
                "2026-12-03T06:00:00.000000002Z [replica-1] to stderr",
                "2026-12-03T06:00:00.000000003Z [replica-1] a long line cut in two",
                "2026-12-03T06:00:00.000000005Z [replica-1] no newline",
            ],
            "\(lines)"
        )
    }

    /// Podman's stamps have whole seconds: the arrival time is used instead, and stamps never go back.
    @Test func wholeSecondStampsAreReplacedAndStampsNeverGoBack() throws {
        let stream =
            frame(1, "2026-12-03T06:00:00.5Z late\n") + frame(1, "2001-01-01T00:00:00Z old whole second\n")
            + frame(1, "2026-12-03T05:00:00.1Z earlier\n")
        let lines = try demux(stream, chunk: 5)
        try #require(lines.count == 3, "\(lines)")
        #expect(lines[0] == "2026-12-03T06:00:00.500000000Z late")
        let second = String(lines[1].prefix(30))
        #expect(!second.hasPrefix("2001"), "\(lines[1])")
        #expect(second >= "2026-12-03T06:00:00.500000000Z", "\(lines[1])")
        #expect(lines[2].hasSuffix(" earlier") && String(lines[2].prefix(30)) >= second, "\(lines[2])")
    }
}

@Suite struct RegistryCredentialsTests {
    /// Decodes an `X-Registry-Auth` value.
    private func decoded(_ header: String?) throws -> [String: String] {
        let value = try #require(header)
        var base64 = value.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        let data = try #require(Data(base64Encoded: base64))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
    }

    @Test func credentialsComeFromTheDockerConfigOfTheImagesRegistry() throws {
        try withTemporaryDirectorySync(prefix: "tyger-docker-config") { dir in
            let config = """
                {"auths": {
                  "127.0.0.1:5000": {"auth": "\(Data("alice:s3cr:et".utf8).base64EncodedString())"},
                  "https://ghcr.io": {"username": "bob", "password": "pw"},
                  "https://index.docker.io/v1/": {"identitytoken": "tok"}
                }}
                """
            try TestFiles.write(Array(config.utf8), to: dir + "/config.json")
            let environment = ["DOCKER_CONFIG": dir]
            let local = try decoded(RegistryCredentials.header(for: "127.0.0.1:5000/a/b:1", environment: environment))
            #expect(local == ["username": "alice", "password": "s3cr:et", "serveraddress": "127.0.0.1:5000"])
            let ghcr = try decoded(RegistryCredentials.header(for: "ghcr.io/org/recon:1.2", environment: environment))
            #expect(ghcr["username"] == "bob" && ghcr["password"] == "pw")
            let hub = try decoded(RegistryCredentials.header(for: "ubuntu", environment: environment))
            #expect(hub == ["identitytoken": "tok", "serveraddress": "https://index.docker.io/v1/"])
            #expect(RegistryCredentials.header(for: "quay.io/x/y", environment: environment) == nil)
            #expect(RegistryCredentials.header(for: "ubuntu", environment: ["DOCKER_CONFIG": dir + "/none"]) == nil)
        }
    }

    /// A credential helper on `PATH`, as `docker-credential-pass` or `-ecr-login` would be: it answers for the
    /// registries it knows and fails for the others.
    @Test func credentialHelpersAreRunForTheirRegistriesAndTheStoreForTheRest() throws {
        try withTemporaryDirectorySync(prefix: "tyger-docker-config") { dir in
            let helper = """
                #!/bin/sh
                test "$1" = get || exit 2
                read -r registry
                case "$registry" in
                  127.0.0.1:5000) echo '{"ServerURL":"127.0.0.1:5000","Username":"carol","Secret":"from-helper"}' ;;
                  ghcr.io) echo '{"ServerURL":"ghcr.io","Username":"<token>","Secret":"id-token"}' ;;
                  slow.example) sleep 30 ;;
                  big.example) printf '{"Username":"big","Secret":"%s"}' "$(head -c 200000 /dev/zero | tr '\\0' x)" ;;
                  agent.example) sleep 30 & echo '{"Username":"agent","Secret":"s"}' ;;
                  *) echo "credentials not found in native keychain" >&2; exit 1 ;;
                esac
                """
            try TestFiles.write(Array(helper.utf8), to: dir + "/docker-credential-fake")
            #expect(chmod(dir + "/docker-credential-fake", 0o755) == 0)
            let config = """
                {"auths": {"127.0.0.1:5000": {"auth": "\(Data("alice:pw".utf8).base64EncodedString())"},
                           "quay.io": {"username": "dave", "password": "pw2"}},
                 "credHelpers": {"127.0.0.1:5000": "fake", "ghcr.io": "fake", "quay.io": "", "slow.example": "fake",
                                 "big.example": "fake", "agent.example": "fake",
                                 "nohelper.example": "missing"}}
                """
            try TestFiles.write(Array(config.utf8), to: dir + "/config.json")
            let environment = ["DOCKER_CONFIG": dir, "PATH": dir + ":/usr/bin:/bin"]
            // The helper wins over the auths entry of the same registry.
            let local = try decoded(RegistryCredentials.header(for: "127.0.0.1:5000/a/b:1", environment: environment))
            #expect(local == ["username": "carol", "password": "from-helper", "serveraddress": "127.0.0.1:5000"])
            let ghcr = try decoded(RegistryCredentials.header(for: "ghcr.io/org/recon:1.2", environment: environment))
            #expect(ghcr == ["identitytoken": "id-token", "serveraddress": "ghcr.io"])
            // An empty helper name means the auths entry; a helper that is not installed means no credentials.
            let quay = try decoded(RegistryCredentials.header(for: "quay.io/x/y", environment: environment))
            #expect(quay["username"] == "dave")
            #expect(RegistryCredentials.header(for: "nohelper.example/x", environment: environment) == nil)
            // A helper that takes too long is stopped: no credentials, within its timeout (a short one here: the
            // call blocks its thread, and a test that holds a cooperative thread for 10 s slows every other test).
            let start = Date()
            #expect(
                RegistryCredentials.header(for: "slow.example/x", environment: environment, helperTimeout: 0.5) == nil
            )
            #expect(Date().timeIntervalSince(start) < 5)
            // An answer larger than a pipe holds (it blocked the helper until its timeout when read from a pipe), and
            // a helper that leaves a child running with its output open: both answer at once.
            let big = try decoded(
                RegistryCredentials.header(for: "big.example/x", environment: environment, helperTimeout: 5)
            )
            #expect(big["username"] == "big" && big["password"]?.count == 200_000)
            let agentStart = Date()
            let agent = try decoded(
                RegistryCredentials.header(for: "agent.example/x", environment: environment, helperTimeout: 5)
            )
            #expect(agent["username"] == "agent")
            #expect(Date().timeIntervalSince(agentStart) < 4)

            // credsStore: the helper for every registry without its own entry; its failure is "no credentials".
            let store = """
                {"credsStore": "fake", "auths": {"docker.io": {"auth": "\(Data("eve:pw".utf8).base64EncodedString())"}}}
                """
            try TestFiles.write(Array(store.utf8), to: dir + "/config.json")
            let viaStore = try decoded(RegistryCredentials.header(for: "127.0.0.1:5000/a", environment: environment))
            #expect(viaStore["password"] == "from-helper")
            #expect(RegistryCredentials.header(for: "ubuntu", environment: environment) == nil)
        }
    }
}

@Suite struct WorkerReadinessTests {
    /// The kernel's socket tables (`/proc/<pid>/net/tcp`, `tcp6`): only a socket in state LISTEN (0A) on the port
    /// counts, whatever its address; a connection from or to that port does not.
    @Test func aListeningSocketIsReadFromTheKernelsTable() {
        let tcp = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
               1: 0100007F:D431 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
            """
        #expect(DockerExecution.listens(on: 8080, table: tcp))
        #expect(!DockerExecution.listens(on: 8081, table: tcp), "an established connection's remote port")
        #expect(!DockerExecution.listens(on: 54321, table: tcp), "an established connection's local port")
        #expect(!DockerExecution.listens(on: 8080, table: ""))
        let tcp6 = """
              sl  local_address                         remote_address                        st tx_queue rx_queue
               0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000
            """
        #expect(DockerExecution.listens(on: 80, table: tcp6))
        #expect(!DockerExecution.listens(on: 0x50_00, table: tcp6))
    }
}
