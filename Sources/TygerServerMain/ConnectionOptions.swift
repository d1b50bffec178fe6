import ArgumentParser
import Foundation
import TygerCore
import TygerServer

/// The TCP connection limits of `tyger-server run`: each option falls back to a `TYGER_SERVER_*` environment
/// variable (how the CLI's embedded server is configured), then to the documented default of ``ConnectionLimits``.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Most TCP connections open at once (env TYGER_SERVER_MAX_CONNECTIONS; default 4096)."
    )
    var maxConnections: Int?

    @Option(
        name: .long,
        help: """
            Most connections one source IP may hold before a request on them authenticates \
            (env TYGER_SERVER_MAX_UNAUTHENTICATED_PER_SOURCE; default 64).
            """
    )
    var maxUnauthenticatedPerSource: Int?

    @Option(
        name: .long,
        help: "Close a TCP connection idle between requests this long (env TYGER_SERVER_IDLE_TIMEOUT; default 120s)."
    )
    var idleTimeout: String?

    @Option(
        name: .long,
        help: "Close a TCP connection whose request head takes longer (env TYGER_SERVER_HEADER_TIMEOUT; default 30s)."
    )
    var headerTimeout: String?

    /// The largest accepted count: far beyond any descriptor limit.
    static let maxCount = 1_000_000

    func validate() throws { _ = try limits() }

    /// The limits from the options, the environment and the defaults.
    ///
    /// - Throws: `ValidationError` naming the option or variable whose value is not a count from 1 to 1,000,000 or
    ///   a positive duration.
    func limits(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ConnectionLimits {
        var limits = ConnectionLimits()
        if let value = try count(maxConnections, "--max-connections", "TYGER_SERVER_MAX_CONNECTIONS", environment) {
            limits.maxConnections = value
        }
        if let value = try count(
            maxUnauthenticatedPerSource,
            "--max-unauthenticated-per-source",
            "TYGER_SERVER_MAX_UNAUTHENTICATED_PER_SOURCE",
            environment
        ) {
            limits.maxUnauthenticatedPerSource = value
        }
        if let value = try duration(idleTimeout, "--idle-timeout", "TYGER_SERVER_IDLE_TIMEOUT", environment) {
            limits.idleTimeout = value
        }
        if let value = try duration(headerTimeout, "--header-timeout", "TYGER_SERVER_HEADER_TIMEOUT", environment) {
            limits.headerTimeout = value
        }
        return limits
    }

    private func count(
        _ option: Int?,
        _ flag: String,
        _ variable: String,
        _ environment: [String: String]
    ) throws
        -> Int?
    {
        let name: String
        let value: Int
        if let option {
            (name, value) = (flag, option)
        } else if let text = environment[variable], !text.isEmpty {
            guard let parsed = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(variable) must be an integer from 1 to \(Self.maxCount), got '\(text)'")
            }
            (name, value) = (variable, parsed)
        } else {
            return nil
        }
        guard (1...Self.maxCount).contains(value) else {
            throw ValidationError("\(name) must be from 1 to \(Self.maxCount), got \(value)")
        }
        return value
    }

    private func duration(
        _ option: String?,
        _ flag: String,
        _ variable: String,
        _ environment: [String: String]
    )
        throws -> Duration?
    {
        let name: String
        let text: String
        if let option {
            (name, text) = (flag, option)
        } else if let value = environment[variable], !value.isEmpty {
            (name, text) = (variable, value)
        } else {
            return nil
        }
        do {
            let value = try DurationParser.parse(text)
            guard value > .zero else { throw ValidationError("\(name) must be positive") }
            return value
        } catch let error as TygerCoreError {
            throw ValidationError("\(name): \(error.message)")
        }
    }
}
