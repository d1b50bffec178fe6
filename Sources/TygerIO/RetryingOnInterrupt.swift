#if canImport(Glibc)
private import Glibc
#endif

extension FileDescriptorOps {
    /// Calls the system call in `body` again for as long as it fails with `EINTR`, in the style of swift-system's
    /// `valueOrErrno(retryOnInterrupt:)`: the call returns -1 and sets errno when it fails.
    ///
    /// - Parameters:
    ///   - operation: The call's name, for the error message (e.g. "read").
    ///   - path: The file the call is about, if any, for the error message.
    /// - Returns: What `body` returned, when it was not -1.
    /// - Throws: `TygerIOError.system(operation, path:)` carrying the errno of a failure other than `EINTR`.
    public static func retryingOnInterrupt<T: FixedWidthInteger & SignedInteger>(
        _ operation: String,
        path: String? = nil,
        _ body: () -> T
    ) throws(TygerIOError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let e = Glibc.errno
            if e != EINTR { throw TygerIOError.system(operation, path: path, errno: e) }
        }
    }
}
