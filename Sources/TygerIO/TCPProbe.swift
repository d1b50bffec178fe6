#if canImport(Glibc)
private import Glibc
#endif

/// Whether something accepts TCP connections on a host's port, with a short time bound (a connect to a remote host
/// blocks up to it: run it on a thread of its own there; on loopback it answers at once). What the run engine asks of
/// its workers' endpoints, on this machine's loopback or on a cluster's machines.
public enum TCPProbe {
    public static func accepts(host: String, port: Int, timeoutMilliseconds: Int32 = 1000) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let list else { return false }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            entry = current.pointee.ai_next
            let fd = socket(
                current.pointee.ai_family,
                current.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                current.pointee.ai_protocol
            )
            guard fd >= 0 else { continue }
            defer { close(fd) }
            if connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0 { return true }
            guard errno == EINPROGRESS else { continue }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&poller, 1, timeoutMilliseconds) == 1 else { continue }
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0 && failure == 0 { return true }
        }
        return false
    }
}
