import Synchronization
import TygerIO
import TygerModel

#if canImport(Glibc)
private import Glibc
#endif

/// The log file of one run: every line of every process, each prefixed with its RFC 3339 timestamp.
///
/// Lines are appended under a lock and stamped inside it, so the file is in time order whatever the number of
/// processes and streams. The file stays after the run ends; it is what `GET /runs/{id}/logs` serves.
public final class RunLogWriter: Sendable {
    /// The log file.
    public let path: String
    private struct State {
        var fd: Int32
        /// The stamp of the last line, as (seconds, nanoseconds): stamps never go back in the file.
        var last: (Int64, Int) = (0, 0)
    }
    private let state: Mutex<State>

    /// Opens (creating, appending) the log file.
    /// - Throws: `TygerRunEngineError` `.executorFailure` when it cannot be opened.
    public init(path: String) throws {
        self.path = path
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw TygerRunEngineError(
                .executorFailure,
                "cannot open the run log \(path): \(String(cString: strerror(errno)))"
            )
        }
        self.state = Mutex(State(fd: fd))
    }

    deinit { state.withLock { FileDescriptorOps.close($0.fd) } }

    /// Appends one line (without its newline), stamped now.
    public func append(line: UnsafeRawBufferPointer, prefix: String = "") {
        append(line: line, prefix: prefix, stamp: nil)
    }

    /// Appends one line stamped with the time the engine that ran the process gave it (a container engine's log
    /// timestamp), or now when `stamp` is nil. A stamp earlier than the last line's is raised to it, so the file
    /// stays in time order (what `--since` and `--tail` rely on) when several streams are merged.
    ///
    /// - Parameter stamp: Seconds since the epoch and nanoseconds.
    public func append(line: UnsafeRawBufferPointer, prefix: String = "", stamp: (seconds: Int64, nanoseconds: Int)?) {
        var record: [UInt8] = []
        record.reserveCapacity(line.count + prefix.utf8.count + 32)
        state.withLock { state in
            var when: (Int64, Int)
            if let stamp {
                when = (stamp.seconds, stamp.nanoseconds)
            } else {
                var ts = timespec()
                clock_gettime(CLOCK_REALTIME, &ts)
                when = (Int64(ts.tv_sec), Int(ts.tv_nsec))
            }
            if when < state.last { when = state.last }
            state.last = when
            let text = RFC3339.format(seconds: when.0, nanoseconds: when.1, fractionDigits: 9)
            record.append(contentsOf: text.utf8)
            record.append(0x20)
            record.append(contentsOf: prefix.utf8)
            record.append(contentsOf: line)
            record.append(0x0A)
            record.withUnsafeBytes { try? FileDescriptorOps.writeAll(state.fd, $0) }
        }
    }

    /// Appends a text line.
    public func append(_ text: String, prefix: String = "") {
        var text = text
        text.withUTF8 { append(line: UnsafeRawBufferPointer($0), prefix: prefix) }
    }

    /// Reads `fd` (a process's stdout or stderr) to its end, appending each line. Blocking: run on a dedicated thread.
    /// A last line without a newline is appended at the end; lines of any length stay whole.
    func pump(from fd: Int32, prefix: String) {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { chunk.deallocate() }
        var carry: [UInt8] = []
        while true {
            guard let n = try? FileDescriptorOps.read(fd, into: chunk), n > 0 else { break }
            var start = 0
            let bytes = UnsafeRawBufferPointer(rebasing: chunk[0..<n])
            while let nl = bytes[start...].firstIndex(of: 0x0A) {
                if carry.isEmpty {
                    append(line: UnsafeRawBufferPointer(rebasing: bytes[start..<nl]), prefix: prefix)
                } else {
                    carry.append(contentsOf: bytes[start..<nl])
                    carry.withUnsafeBytes { append(line: $0, prefix: prefix) }
                    carry.removeAll(keepingCapacity: true)
                }
                start = nl + 1
            }
            if start < n { carry.append(contentsOf: bytes[start..<n]) }
        }
        if !carry.isEmpty { carry.withUnsafeBytes { append(line: $0, prefix: prefix) } }
    }
}
