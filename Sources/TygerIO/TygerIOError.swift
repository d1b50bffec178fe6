#if canImport(Glibc)
private import Glibc
#endif

/// The error thrown by the I/O module: a failed system call, with its errno and what was being done.
public struct TygerIOError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable {
        private enum Value: Hashable, Sendable { case system, brokenPipe, cancelled, notFound }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        /// A system call failed; see `errno`.
        public static let system = Code(.system)
        /// The reader of our output went away (EPIPE).
        public static let brokenPipe = Code(.brokenPipe)
        /// The operation was cancelled.
        public static let cancelled = Code(.cancelled)
        /// A path does not exist.
        public static let notFound = Code(.notFound)
    }

    public var code: Code
    /// The errno value, when a system call failed.
    public var errno: Int32?
    public var message: String

    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// An error for the failed call `operation`, from the thread's errno.
    public static func system(_ operation: String, path: String? = nil, errno: Int32? = nil) -> TygerIOError {
        let e = errno ?? Glibc.errno
        let reason = String(cString: strerror(e))
        let what = path.map { "\(operation) \($0)" } ?? operation
        if e == EPIPE { return TygerIOError(.brokenPipe, "\(what): \(reason)", errno: e) }
        if e == ENOENT { return TygerIOError(.notFound, "\(what): \(reason)", errno: e) }
        return TygerIOError(.system, "\(what): \(reason)", errno: e)
    }

    public var description: String { message }
}
