import Foundation
import TygerModel

/// Parses `--tag K=V` values (repeatable, or comma-separated lists).
func parseTags(_ values: [String], option: String = "--tag") throws -> [String: String] {
    var tags: [String: String] = [:]
    for value in values {
        for item in value.split(separator: ",", omittingEmptySubsequences: true) {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw UsageError("invalid \(option) '\(item)': expected KEY=VALUE")
            }
            tags[String(item[..<eq])] = String(item[item.index(after: eq)...])
        }
    }
    return tags
}

/// Parses upstream's TTL form `D`, `D.HH`, `D.HH:MM` or `D.HH:MM:SS` into seconds.
func parseTTL(_ text: String, option: String = "--ttl") throws -> Int {
    let bad = UsageError("invalid \(option) '\(text)': expected D.HH:MM:SS, e.g. 0.01:00:00 for one hour")
    let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    guard let daysText = parts.first, !daysText.isEmpty, daysText.allSatisfy(\.isNumber), let days = Int(daysText)
    else { throw bad }
    var seconds = days * 86400
    if parts.count == 2 {
        let hms = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard (1...3).contains(hms.count), hms.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isNumber) }) else {
            throw bad
        }
        let values = hms.map { Int($0)! }  // two digits each, checked above
        guard values[0] <= 23, values.dropFirst().allSatisfy({ $0 <= 59 }) else { throw bad }
        seconds += values[0] * 3600 + (values.count > 1 ? values[1] * 60 : 0) + (values.count > 2 ? values[2] : 0)
    }
    return seconds
}

/// Formats seconds as a .NET TimeSpan, as the API's `ttl` and `bufferTtl` expect.
func timeSpan(_ seconds: Int) -> String {
    TimeSpan.format(.seconds(seconds))
}

/// Parses a user time (RFC 3339, with or without fraction, or a date) and returns RFC 3339.
///
/// A full RFC 3339 date-time is sent as written: a `Date` keeps only about microseconds, so `--since` with a stamp
/// the server printed (nanoseconds) would have included that very run or log line.
func normalizeTime(_ text: String) throws -> String {
    let dateTime = #"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"#
    if text.range(of: dateTime, options: .regularExpression) != nil { return text }
    if let date = RFC3339.parse(text) { return RFC3339.format(date) }
    if text.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression) != nil,
        let date = RFC3339.parse(text + "T00:00:00Z")
    {
        return RFC3339.format(date)
    }
    throw UsageError("invalid time '\(text)': expected RFC 3339, e.g. 2026-11-26T07:00:00Z")
}
