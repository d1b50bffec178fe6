import ArgumentParser

/// Flags every command accepts.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Logging level: trace, debug, info, warn or error.")
    var logLevel: LogLevel = .info

    mutating func validate() throws {}
}

enum LogLevel: String, ExpressibleByArgument, Comparable, CaseIterable {
    case trace, debug, info, warn, error

    init?(argument: String) { self.init(rawValue: argument.lowercased()) }

    private var rank: Int { LogLevel.allCases.firstIndex(of: self)! }  // every case is in allCases
    static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}
