#if canImport(Glibc)
private import Glibc
#endif

/// The unix socket's file: stale-socket removal before binding, owner-only mode after.
enum UnixSocketFile {
    /// Makes `path` free for binding: removes a stale socket left by a server that died, refuses when a live server
    /// answers on it or when it is not a socket.
    ///
    /// - Throws: `TygerServerError` `.alreadyRunning` when something accepts connections on it, `.io` when the path
    ///   is not a socket or cannot be removed.
    static func prepare(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw TygerServerError(.io, "\(path) exists and is not a socket; refusing to remove it")
        }
        if isLive(path) {
            throw TygerServerError(.alreadyRunning, "another server is already listening on \(path)")
        }
        guard unlink(path) == 0 || errno == ENOENT else { throw PrivateFile.failure("unlink", path) }
    }

    /// Restricts the socket to its owner (mode 0600). The data directory is 0700 as well, so the socket is never
    /// reachable by other users even before this runs.
    static func restrict(_ path: String) { chmod(path, 0o600) }

    /// Removes the socket after shutdown.
    static func remove(_ path: String) { unlink(path) }

    private static func isLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }
}
