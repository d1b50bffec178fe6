import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TygerCore
import TygerServer
import TygerTestSupport

/// Runs the built `tyger-server` and `tyger` binaries and drives the data plane with the real azure-storage-blob
/// Python client (`Tests/azure/azure_e2e.py`; `tools/install-test-deps` installs the client).
struct AzureClientEndToEndTests {
    /// The directory of the built products: beside the test bundle.
    static var binDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["TYGER_BIN_DIR"] { return dir }
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // swift test runs `<bin>/tyger-swiftPackageTests.xctest` directly on Linux.
        if url.lastPathComponent.hasSuffix(".xctest") { url = url.deletingLastPathComponent() }
        return url.path
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test(.timeLimit(.minutes(3)))
    func realAzureClientAgainstTygerServer() async throws {
        let bin = Self.binDirectory
        try #require(
            FileManager.default.isExecutableFile(atPath: bin + "/tyger-server")
                && FileManager.default.isExecutableFile(atPath: bin + "/tyger"),
            "build the products first (swift build --build-tests); looked in \(bin)"
        )
        let probe = try await run("/usr/bin/env", ["python3", "-c", "import azure.storage.blob"])
        try #require(probe.status == 0, "azure-storage-blob is missing: run tools/install-test-deps")

        let directory = TemporaryDirectory()
        let data = directory.path + "/data"
        let server = try await ServerProcess.start(
            dataDirectory: data,
            arguments: ["--tcp", "127.0.0.1:0"],
            executable: bin + "/tyger-server"
        )
        defer { if !server.process.hasExited { server.process.signal(SIGKILL) } }
        let endpoint = try #require(server.tcpEndpoint)

        // Tokens: created by the admin command while the server runs.
        let tokenRun = try await run(bin + "/tyger-server", ["token", "create", "--data-dir", data, "--name", "e2e"])
        #expect(tokenRun.status == 0)
        let token = tokenRun.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.hasPrefix("tyger_"))
        let listRun = try await run(bin + "/tyger-server", ["token", "list", "--data-dir", data])
        #expect(listRun.stdout.contains("\te2e"))
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let noToken = try await http.execute(HTTPClientRequest(url: endpoint + "/nothing"), timeout: .seconds(10))
            #expect(noToken.status == .unauthorized)
            var withToken = HTTPClientRequest(url: endpoint + "/nothing")
            withToken.headers.add(name: "Authorization", value: "Bearer \(token)")
            let authorized = try await http.execute(withToken, timeout: .seconds(10))
            #expect(authorized.status == .badRequest)  // past authentication: InvalidRoute
            let health = try await http.execute(
                HTTPClientRequest(url: endpoint + "/healthcheck"),
                timeout: .seconds(10)
            )
            #expect(health.status == .ok)
            try await http.shutdown()
        } catch {
            try? await http.shutdown()
            throw error
        }

        // Buffers written by the CLI into the data directory (file:// store).
        let input = directory.path + "/input.bin"
        var bytes = [UInt8](repeating: 0, count: 3_500_000)
        var state: UInt64 = 42
        for i in bytes.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        for (id, format) in [("upbuf", "0.3.0"), ("natbuf", "native")] {
            let write = try await run(
                bin + "/tyger",
                [
                    "buffer", "write", "file://\(data)/buffers/\(id)", "-i", input, "--block-size", "1M", "--format",
                    format,
                ]
            )
            try #require(write.status == 0, "tyger buffer write: \(write.stderr)")
        }

        let keys = try SigningKeys.loadOrCreate(directory: data + "/keys")
        let issuer = SignedURLIssuer(keys: keys)
        let config: [String: String] = [
            "containerId": "pybuf1",
            "createURL": try issuer.url(
                containerId: "pybuf1",
                permissions: [.createContainer],
                ttl: .seconds(600),
                endpoint: endpoint
            ),
            "writeURL": try issuer.accessURL(containerId: "pybuf1", writeable: true, endpoint: endpoint),
            "readURL": try issuer.accessURL(containerId: "pybuf1", writeable: false, endpoint: endpoint),
            "otherId": "otherbuf",
            "otherURL": try issuer.accessURL(containerId: "otherbuf", writeable: true, endpoint: endpoint),
            "upstreamBufferURL": try issuer.accessURL(containerId: "upbuf", writeable: false, endpoint: endpoint),
            "upstreamSha256": sha,
            "nativeBufferURL": try issuer.accessURL(containerId: "natbuf", writeable: false, endpoint: endpoint),
            "nativeSha256": sha,
            "pyBufferURL": try issuer.accessURL(containerId: "pywritten", writeable: true, endpoint: endpoint),
        ]
        try FileManager.default.createDirectory(atPath: data + "/buffers/pywritten", withIntermediateDirectories: false)
        let configPath = directory.path + "/config.json"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))

        let python = try await run(
            "/usr/bin/env",
            ["python3", Self.packageRoot + "/Tests/azure/azure_e2e.py", configPath]
        )
        #expect(python.status == 0, "python: \(python.stdout)\n\(python.stderr)\nserver log:\n\(server.log)")
        let lines = python.stdout.split(separator: "\n")
        #expect(lines.last?.hasPrefix("azure e2e: ") == true && lines.last?.hasSuffix(" checks passed") == true)

        // The buffer the Azure client wrote reads back with `tyger buffer read`.
        if let pySha = lines.first(where: { $0.hasPrefix("pyBufferSha256=") })?.dropFirst("pyBufferSha256=".count) {
            let output = directory.path + "/py.out"
            let read = try await run(
                bin + "/tyger",
                ["buffer", "read", "file://\(data)/buffers/pywritten", "-o", output]
            )
            #expect(read.status == 0, "tyger buffer read: \(read.stderr)")
            let readBack = try Data(contentsOf: URL(fileURLWithPath: output))
            #expect(SHA256.hash(data: readBack).map { String(format: "%02x", $0) }.joined() == String(pySha))
        } else {
            Issue.record("the python script did not print pyBufferSha256")
        }

        // Graceful shutdown on SIGTERM: exit 0, socket removed.
        let stopped = try await server.stop(timeout: .seconds(15))
        #expect(stopped.exitCode == 0, "server log:\n\(server.log)")
        #expect(!FileManager.default.fileExists(atPath: data + "/api.sock"))
    }
}

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a command to completion, collecting its output: a ``ChildProcess`` (output in files, descriptors
/// close-on-exec, so a child of a concurrent test can never hold its output open), awaited without blocking a thread.
func run(_ executable: String, _ arguments: [String]) async throws -> CommandResult {
    let result = try await runProcess(executable, arguments, timeout: .seconds(150))
    return CommandResult(
        status: result.exitCode ?? 128 + (result.signal ?? 0),
        stdout: String(decoding: result.stdout, as: UTF8.self),
        stderr: String(decoding: result.stderr, as: UTF8.self)
    )
}
