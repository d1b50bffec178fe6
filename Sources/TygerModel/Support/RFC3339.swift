public import Foundation

/// Parses and formats RFC 3339 timestamps without `DateFormatter`, so it is thread-safe and allocation-light.
///
/// Formatting always produces UTC with a `Z` suffix and up to six fractional digits (microseconds, trailing zeros
/// trimmed, no fraction when it is zero), like upstream's `2024-01-25T18:20:49.951262Z`. Parsing accepts what Go's
/// `RFC3339Nano` and .NET produce: `T`/`t`/space separators, any number of fractional digits (nanoseconds kept),
/// `Z`/`z` or a `±HH:MM` offset, and years `0001`...`9999` (so Go's zero time `0001-01-01T00:00:00Z` parses).
/// A timestamp without any zone designator is read as UTC. This is the one timestamp codec of the project: wire
/// bodies, query parameters, log lines (nanoseconds, fixed width) and signed URLs (whole seconds) all use it.
public enum RFC3339 {
    /// The first second of year 10000 (`10000-01-01T00:00:00Z`): formatting clamps below it, so the last instant of
    /// year 9999 never rounds into a five-digit year.
    static let endOfYear9999: Int64 = 253_402_300_800

    /// Formats a date as an RFC 3339 UTC timestamp with microsecond precision, trailing zeros trimmed.
    ///
    /// - Parameters:
    ///   - date: The date to format; it is rounded to the nearest microsecond (but never past
    ///     `9999-12-31T23:59:59.999999Z`).
    ///   - trimZeros: Whether to drop the fraction's trailing zeros (the wire form); without it the fraction always
    ///     has six digits (log lines, which compare as text).
    /// - Returns: A string such as `2024-01-25T18:20:49.951262Z`.
    public static func format(_ date: Date, trimZeros: Bool = true) -> String {
        let totalMicros = min(micros(date), endOfYear9999 * 1_000_000 - 1)
        return format(
            seconds: totalMicros.floorDivided(by: 1_000_000),
            nanoseconds: Int(totalMicros.floorModulo(1_000_000)) * 1000,
            fractionDigits: 6,
            trimZeros: trimZeros
        )
    }

    /// Formats seconds and nanoseconds since the epoch as an RFC 3339 UTC timestamp.
    ///
    /// - Parameters:
    ///   - seconds: Whole seconds since the Unix epoch.
    ///   - nanoseconds: The fraction, `0..<1_000_000_000`; digits past `fractionDigits` are cut, not rounded.
    ///   - fractionDigits: How many fraction digits to write (0...9); 0 writes none.
    ///   - trimZeros: Whether to drop trailing zeros of the fraction (and the `.` when nothing is left). Without it
    ///     the output has a fixed width, so timestamps compare as text (log lines).
    /// - Returns: For example `2026-11-26T07:00:00.123456789Z`.
    public static func format(seconds: Int64, nanoseconds: Int, fractionDigits: Int, trimZeros: Bool = false) -> String
    {
        let days = seconds.floorDivided(by: 86_400)
        let secondOfDay = seconds.floorModulo(86_400)
        let (year, month, day) = civil(fromDays: days)
        var out = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T"
        out += pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay % 3600 / 60, 2) + ":" + pad(secondOfDay % 60, 2)
        let digits = max(0, min(9, fractionDigits))
        if digits > 0 {
            var fraction = String(pad(Int64(nanoseconds), 9).prefix(digits))
            if trimZeros { while fraction.hasSuffix("0") { fraction.removeLast() } }
            if !fraction.isEmpty { out += "." + fraction }
        }
        return out + "Z"
    }

    /// Parses an RFC 3339 timestamp.
    ///
    /// - Parameter string: The text to parse, for example `2024-01-25T18:20:49.9512620+00:00`.
    /// - Returns: The date, or `nil` when `string` is not a valid timestamp.
    public static func parse(_ string: String) -> Date? {
        guard let (seconds, nanoseconds) = parseComponents(string) else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1_000_000_000)
    }

    /// Parses an RFC 3339 timestamp into whole seconds since the epoch and nanoseconds, without loss.
    ///
    /// - Parameter string: The text to parse.
    /// - Returns: The instant, or `nil` when `string` is not a valid timestamp.
    public static func parseComponents(_ string: String) -> (seconds: Int64, nanoseconds: Int)? {
        var p = Scanner(Array(string.utf8))
        guard let year = p.digits(4), p.take(UInt8(ascii: "-")),
            let month = p.digits(2), p.take(UInt8(ascii: "-")),
            let day = p.digits(2)
        else { return nil }
        guard p.take(UInt8(ascii: "T")) || p.take(UInt8(ascii: "t")) || p.take(UInt8(ascii: " ")) else { return nil }
        guard let hour = p.digits(2), p.take(UInt8(ascii: ":")),
            let minute = p.digits(2), p.take(UInt8(ascii: ":")),
            let second = p.digits(2)
        else { return nil }
        var nanos: Int64 = 0
        if p.take(UInt8(ascii: ".")) {
            var count = 0
            while let d = p.digit() {
                if count < 9 { nanos = nanos * 10 + d }
                count += 1
            }
            guard count > 0 else { return nil }
            if count < 9 { for _ in count..<9 { nanos *= 10 } }
        }
        var offsetSeconds: Int64 = 0
        if p.take(UInt8(ascii: "Z")) || p.take(UInt8(ascii: "z")) {
            // UTC
        } else if let sign = p.peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            p.index += 1
            guard let oh = p.digits(2), p.take(UInt8(ascii: ":")), let om = p.digits(2), oh < 24, om < 60 else {
                return nil
            }
            offsetSeconds = (oh * 3600 + om * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
        }
        guard p.atEnd else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month), hour < 24,
            minute < 60, second < 60
        else { return nil }
        let days = self.days(fromCivil: year, month, day)
        return (days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds, Int(nanos))
    }

    /// Formats whole seconds as `yyyy-MM-ddTHH:mm:ssZ` (the `st`/`se` fields of signed URLs).
    public static func formatSeconds(_ seconds: Int64) -> String {
        format(seconds: seconds, nanoseconds: 0, fractionDigits: 0)
    }

    /// Parses exactly `yyyy-MM-ddTHH:mm:ssZ` (no fraction, no offset, a real date).
    ///
    /// - Returns: Seconds since the epoch, or `nil` for any other form.
    public static func parseSeconds(_ text: String) -> Int64? {
        guard text.utf8.count == 20, let (seconds, nanos) = parseComponents(text), nanos == 0,
            formatSeconds(seconds) == text
        else { return nil }
        return seconds
    }

    /// Microseconds since the Unix epoch, rounded to the nearest microsecond (what repositories store).
    public static func micros(_ date: Date) -> Int64 {
        let value = (date.timeIntervalSince1970 * 1_000_000).rounded()
        guard value.isFinite else { return value > 0 ? Int64.max : Int64.min }
        return Int64(max(-9.2e18, min(9.2e18, value)))
    }

    /// The date of a microsecond count since the Unix epoch.
    public static func date(micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }

    /// Rounds a date to the nearest microsecond: the result survives formatting, parsing and storage unchanged.
    public static func normalize(_ date: Date) -> Date { Self.date(micros: micros(date)) }

    /// `date + duration`, rounded to the nearest microsecond (expiry times).
    public static func adding(_ duration: Duration, to date: Date) -> Date {
        let (seconds, attoseconds) = duration.components
        return normalize(date.addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18))
    }

    private struct Scanner {
        var bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var atEnd: Bool { index == bytes.count }
        func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }
        mutating func take(_ byte: UInt8) -> Bool {
            guard peek() == byte else { return false }
            index += 1
            return true
        }
        mutating func digit() -> Int64? {
            guard let b = peek(), b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            index += 1
            return Int64(b - UInt8(ascii: "0"))
        }
        mutating func digits(_ count: Int) -> Int64? {
            var value: Int64 = 0
            for _ in 0..<count {
                guard let d = digit() else { return nil }
                value = value * 10 + d
            }
            return value
        }
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    private static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    private static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    /// Division rounding toward negative infinity.
    func floorDivided(by divisor: Int64) -> Int64 {
        let q = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? q - 1 : q
    }

    /// The remainder of ``floorDivided(by:)``, with the divisor's sign.
    func floorModulo(_ divisor: Int64) -> Int64 { self - floorDivided(by: divisor) * divisor }
}
