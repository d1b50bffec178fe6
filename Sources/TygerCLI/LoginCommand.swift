import ArgumentParser
import Foundation
import Logging
import TygerClient
import TygerCore
import TygerModel

/// `tyger login`, `tyger login status`, `tyger logout`.
///
/// `login URL` is the default subcommand (`Connect`): ArgumentParser cannot dispatch `login status` to a
/// subcommand when `login` itself takes a positional argument (the argument swallows "status").
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Connect to a Tyger server.",
        discussion: """
            tyger login unix:///path/api.sock          a server on this machine, through its socket
            tyger login https://host:port --token T    a shared server over TCP (TLS), with a bearer token
            tyger login --local                        the embedded local server (the default with no login)
            tyger login status                         which server this CLI uses
            """,
        subcommands: [Connect.self, Status.self],
        defaultSubcommand: Connect.self
    )

    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "connect",
            abstract: "Connect to a Tyger server (the default: 'tyger login URL')."
        )

        @Argument(help: "The server URL: unix:///path/api.sock, http+unix:///path/api.sock:, http(s)://host:port")
        var serverURL: String?

        @Option(help: "Bearer token for a TCP server (see 'tyger-server token create').")
        var token: String?

        @Option(help: "PEM file of the CA that signed the server's TLS certificate, if it is not publicly trusted.")
        var caCert: String?

        @Flag(help: "Use the embedded local server (started on demand in $TYGER_HOME).")
        var local = false

        @Flag(
            help:
                "Allow sending the token over plain http:// to a host that is not this machine (readable on the network)."
        )
        var allowInsecure = false

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if local && serverURL != nil { throw ValidationError("give either a server URL or --local, not both") }
            if !local && serverURL == nil { throw ValidationError("a server URL or --local is required") }
            if let serverURL {
                let url: ServiceURL
                do { url = try ServiceURL(serverURL) } catch let e as TygerClientError {
                    throw ValidationError(e.message)
                }
                if token != nil, !url.isPrivateChannel, !allowInsecure {
                    throw ValidationError(
                        "refusing to send a token in clear to \(url.description): use https://, or --allow-insecure"
                    )
                }
            }
        }

        func run() async throws {
            if local {
                try LoginState.remove()
                _ = try await withConnection { try await $0.client.metadata() }
                logger.info("Using the embedded local server", metadata: ["home": "\(TygerHome.path)"])
                return
            }
            var url = try ServiceURL(serverURL!)  // validated above
            url = url.with(path: "/")
            var pem: String?
            if let caCert {
                guard let text = try? String(contentsOfFile: caCert, encoding: .utf8) else {
                    throw CommandFailure("cannot read the CA certificate file '\(caCert)'")
                }
                pem = text
            }
            let state = LoginState(serverURL: url.description, token: token, caCertificate: pem)
            // Check before saving: a login that cannot reach its server is not saved.
            try await HTTPTransport.withTransport(caCertificatePath: caCert, bearerToken: token) { transport in
                let client = ControlPlaneClient(server: url, transport: transport, logger: logger)
                _ = try await client.metadata()
                _ = try await client.listBuffers(BufferFilter(), limit: 1)
            }
            try state.save()
            logger.info("Login successful", metadata: ["server": "\(url.description)"])
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show which server this CLI uses.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            if let login = try LoginState.load() {
                // The endpoint as `api status` shows it: `http+unix:///…/api.sock:` or `https://host:port`.
                let endpoint = login.serverURL.hasSuffix("/") ? String(login.serverURL.dropLast()) : login.serverURL
                try Console.line("Logged in to \(endpoint)\(login.token == nil ? "" : " with a token")")
            } else {
                try Console.line("Using the embedded local server in \(TygerHome.path) (tyger login --local)")
            }
        }
    }
}

struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "Forget the saved login (the CLI then uses the embedded local server)."
    )

    func run() async throws {
        try LoginState.remove()
    }
}

/// `tyger api status|stop`.
struct APICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "See and stop the server this CLI uses.",
        subcommands: [Status.self, Stop.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the server's endpoint and state as JSON (starts the embedded server if needed)."
        )
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let status = try await withConnection { connection in
                let metadata = try await connection.client.metadata()
                return APIStatusOutput(
                    controlPlaneEndpoint: String(connection.client.server.with(path: "/").description.dropLast()),
                    mode: connection.isEmbedded ? "embedded" : "remote",
                    healthy: true,
                    home: connection.isEmbedded ? TygerHome.path : nil,
                    dataDirectory: connection.embedded?.root,
                    pid: connection.isEmbedded ? LocalServer.runningPID : nil,
                    cliVersion: TygerVersion.current,
                    metadata: metadata
                )
            }
            try Console.json(status)
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the embedded local server.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            if try await LocalServer.stop() {
                logger.info("Stopped the local server")
            } else {
                logger.info("The local server is not running")
            }
        }
    }
}
