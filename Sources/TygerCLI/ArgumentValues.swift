import Foundation
import TygerCore
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

/// The `D.HH:MM:SS` form ``parseTTL(_:option:)`` reads, of whole seconds (a run's `bufferAccessTtl`, a .NET
/// TimeSpan such as `01:00:00`, handed on as an `--access-ttl`).
func ttlText(seconds: Int64) -> String {
    func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(seconds / 86400).\(two(seconds % 86400 / 3600)):\(two(seconds % 3600 / 60)):\(two(seconds % 60))"
}

/// Formats seconds as a .NET TimeSpan, as the API's `ttl` and `bufferTtl` expect.
func timeSpan(_ seconds: Int) -> String {
    TimeSpan.format(.seconds(seconds))
}

/// Parses a `--since` time and returns the RFC 3339 UTC instant to send (the server reads it as "strictly after").
///
/// Accepted (README, "Times"):
/// - RFC 3339 with a zone (`2026-11-26T07:00:00.5Z`, `…+01:00`): sent as written, so a stamp the server printed
///   keeps its nanoseconds (a `Date` keeps only about microseconds and would include that very run or line);
/// - a date-time without a zone (`2026-11-26T07:00:00`, `2026-11-26 07:00`, fraction allowed): local time;
/// - a date alone (`2026-11-26`): local midnight;
/// - a time of day (`07:00`, `07:00:30.25`): today at that local time, also when that is later than now (as `date`
///   and upstream-like tools read it; such a `--since` matches nothing yet);
/// - a relative time: an amount and a unit, optionally followed by `ago` (`30m`, `2d`, `1h30m`, `1 hour ago`,
///   `2 days ago`); units s, m, h, d, w and their English names.
///
/// - Parameters:
///   - now: The current time (relative times and "today").
///   - timeZone: The zone of times written without one (the process's, from `TZ`).
/// - Throws: `UsageError` with the accepted forms.
func normalizeTime(_ text: String, now: Date = Date(), timeZone: TimeZone = .current) throws -> String {
    let bad = UsageError(
        "invalid time '\(text)': expected RFC 3339 (2026-11-26T07:00:00Z, or without a zone for local time), a date, "
            + "a time of day, or a relative time such as 30m, 2d or '1 hour ago'"
    )
    let trimmed = text.trimmingCharacters(in: " \t")
    let zoned = #"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"#
    if trimmed.range(of: zoned, options: .regularExpression) != nil {
        guard RFC3339.parseComponents(trimmed) != nil else { throw bad }
        return trimmed
    }
    guard let instant = try localOrRelativeTime(trimmed, now: now, timeZone: timeZone) else { throw bad }
    return instant
}

/// The forms of ``normalizeTime(_:now:timeZone:)`` other than RFC 3339 with a zone; `nil` for anything else.
private func localOrRelativeTime(_ text: String, now: Date, timeZone: TimeZone) throws -> String? {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = timeZone
    let date = #"(\d{4})-(\d{2})-(\d{2})"#
    let dateTime = #"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?"#
    let timeOfDay = #"(\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?"#
    func number(_ match: Regex<AnyRegexOutput>.Match, _ i: Int) -> Int { match[i].substring.flatMap { Int($0) } ?? 0 }
    func fraction(_ match: Regex<AnyRegexOutput>.Match, _ i: Int) -> String {
        match[i].substring.map(String.init) ?? ""
    }
    if let m = text.wholeMatch(of: try Regex(date)) {
        return localTime([1, 2, 3].map { number(m, $0) }, calendar: calendar)
    }
    if let m = text.wholeMatch(of: try Regex(dateTime)) {
        return localTime([1, 2, 3, 4, 5, 7].map { number(m, $0) }, fraction: fraction(m, 8), calendar: calendar)
    }
    if let m = text.wholeMatch(of: try Regex(timeOfDay)) {
        let today = calendar.dateComponents([.year, .month, .day], from: now)
        let fields = [today.year ?? 0, today.month ?? 0, today.day ?? 0] + [1, 2, 4].map { number(m, $0) }
        return localTime(fields, fraction: fraction(m, 5), calendar: calendar)
    }
    return relativeDuration(text).map { RFC3339.format(now.addingTimeInterval(-$0)) }
}

/// The RFC 3339 UTC form of a local time `[year, month, day, hour, minute, second]` (missing trailing fields are 0)
/// with its `.fraction` text kept digit for digit; `nil` for a date or time that does not exist.
private func localTime(_ fields: [Int], fraction: String = "", calendar: Calendar) -> String? {
    let f = fields + Array(repeating: 0, count: max(0, 6 - fields.count))
    guard (1...12).contains(f[1]), (1...31).contains(f[2]), f[3] < 24, f[4] < 60, f[5] < 60 else { return nil }
    let components = DateComponents(year: f[0], month: f[1], day: f[2], hour: f[3], minute: f[4], second: f[5])
    // A day past the month's end would roll over into the next month: refuse it.
    guard calendar.date(from: components).map({ calendar.component(.day, from: $0) == f[2] }) == true,
        let instant = calendar.date(from: components)
    else { return nil }
    let digits = fraction.dropFirst().prefix(9)
    let nanoseconds = Int(digits + String(repeating: "0", count: 9 - digits.count)) ?? 0
    return RFC3339.format(
        seconds: Int64(instant.timeIntervalSince1970.rounded()),
        nanoseconds: nanoseconds,
        fractionDigits: 9,
        trimZeros: true
    )
}

/// Seconds in a relative time: amounts with units, optionally followed by `ago` (`30m`, `1h30m`, `2 days ago`).
private func relativeDuration(_ text: String) -> Double? {
    var rest = Substring(text.lowercased())
    if rest.hasSuffix(" ago") { rest = rest.dropLast(4) }
    let units: [String: Double] = [
        "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
        "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
        "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
        "d": 86400, "day": 86400, "days": 86400,
        "w": 604_800, "week": 604_800, "weeks": 604_800,
    ]
    var total = 0.0
    var parts = 0
    while true {
        rest = rest.drop { $0 == " " }
        if rest.isEmpty { break }
        let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        rest = rest.dropFirst(number.count).drop { $0 == " " }
        let unit = rest.prefix { $0.isASCII && $0.isLetter }
        guard let factor = units[String(unit)] else { return nil }
        rest = rest.dropFirst(unit.count)
        total += value * factor
        parts += 1
    }
    // Past about 285 years a date is meaningless (and `Date` arithmetic would lose the seconds).
    guard parts > 0, total.isFinite, total < DurationParser.maxSeconds else { return nil }
    return total
}
