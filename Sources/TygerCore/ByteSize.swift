/// Parses sizes the way the CLI accepts them: `10G`, `512M`, `1.5K`, `4MiB`, `4MB`, `123` (bytes).
///
/// Units are base 2, as upstream (`1KB == 1KiB == 1024`).
public enum ByteSize {
    /// Parses a size.
    ///
    /// - Parameter text: A non-negative number with an optional unit (B, K, M, G, T, P, with optional `i` and `B`).
    /// - Returns: The size in bytes.
    /// - Throws: `TygerCoreError` `.invalidArgument` with a one-line message when the text is not a size.
    public static func parse(_ text: String) throws -> Int64 {
        let trimmed = text.trimmingSpaces()
        var number = Substring(trimmed)
        var unit = ""
        while let last = number.last, last.isLetter {
            unit = String(last) + unit
            number = number.dropLast()
        }
        guard !number.isEmpty, let value = Double(number), value >= 0, value.isFinite,
            number.allSatisfy({ $0.isNumber || $0 == "." })
        else {
            throw TygerCoreError(
                .invalidArgument,
                "invalid size '\(text)': expected a number with an optional unit such as 512K, 4M, 1.5G"
            )
        }
        let shift: Int
        switch unit.lowercased() {
        case "", "b": shift = 0
        case "k", "kb", "kib": shift = 10
        case "m", "mb", "mib": shift = 20
        case "g", "gb", "gib": shift = 30
        case "t", "tb", "tib": shift = 40
        case "p", "pb", "pib": shift = 50
        default:
            throw TygerCoreError(
                .invalidArgument,
                "invalid size '\(text)': unknown unit '\(unit)' (use B, K, M, G, T or P)"
            )
        }
        let bytes = value * Double(Int64(1) << shift)
        guard bytes < 9.2e18 else { throw TygerCoreError(.invalidArgument, "invalid size '\(text)': too large") }
        guard shift > 0 || value == value.rounded() else {
            throw TygerCoreError(.invalidArgument, "invalid size '\(text)': a byte count must be a whole number")
        }
        return Int64(bytes.rounded())
    }

    /// Formats a byte count with IEC units, e.g. `1.5GiB`.
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var i = 0
        while value >= 1024, i < units.count - 1 {
            value /= 1024
            i += 1
        }
        return i == 0 ? "\(bytes)B" : "\(formatFixed(value, digits: value < 10 ? 2 : 1))\(units[i])"
    }

    /// Formats a rate in bytes per second with SI units, e.g. `1.23GB/s`.
    public static func formatRate(_ bytesPerSecond: Double) -> String {
        let units = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"]
        var value = bytesPerSecond
        var i = 0
        while value >= 1000, i < units.count - 1 {
            value /= 1000
            i += 1
        }
        return "\(formatFixed(value, digits: value < 10 ? 2 : 1))\(units[i])"
    }

    /// Formats with a fixed number of fraction digits, without Foundation.
    public static func formatFixed(_ value: Double, digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (value * scale).rounded()
        let whole = Int64(scaled / scale)
        var fraction = String(Int64(abs(scaled) - Double(abs(whole)) * scale))
        if digits == 0 { return String(whole) }
        fraction = String(repeating: "0", count: max(0, digits - fraction.count)) + fraction
        return "\(whole).\(fraction)"
    }
}

/// Parses durations: Go style (`1s`, `500ms`, `1m30s`, `2h45m`, `1.5h`) or a bare number of seconds.
public enum DurationParser {
    /// The longest duration accepted, in seconds (about 285 years): far past any real timeout, and far from the
    /// limit of a `Duration` in nanoseconds.
    public static let maxSeconds = 9_000_000_000.0

    /// Parses a duration.
    ///
    /// - Returns: The duration; `0` means "off" where the option allows it.
    /// - Throws: `TygerCoreError` `.invalidArgument` with a one-line message when the text is not a duration.
    public static func parse(_ text: String) throws -> Duration {
        let s = text.trimmingSpaces()
        let bad = TygerCoreError(.invalidArgument, "invalid duration '\(text)': expected e.g. 1s, 500ms, 1m30s, 1.5h")
        let tooLong = TygerCoreError(
            .invalidArgument,
            "invalid duration '\(text)': longer than the limit of \(Int64(maxSeconds)) seconds"
        )
        if let seconds = Double(s) {
            guard seconds >= 0, seconds.isFinite else { throw bad }
            guard seconds < maxSeconds else { throw tooLong }
            return .nanoseconds(Int64((seconds * 1e9).rounded()))
        }
        var total = 0.0
        var chars = Substring(s)
        guard !chars.isEmpty else { throw bad }
        while !chars.isEmpty {
            let number = chars.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { throw bad }
            chars = chars.dropFirst(number.count)
            let unit = chars.prefix { $0.isLetter || $0 == "µ" }
            chars = chars.dropFirst(unit.count)
            let factor: Double
            switch unit {
            case "ns": factor = 1e-9
            case "us", "µs": factor = 1e-6
            case "ms": factor = 1e-3
            case "s": factor = 1
            case "m": factor = 60
            case "h": factor = 3600
            default: throw bad
            }
            total += value * factor
        }
        guard total.isFinite else { throw bad }
        guard total < maxSeconds else { throw tooLong }
        return .nanoseconds(Int64((total * 1e9).rounded()))
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
