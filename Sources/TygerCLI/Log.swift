#if canImport(Glibc)
import Glibc
#endif
private import Synchronization

/// The CLI's stderr log: `2026-11-26T07:00:00.123Z INF message key=value`, like upstream's console format.
final class Log: Sendable {
    static let shared = Log()
    private let level = Mutex(LogLevel.info)
    let stderrIsTerminal = isatty(2) != 0

    func setLevel(_ l: LogLevel) { level.withLock { $0 = l } }
    func enabled(_ l: LogLevel) -> Bool { level.withLock { l >= $0 } }

    func log(_ l: LogLevel, _ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        guard enabled(l) else { return }
        let tag =
            switch l {
            case .trace: "TRC"
            case .debug: "DBG"
            case .info: "INF"
            case .warn: "WRN"
            case .error: "ERR"
            }
        var line = "\(Self.timestamp()) \(tag) \(message)"
        for (k, v) in fields { line += " \(k)=\(v)" }
        Self.writeStderr(line + "\n")
    }

    func info(_ m: String, _ f: KeyValuePairs<String, String> = [:]) { log(.info, m, f) }
    func warn(_ m: String, _ f: KeyValuePairs<String, String> = [:]) { log(.warn, m, f) }
    func error(_ m: String, _ f: KeyValuePairs<String, String> = [:]) { log(.error, m, f) }
    func debug(_ m: String, _ f: KeyValuePairs<String, String> = [:]) { log(.debug, m, f) }

    static func writeStderr(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}
