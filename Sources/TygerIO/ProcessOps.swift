private import CTygerNative
import Dispatch
private import Synchronization

#if canImport(Glibc)
private import Glibc
#endif

/// Process-level system calls for executables: terminals, process IDs and signals, detached children, and exiting.
///
/// Calls that can be interrupted retry on `EINTR`; failures throw ``TygerIOError`` with the errno.
public enum ProcessOps {
    /// Whether `fd` refers to a terminal.
    ///
    /// The corresponding C function is `isatty`.
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) != 0 }

    /// The system's text for an errno value, such as `No such file or directory`.
    ///
    /// The corresponding C function is `strerror`.
    public static func describe(errno value: Int32) -> String { String(cString: strerror(value)) }

    /// Whether a process with this ID exists (and may be signalled by us).
    ///
    /// The corresponding C function is `kill` with signal 0.
    public static func isAlive(_ pid: Int32) -> Bool { pid > 0 && kill(pid, 0) == 0 }

    /// The command line of process `pid` (`/proc/<pid>/cmdline`), or `nil` when there is no such process or it
    /// cannot be read. Lets a caller check that a recorded PID still names the process it started (PIDs are reused).
    public static func commandLine(of pid: Int32) -> [String]? {
        guard pid > 0, let bytes = PathOps.contentsOfSmallRegularFile("/proc/\(pid)/cmdline", limit: 1 << 20),
            !bytes.isEmpty
        else { return nil }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    /// The signals executables send or handle.
    public struct Signal: Hashable, Sendable {
        /// The signal number.
        public let rawValue: Int32
        private init(_ rawValue: Int32) { self.rawValue = rawValue }
        /// `SIGINT` (Ctrl-C).
        public static let interrupt = Signal(SIGINT)
        /// `SIGTERM`.
        public static let terminate = Signal(SIGTERM)
        /// `SIGKILL`.
        public static let kill = Signal(SIGKILL)
    }

    /// Sends `signal` to `pid`.
    ///
    /// - Returns: `false` when the process does not exist (or may not be signalled).
    /// The corresponding C function is `kill`.
    @discardableResult
    public static func send(_ signal: Signal, to pid: Int32) -> Bool { pid > 0 && kill(pid, signal.rawValue) == 0 }

    /// Ends the process at once with `status`, without running `atexit` handlers or flushing stdio.
    ///
    /// The corresponding C function is `_exit`.
    public static func exitImmediately(_ status: Int32) -> Never { _exit(status) }

    /// Starts `path` with `arguments` (including `argv[0]`) as a detached child in its own session, its stdout and
    /// stderr appended to `logFD` and its stdin `/dev/null`; no other descriptor is inherited.
    ///
    /// - Returns: The child's process ID.
    /// - Throws: ``TygerIOError`` when the child cannot be started.
    public static func spawnDetached(_ path: String, arguments: [String], logFD: Int32) throws -> Int32 {
        var cArgs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cArgs.append(nil)
        defer { for p in cArgs { free(p) } }
        let pid = tyger_spawn_detached(path, cArgs, logFD)
        guard pid > 0 else { throw TygerIOError.system("spawn", path: path) }
        return pid
    }

    /// Reaps `pid` if it has exited, without waiting.
    ///
    /// - Returns: The raw wait status when the child has exited, `nil` while it runs (or when it is not our child).
    /// The corresponding C function is `waitpid` with `WNOHANG`.
    public static func exitStatusIfExited(_ pid: Int32) -> Int32? {
        var status: Int32 = 0
        let r = try? FileDescriptorOps.retryingOnInterrupt("waitpid") { waitpid(pid, &status, WNOHANG) }
        return r == pid ? status : nil
    }

    /// Makes every file and directory this process creates from now on private to its user (`umask 077`: files
    /// 0600, directories 0700), whatever mode the creating call asks for.
    ///
    /// The corresponding C function is `umask`.
    public static func keepNewFilesPrivate() { umask(0o077) }

    /// A signal source kept alive (a released source stops delivering).
    private struct RetainedSource: @unchecked Sendable {
        // @unchecked: Dispatch sources are thread-safe, and this one is only kept, never used again.
        let source: any DispatchSourceSignal
    }

    private static let signalSources = Mutex<[RetainedSource]>([])

    /// Calls `handler` (on a global queue) each time one of `signals` arrives, instead of the default action.
    ///
    /// The handlers stay installed for the life of the process.
    /// The corresponding C functions are `signal` (to ignore the default action) and Dispatch signal sources.
    public static func onSignals(_ signals: [Signal], _ handler: @escaping @Sendable (Signal) -> Void) {
        for sig in signals {
            signal(sig.rawValue, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig.rawValue, queue: .global())
            source.setEventHandler { handler(sig) }
            source.resume()
            let kept = RetainedSource(source: source)
            signalSources.withLock { $0.append(kept) }
        }
    }
}
