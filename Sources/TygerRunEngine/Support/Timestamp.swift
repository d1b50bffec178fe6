#if canImport(Glibc)
private import Glibc
#endif

/// RFC 3339 timestamps without Foundation formatters: fixed-width UTC output (so log timestamps compare as text)
/// and a tolerant parser.
enum Timestamp {
    /// The current wall-clock time as (seconds, nanoseconds) since the epoch.
    static func now() -> (seconds: Int, nanos: Int) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int(ts.tv_sec), Int(ts.tv_nsec))
    }

    /// `YYYY-MM-DDTHH:MM:SS.<digits>Z` in UTC.
    static func format(seconds: Int, nanos: Int, digits: Int) -> String {
        var t = time_t(seconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        var fraction = pad(nanos, 9)
        fraction = String(fraction.prefix(digits))
        return "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T"
            + "\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2)):\(pad(Int(tm.tm_sec), 2))"
            + (digits > 0 ? "." + fraction : "") + "Z"
    }

    /// The current time with nanoseconds, for log lines.
    static func nowForLog() -> String {
        let (s, n) = now()
        return format(seconds: s, nanos: n, digits: 9)
    }

    /// Parses RFC 3339 (`T` or space separator, optional fraction, `Z` or `±HH:MM`). Returns UTC seconds and nanos.
    static func parse(_ text: String) -> (seconds: Int, nanos: Int)? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 19, let year = num(0, 4), b[4] == 0x2D, let month = num(5, 2), b[7] == 0x2D,
            let day = num(8, 2), b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20, let hour = num(11, 2),
            b[13] == 0x3A, let minute = num(14, 2), b[16] == 0x3A, let second = num(17, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var i = 19
        var nanos = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                if digits < 9 { nanos = nanos * 10 + Int(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 where digits < 9 { nanos *= 10 }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D {
            guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == 0x3A, let om = num(i + 4, 2) else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == 0x2B ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        var tm = tm()
        tm.tm_year = Int32(year - 1900)
        tm.tm_mon = Int32(month - 1)
        tm.tm_mday = Int32(day)
        tm.tm_hour = Int32(hour)
        tm.tm_min = Int32(minute)
        tm.tm_sec = Int32(second)
        let seconds = Int(timegm(&tm)) - offset
        return (seconds, nanos)
    }
}
