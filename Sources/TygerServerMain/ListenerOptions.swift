import ArgumentParser
import Logging
import TygerServer

/// The listeners and logging of a server process (`tyger-server run` and `tyger-server data-plane`).
struct ListenerOptions: ParsableArguments {
    @Option(name: .long, help: "Also listen on TCP, e.g. 127.0.0.1:8080 or [::1]:8080 (port 0 picks one).")
    var tcp: String?

    @Option(name: .long, help: "PEM certificate chain: serve HTTPS on the TCP listener.")
    var tlsCert: String?

    @Option(name: .long, help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The URL clients reach the TCP listener by (http(s)://HOST[:PORT]), written in access URLs.",
            discussion: "Needed when --tcp binds a wildcard address (0.0.0.0, ::) or the server is behind a proxy."
        )
    )
    var advertiseURL: String?

    @Flag(name: .long, help: "Do not listen on the unix socket (needs --tcp).")
    var noUnixSocket = false

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "The largest blob one upload may carry, in bytes.")
    var maxBlobSize: Int = 1 << 30

    func validate() throws {
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if tlsCert != nil && tcp == nil { throw ValidationError("--tls-cert needs --tcp") }
        if noUnixSocket && tcp == nil { throw ValidationError("--no-unix-socket needs --tcp") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown --log-level '\(logLevel)'")
        }
        guard maxBlobSize > 0 else { throw ValidationError("--max-blob-size must be positive") }
        if let tcp { _ = try TCPListenerConfiguration.parse(tcp) }
        if let advertiseURL {
            guard tcp != nil else { throw ValidationError("--advertise-url needs --tcp") }
            do {
                _ = try TCPListenerConfiguration.parseAdvertisedURL(advertiseURL)
            } catch let error as TygerServerError {
                throw ValidationError(error.message)
            }
        }
    }

    /// Sends the process's logs to stderr at `--log-level`, and returns the server's logger.
    func bootstrapLogging() -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info  // checked in validate()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "tyger-server")
    }

    /// A server configuration with these listeners, `connections`' limits, an access log at `info`, and each
    /// listener's URL logged once it is bound.
    func configuration(
        dataDirectory: String,
        connections: ConnectionOptions,
        logger: Logger
    ) throws -> TygerServerConfiguration {
        var configuration = TygerServerConfiguration(dataDirectory: dataDirectory)
        configuration.unixSocket = !noUnixSocket
        configuration.maxBlobSize = maxBlobSize
        configuration.connectionLimits = try connections.limits()
        configuration.accessLogLevel = .info
        if let tcp {
            var listener = try TCPListenerConfiguration.parse(tcp)
            listener.tlsCertificatePath = tlsCert
            listener.tlsKeyPath = tlsKey
            listener.advertisedURL = try advertiseURL.map(TCPListenerConfiguration.parseAdvertisedURL)
            configuration.tcp = listener
        }
        configuration.onListening = { endpoint in
            logger.info("listening", metadata: ["endpoint": "\(endpoint)"])
        }
        return configuration
    }
}
