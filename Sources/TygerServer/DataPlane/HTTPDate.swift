#if canImport(Glibc)
private import Glibc
#endif

/// RFC 1123 dates for `Last-Modified` and `x-ms-creation-time`: `Wed, 26 Nov 2026 07:00:00 GMT`.
enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Formats seconds since the epoch.
    static func format(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var p = tm()
        gmtime_r(&t, &p)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(p.tm_wday)]), \(two(p.tm_mday)) \(months[Int(p.tm_mon)]) \(p.tm_year + 1900) "
            + "\(two(p.tm_hour)):\(two(p.tm_min)):\(two(p.tm_sec)) GMT"
    }
}
