import Foundation
import Testing
import TygerTestSupport

extension LiveServerCLITests {
    /// `tyger login` (unix socket, TCP with a token, TLS), `login status`, `logout`, and refused input.
    @Suite(.timeLimit(.minutes(3))) struct LoginCLITests {
        @Test func loginThroughASocketSendsBufferCommandsToThatServerAndLogoutReturnsToTheEmbeddedOne() async throws {
            try await withTemporaryDirectory(prefix: "tyger-login") { dir in
                let data = dir + "/server"
                try await withServer(dataDirectory: data) { server in
                    try await withCLIHome { home in
                        let login = try await home.run(["login", "unix://" + server.socketPath])
                        #expect(login.exitCode == 0, "\(login)")
                        #expect(login.stderrText.contains("Login successful"), "\(login)")
                        #expect(TestFiles.exists(home.path + "/login.json"))
                        let status = try await home.output(["login", "status"])
                        #expect(status == "Logged in to http+unix://\(server.socketPath):", "\(status)")

                        let api = try object(try await home.json(["api", "status"]))
                        #expect(api["mode"] as? String == "remote")
                        #expect(api["controlPlaneEndpoint"] as? String == "http+unix://\(server.socketPath):")
                        #expect(api["pid"] == nil)

                        let id = try await home.output(["buffer", "create"])
                        #expect(TestFiles.exists(data + "/buffers/" + id))
                        let url = try await home.output(["buffer", "access", id, "-w"])
                        #expect(url.hasPrefix("http+unix://\(server.socketPath):/containers/\(id)?"), "\(url)")
                        let input = Payload.random(count: 200_000, seed: 42)
                        let wrote = try await home.run(
                            ["buffer", "write", id, "--log-level", "debug"],
                            input: .bytes(input)
                        )
                        #expect(wrote.exitCode == 0, "\(wrote)")
                        #expect(
                            !wrote.stderrText.contains("Using the local fast path"),
                            "the fast path is for the embedded server only"
                        )
                        let read = try await home.run(["buffer", "read", id])
                        #expect(read.exitCode == 0, "\(read)")
                        #expect(mismatch(read.stdout, input) == nil)
                        #expect(TestFiles.regularFiles(under: data + "/buffers/" + id).contains(".bufferend"))
                        // The embedded server was never started.
                        #expect(!TestFiles.exists(home.serverDirectory + "/api.sock"))
                        #expect(ServerProcesses.serving(dataDirectory: home.serverDirectory).isEmpty)

                        let logout = try await home.run(["logout"])
                        #expect(logout.exitCode == 0, "\(logout)")
                        #expect(!TestFiles.exists(home.path + "/login.json"))
                        #expect(
                            try await home.output(["login", "status"])
                                == "Using the embedded local server in \(home.path) (tyger login --local)"
                        )
                        let missing = try await home.run(["buffer", "show", id])
                        #expect(missing.exitCode == 1, "the embedded server has its own buffers: \(missing)")
                        #expect(missing.stderrText.contains("NotFound"), "\(missing)")
                        #expect(home.embeddedServerPID != nil)

                        // --local also forgets a login.
                        _ = try await home.output(["login", "unix://" + server.socketPath])
                        let local = try await home.run(["login", "--local"])
                        #expect(local.exitCode == 0, "\(local)")
                        #expect(!TestFiles.exists(home.path + "/login.json"))
                        #expect(try object(try await home.json(["api", "status"]))["mode"] as? String == "embedded")
                    }
                }
            }
        }

        @Test func loginOverTCPNeedsAValidToken() async throws {
            try await withTemporaryDirectory(prefix: "tyger-login") { dir in
                let data = dir + "/server"
                try await withServer(dataDirectory: data, arguments: ["--tcp", "127.0.0.1:0"]) { server in
                    let endpoint = try #require(server.tcpEndpoint)
                    #expect(endpoint.hasPrefix("http://127.0.0.1:"), "\(endpoint)")
                    let token = try await TygerServerBinary.createToken(dataDirectory: data)
                    #expect(token.hasPrefix("tyger_"), "\(token)")

                    // Refused: a wrong token, and no token. Nothing is saved.
                    try await withCLIHome { home in
                        for extra in [["--token", "tyger_wrongwrongwrongwrongwrongwrongwrongwrongwro"], []] {
                            let refused = try await home.run(["login", endpoint] + extra)
                            #expect(refused.exitCode == 1, "\(refused)")
                            #expect(refused.stderrText.contains("Unauthorized"), "\(refused)")
                            #expect(refused.errorLines.count == 1, "\(refused)")
                            #expect(!TestFiles.exists(home.path + "/login.json"))
                        }
                        #expect(
                            try await home.output(["login", "status"]).hasPrefix("Using the embedded local server")
                        )
                    }

                    try await withCLIHome { home in
                        let login = try await home.run(["login", endpoint, "--token", token])
                        #expect(login.exitCode == 0, "\(login)")
                        #expect(try await home.output(["login", "status"]) == "Logged in to \(endpoint) with a token")
                        let api = try object(try await home.json(["api", "status"]))
                        #expect(api["controlPlaneEndpoint"] as? String == endpoint)
                        #expect(api["mode"] as? String == "remote")

                        let id = try await home.output(["buffer", "create", "--tag", "via=tcp"])
                        #expect(TestFiles.exists(data + "/buffers/" + id))
                        let url = try await home.output(["buffer", "access", id])
                        #expect(url.hasPrefix("\(endpoint)/containers/\(id)?"), "TCP callers get TCP URLs: \(url)")
                        let expected = try await GeneratedDigests.shared.digest(of: "3M")
                        let wrote = try await home.shell(
                            "$TYGER buffer gen 3M | $TYGER buffer write \(id) --block-size 1M"
                        )
                        #expect(wrote.exitCode == 0, "\(wrote)")
                        let read = try await home.shell("$TYGER buffer read \(id) | sha256sum")
                        #expect(read.exitCode == 0, "\(read)")
                        #expect(shaOf(read) == expected)
                        let viaURL = try await home.shell("$TYGER buffer read '\(url)' | sha256sum")
                        #expect(shaOf(viaURL) == expected, "\(viaURL)")
                        #expect(ids(try objects(try await home.json(["buffer", "list", "--tag", "via=tcp"]))) == [id])
                        #expect(ServerProcesses.serving(dataDirectory: home.serverDirectory).isEmpty)

                        // A revoked token stops working at once.
                        let listed = try await TygerServerBinary.run(["token", "list", "--data-dir", data])
                        let tokenID = try #require(listed.stdoutText.split(separator: "\t").first.map(String.init))
                        let revoked = try await TygerServerBinary.run(["token", "revoke", "--data-dir", data, tokenID])
                        #expect(revoked.exitCode == 0, "\(revoked)")
                        let afterRevoke = try await home.run(["buffer", "list"])
                        #expect(afterRevoke.exitCode == 1, "\(afterRevoke)")
                        #expect(afterRevoke.stderrText.contains("Unauthorized"), "\(afterRevoke)")
                    }
                }
            }
        }

        @Test func loginOverTLSWithAPrivateCA() async throws {
            try await withTemporaryDirectory(prefix: "tyger-tls") { dir in
                try await makeTestCertificates(in: dir)
                let data = dir + "/server"
                let arguments = [
                    "--tcp", "127.0.0.1:0", "--tls-cert", dir + "/cert.pem", "--tls-key", dir + "/key.pem",
                ]
                try await withServer(dataDirectory: data, arguments: arguments) { server in
                    let endpoint = try #require(server.tcpEndpoint)
                    #expect(endpoint.hasPrefix("https://127.0.0.1:"), "\(endpoint)")
                    let token = try await TygerServerBinary.createToken(dataDirectory: data)
                    try await withCLIHome { home in
                        // Without the CA the server's certificate is not trusted.
                        let untrusted = try await home.run(["login", endpoint, "--token", token])
                        #expect(untrusted.exitCode == 1, "\(untrusted)")
                        #expect(!TestFiles.exists(home.path + "/login.json"))

                        let login = try await home.run([
                            "login", endpoint, "--token", token, "--ca-cert", dir + "/ca.pem",
                        ])
                        #expect(login.exitCode == 0, "\(login)")
                        let id = try await home.output(["buffer", "create"])
                        let input = Payload.random(count: 500_000, seed: 43)
                        let wrote = try await home.run(["buffer", "write", id], input: .bytes(input))
                        #expect(wrote.exitCode == 0, "\(wrote)")
                        let read = try await home.run(["buffer", "read", id])
                        #expect(read.exitCode == 0, "\(read)")
                        #expect(mismatch(read.stdout, input) == nil)
                        let url = try await home.output(["buffer", "access", id])
                        #expect(url.hasPrefix("\(endpoint)/containers/\(id)?"), "\(url)")
                        // An https access URL is trusted through the login's CA too.
                        let viaURL = try await home.run(["buffer", "read", url])
                        #expect(viaURL.exitCode == 0, "\(viaURL)")
                        #expect(mismatch(viaURL.stdout, input) == nil)
                    }
                }
            }
        }

        /// Mistakes refused before anything is sent: a clear error, a non-zero exit, no server started.
        static let refusals: [Refusal] = [
            Refusal(arguments: ["login", "not-a-url"], message: "not-a-url", exitCode: 64),
            Refusal(arguments: ["login", "ftp://host/x"], message: "ftp://host/x", exitCode: 64),
            Refusal(arguments: ["login", "unix://relative.sock"], message: "unix://relative.sock", exitCode: 64),
            Refusal(arguments: ["login"], message: "a server URL or --local is required", exitCode: 64),
            Refusal(
                arguments: ["login", "unix:///x/api.sock", "--local"],
                message: "give either a server URL or --local",
                exitCode: 64
            ),
            Refusal(arguments: ["buffer", "create", "--ttl", "25:00"], message: "invalid --ttl '25:00'", exitCode: 64),
            Refusal(
                arguments: ["buffer", "create", "--ttl", "0.24:00:00"],
                message: "invalid --ttl '0.24:00:00'",
                exitCode: 64
            ),
            Refusal(
                arguments: ["buffer", "create", "--tag", "novalue"],
                message: "invalid --tag 'novalue': expected KEY=VALUE",
                exitCode: 64
            ),
            Refusal(
                arguments: ["buffer", "list", "--limit", "-1"],
                message: "--limit must not be negative",
                exitCode: 64
            ),
            Refusal(arguments: ["buffer", "list", "--limit", "many"], message: "many", exitCode: 64),
            Refusal(
                arguments: ["buffer", "list", "--exclude-tag", "=x"],
                message: "invalid --exclude-tag '=x'",
                exitCode: 64
            ),
            Refusal(
                arguments: ["buffer", "set", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "--tag", "novalue"],
                message: "invalid --tag 'novalue': expected KEY=VALUE",
                exitCode: 64
            ),
            Refusal(
                arguments: ["buffer", "set", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "--ttl", "1.2.3"],
                message: "invalid --ttl '1.2.3'",
                exitCode: 64
            ),
            Refusal(
                arguments: ["buffer", "access", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "--ttl", "x"],
                message: "invalid --access-ttl 'x'",
                exitCode: 64
            ),
        ]

        @Test(arguments: refusals)
        func refused(refusal: Refusal) async throws {
            try await withCLIHome { home in
                let result = try await home.run(refusal.arguments)
                #expect(result.exitCode == refusal.exitCode, "\(result)")
                #expect(result.stdout.isEmpty)
                let firstLine = result.stderrText.split(separator: "\n").first.map(String.init) ?? ""
                #expect(firstLine.contains(refusal.message), "\(result)")
                // Every refusal here is a usage error: one line, `Error: …` (README, "Exit status").
                #expect(refusal.exitCode == 64)
                #expect(result.stderrText.split(separator: "\n").count == 1, "one line: \(result)")
                #expect(firstLine.hasPrefix("Error: "), "\(result)")
                #expect(!TestFiles.exists(home.path + "/login.json"))
                #expect(!TestFiles.exists(home.serverDirectory + "/api.sock"), "no server for a refused command")
            }
        }

        @Test func aLoginToAServerThatIsNotThereIsNotSaved() async throws {
            try await withCLIHome { home in
                let result = try await home.run(["login", "unix:///nonexistent/tyger/api.sock"])
                #expect(result.exitCode == 1, "\(result)")
                #expect(result.stderrText.contains("/nonexistent/tyger/api.sock"), "\(result)")
                #expect(result.errorLines.count == 1, "\(result)")
                #expect(!TestFiles.exists(home.path + "/login.json"))
                let tcp = try await home.run(["login", "http://127.0.0.1:1", "--token", "tyger_x"])
                #expect(tcp.exitCode == 1, "\(tcp)")
                #expect(!TestFiles.exists(home.path + "/login.json"))
            }
        }

    }
}
