import ArgumentParser
import Foundation
import Logging
import TygerCore
import TygerIO
import TygerModel

/// The CLI's logger: messages go through swift-log to the one ``CLILogHandler``, bootstrapped by
/// ``CLILogging/bootstrap(level:format:)`` before any command runs.
let logger = Logger(label: "tyger")

/// `--log-format` values, as upstream's.
enum LogFormat: String, CaseIterable, Sendable {
    /// upstream's console format with colours (the default on a terminal).
    case pretty
    /// The console format without colours (the default otherwise).
    case plain
    /// One JSON object per line.
    case json
}

/// The CLI's one log handler: stderr lines in upstream's console form
/// (`2026-11-26T07:00:00.123Z INF message key=value`, zerolog's ConsoleWriter: fields sorted by name, values quoted
/// when they contain spaces or quotes), or upstream's JSON lines (`{"level":"info",…,"time":…,"message":…}`).
struct CLILogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let format: LogFormat

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        let line =
            switch format {
            case .json: Self.jsonLine(event.level, event.message.description, fields)
            case .pretty, .plain:
                Self.consoleLine(event.level, event.message.description, fields, colour: format == .pretty)
            }
        Console.writeError(line + "\n")
    }

    /// Upstream's three-letter level names.
    static func abbreviation(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRC"
        case .debug: "DBG"
        case .info, .notice: "INF"
        case .warning: "WRN"
        case .error: "ERR"
        case .critical: "FTL"
        }
    }

    /// zerolog's level names.
    static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "trace"
        case .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warn"
        case .error: "error"
        case .critical: "fatal"
        }
    }

    /// The time as upstream prints it: RFC 3339 UTC with exactly three fractional digits.
    static func timestamp(_ date: Date = Date()) -> String {
        let t = date.timeIntervalSince1970
        let seconds = t.rounded(.down)
        let nanoseconds = min(999_999_999, Int(((t - seconds) * 1e9).rounded(.down)))
        return RFC3339.format(seconds: Int64(seconds), nanoseconds: nanoseconds, fractionDigits: 3)
    }

    static func consoleLine(
        _ level: Logger.Level,
        _ message: String,
        _ fields: Logger.Metadata,
        colour: Bool
    ) -> String {
        func paint(_ text: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
        let levelColour =
            switch level {
            case .trace: "35"
            case .debug: "33"
            case .info, .notice: "32"
            case .warning: "31"
            case .error, .critical: "1;31"
            }
        var line = paint(timestamp(), "90") + " " + paint(abbreviation(level), levelColour) + " " + message
        for key in fields.keys.sorted() {
            let value = fields[key].map(Self.text) ?? ""
            line += " " + paint(key + "=", "36") + (needsQuotes(value) ? TextEncoding.jsonQuoted(value) : value)
        }
        return line
    }

    static func jsonLine(_ level: Logger.Level, _ message: String, _ fields: Logger.Metadata) -> String {
        var line = "{\"level\":" + TextEncoding.jsonQuoted(name(level))
        for key in fields.keys.sorted() {
            line += "," + TextEncoding.jsonQuoted(key) + ":" + TextEncoding.jsonQuoted(fields[key].map(Self.text) ?? "")
        }
        line += ",\"time\":" + TextEncoding.jsonQuoted(timestamp())
        line += ",\"message\":" + TextEncoding.jsonQuoted(message) + "}"
        return line
    }

    private static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let a): "[" + a.map(text).joined(separator: ",") + "]"
        case .dictionary(let d): "{" + d.keys.sorted().map { "\($0)=\(text(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// As zerolog: quote empty values and those with spaces, quotes, backslashes, `=` or control characters.
    private static func needsQuotes(_ value: String) -> Bool {
        value.isEmpty || value.unicodeScalars.contains { $0.value < 0x21 || $0 == "\"" || $0 == "\\" || $0 == "=" }
    }
}

/// Reads the logging flags and bootstraps swift-log with ``CLILogHandler``.
enum CLILogging {
    /// The environment variable that sets the level when `--log-level` is not given.
    static let levelVariable = "TYGER_LOG_LEVEL"

    /// The logging flags, taken out of `arguments` (before a `--`) wherever they appear, so that they work before
    /// and after the subcommand: `--log-level L`, `--log-level=L`, `--log-format F`, `--log-format=F`.
    ///
    /// - Returns: The level and format (`nil` when not given), and the other arguments.
    /// - Throws: `ValidationError` for a missing or unknown value.
    static func extract(from arguments: [String]) throws -> (level: LogLevel?, format: LogFormat?, rest: [String]) {
        var level: LogLevel?
        var format: LogFormat?
        var rest: [String] = []
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            if argument == "--" {
                rest += arguments[i...]
                break
            }
            var value: String?
            var name: String?
            for flag in ["--log-level", "--log-format"] {
                if argument == flag {
                    guard i + 1 < arguments.count else {
                        throw ValidationError("Missing value for '\(flag) <\(flag.dropFirst(2))>'")
                    }
                    name = flag
                    value = arguments[i + 1]
                    i += 1
                } else if argument.hasPrefix(flag + "=") {
                    name = flag
                    value = String(argument.dropFirst(flag.count + 1))
                }
            }
            i += 1
            guard let name, let value else {
                rest.append(argument)
                continue
            }
            if name == "--log-level" {
                guard let l = LogLevel(argument: value) else {
                    throw ValidationError(
                        "The value '\(value)' is invalid for '--log-level <log-level>'. Please provide one of "
                            + LogLevel.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ") + "."
                    )
                }
                level = l
            } else {
                guard let f = LogFormat(rawValue: value.lowercased()) else {
                    throw ValidationError(
                        "The value '\(value)' is invalid for '--log-format <log-format>'. Please provide one of "
                            + LogFormat.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ") + "."
                    )
                }
                format = f
            }
        }
        return (level, format, rest)
    }

    /// Bootstraps swift-log: the level from the flag, else `TYGER_LOG_LEVEL`, else `info`; the format from the flag,
    /// else `pretty` on a terminal and `plain` otherwise.
    ///
    /// - Throws: `ValidationError` for an unknown `TYGER_LOG_LEVEL`.
    static func bootstrap(level: LogLevel?, format: LogFormat?) throws {
        var chosen = level ?? .info
        if level == nil, let text = ProcessInfo.processInfo.environment[levelVariable], !text.isEmpty {
            guard let l = LogLevel(argument: text) else {
                throw ValidationError("invalid \(levelVariable) '\(text)': use trace, debug, info, warn or error")
            }
            chosen = l
        }
        let format = format ?? (Console.stderrIsTerminal ? .pretty : .plain)
        let swiftLevel = chosen.swiftLogLevel
        LoggingSystem.bootstrap { _ in CLILogHandler(logLevel: swiftLevel, format: format) }
    }
}

extension LogLevel {
    var swiftLogLevel: Logger.Level {
        switch self {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .warn: .warning
        case .error: .error
        }
    }
}

/// Where the CLI writes: stdout for results, stderr for logs, prompts and the live progress line. Unbuffered (each
/// call is one `write`), so results and logs interleave in order.
enum Console {
    static let stderrIsTerminal = ProcessOps.isTerminal(2)
    static let stdinIsTerminal = ProcessOps.isTerminal(0)

    /// Writes `text` and a newline to stdout.
    ///
    /// - Throws: `TygerIOError` `.brokenPipe` when the reader has gone.
    static func line(_ text: String) throws {
        try write(1, text + "\n")
    }

    /// Writes `value` to stdout as JSON in the CLI's one style (``TygerJSON/makePrettyEncoder()``: two-space indent,
    /// `": "`, fields in declaration order).
    static func json(_ value: some Encodable) throws {
        let data = try TygerJSON.makePrettyEncoder().encode(value)
        try line(String(decoding: data, as: UTF8.self))
    }

    /// Writes `text` to stderr, ignoring failures (nowhere left to report them).
    static func writeError(_ text: String) {
        try? write(2, text)
    }

    private static func write(_ fd: Int32, _ text: String) throws {
        var text = text
        try text.withUTF8 { try FileDescriptorOps.writeAll(fd, UnsafeRawBufferPointer($0)) }
    }
}
