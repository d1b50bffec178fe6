import ArgumentParser

/// Flags every command accepts, before or after the subcommand's name.
///
/// `TygerCommand.main()` takes these flags out of the command line before ArgumentParser sees it (so that
/// `tyger --log-level debug run list` works as well as `tyger run list --log-level debug`) and bootstraps logging
/// with them; they are declared here for `--help` and validation.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Logging level: trace, debug, info, warn or error (default: $TYGER_LOG_LEVEL, else info)."
    )
    var logLevel: LogLevel = .info

    @Option(name: .long, help: "Log format: pretty, plain or json (default: pretty on a terminal, else plain).")
    var logFormat: LogFormatOption?
}

enum LogLevel: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, warn, error

    init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}

/// `--log-format` as ArgumentParser parses it (for `--help`).
struct LogFormatOption: ExpressibleByArgument {
    var format: LogFormat
    init?(argument: String) {
        guard let format = LogFormat(rawValue: argument.lowercased()) else { return nil }
        self.format = format
    }
}
