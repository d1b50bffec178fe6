#if canImport(Glibc)
private import Glibc
#endif

/// Where signed URLs get "now" from: the system clock in production, a fixed or movable time in tests.
public struct WallClock: Sendable {
    private let _now: @Sendable () -> Int64

    /// A clock reading `now()`, in whole seconds since the Unix epoch.
    public init(now: @escaping @Sendable () -> Int64) { self._now = now }

    /// Seconds since the Unix epoch (UTC).
    public func now() -> Int64 { _now() }

    /// The system's real-time clock.
    public static let system = WallClock {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }

    /// A clock stopped at `seconds`.
    public static func fixed(_ seconds: Int64) -> WallClock { WallClock { seconds } }
}

/// The `st`/`se` time format of local signed URLs: `yyyy-MM-ddTHH:mm:ssZ` in UTC, second precision.
public enum SASTimestamp {
    /// Formats seconds since the epoch.
    ///
    /// - Parameter seconds: Seconds since the Unix epoch.
    /// - Returns: For example `2026-11-26T07:00:00Z`.
    public static func format(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }

    /// Parses the exact format `yyyy-MM-ddTHH:mm:ssZ`.
    ///
    /// - Parameter text: The timestamp.
    /// - Returns: Seconds since the Unix epoch, or `nil` when `text` is not in that exact form or not a real date.
    public static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count == 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
            b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"), b[19] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int32? {
            var v: Int32 = 0
            for i in range {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int32(b[i] - 0x30)
            }
            return v
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        let seconds = Int64(timegm(&parts))
        // timegm normalises 31 February into March: refuse dates that do not round-trip.
        guard format(seconds) == text else { return nil }
        return seconds
    }
}
