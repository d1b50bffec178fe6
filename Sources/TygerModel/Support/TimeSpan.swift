/// Parses and formats .NET `TimeSpan` strings, the format of upstream's `ttl` query parameters.
///
/// Accepted input (invariant culture, like `TimeSpan.TryParse`): `d` (whole days), or `[d.]hh:mm[:ss[.fffffff]]`
/// with `hh` 0–23, `mm` and `ss` 0–59 and up to seven fractional digits. That covers the Go CLI's `D.HH:MM:SS`,
/// its purge value `0`, and forms such as `00:05` or `0.00:05`. Leading and trailing spaces are ignored. A leading
/// `-` is rejected, because every Tyger duration must be non-negative.
public enum TimeSpan {
    /// Parses a `TimeSpan` string.
    ///
    /// - Parameter string: The text, for example `1.02:03:04.5`.
    /// - Returns: The duration, or `nil` when the text is not a valid non-negative `TimeSpan`.
    public static func parse(_ string: some StringProtocol) -> Duration? {
        let text = string.trimmingSpaces
        guard !text.isEmpty, text.utf8.allSatisfy({ isDigit($0) || $0 == dot || $0 == colon }) else { return nil }
        guard text.contains(":") else {
            guard let days = Int64(text), days <= 10_675_199 else { return nil }
            return .seconds(days * 86_400)
        }
        var rest = Substring(text)
        var days: Int64 = 0
        if let firstDot = rest.firstIndex(of: "."), let firstColon = rest.firstIndex(of: ":"), firstDot < firstColon {
            guard let d = Int64(rest[..<firstDot]), d <= 10_675_199 else { return nil }
            days = d
            rest = rest[rest.index(after: firstDot)...]
        }
        var fraction: Substring = ""
        if let dot = rest.firstIndex(of: ".") {
            fraction = rest[rest.index(after: dot)...]
            rest = rest[..<dot]
            guard !fraction.isEmpty, fraction.count <= 7, fraction.allSatisfy(\.isASCIIDigit) else { return nil }
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        // A fraction is only valid after seconds.
        guard fraction.isEmpty || parts.count == 3 else { return nil }
        guard parts.allSatisfy({ (1...2).contains($0.count) }),
            let hours = Int64(parts[0]), let minutes = Int64(parts[1]),
            hours < 24, minutes < 60
        else { return nil }
        let seconds = parts.count == 3 ? Int64(parts[2]) ?? 60 : 0
        guard seconds < 60 else { return nil }
        var ticks: Int64 = 0
        for c in fraction.padding(toLength: 7) { ticks = ticks * 10 + Int64(c.wholeNumberValue ?? 0) }
        let total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
        return .seconds(total) + .nanoseconds(ticks * 100)
    }

    /// Formats a duration in the .NET "c" format, `[-][d.]hh:mm:ss[.fffffff]`.
    ///
    /// - Parameter duration: The duration; sub-tick precision (below 100 ns) is truncated.
    /// - Returns: A string such as `00:01:00` or `1.00:00:00`.
    public static func format(_ duration: Duration) -> String {
        let (secondsPart, attoseconds) = duration.components
        var totalTicks = secondsPart * 10_000_000 + attoseconds / 100_000_000_000
        var out = ""
        if totalTicks < 0 {
            out = "-"
            totalTicks = -totalTicks
        }
        let ticks = totalTicks % 10_000_000
        let totalSeconds = totalTicks / 10_000_000
        let days = totalSeconds / 86_400
        if days > 0 { out += "\(days)." }
        out += two(totalSeconds % 86_400 / 3600) + ":" + two(totalSeconds % 3600 / 60) + ":" + two(totalSeconds % 60)
        if ticks > 0 {
            let s = String(ticks)
            out += "." + String(repeating: "0", count: 7 - s.count) + s
        }
        return out
    }

    private static let dot = UInt8(ascii: ".")
    private static let colon = UInt8(ascii: ":")
    private static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
    private static func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

extension Substring {
    fileprivate func padding(toLength length: Int) -> String {
        String(self) + String(repeating: "0", count: Swift.max(0, length - count))
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
