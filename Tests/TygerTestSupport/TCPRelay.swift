#if canImport(Glibc)
import Glibc
#endif

/// A TCP relay a test owns, from a free port of 127.0.0.1 to `127.0.0.1:target`, that the test can cut (every
/// connection closed, new ones closed as soon as they are accepted) and restore: a server behind it seems to go away
/// and come back, while the real one keeps serving the other tests. With a `delay`, every byte is held that long in
/// each direction (a link with a round trip of twice the delay).
public final class TCPRelay: Sendable {
    public let port: Int
    private let listener: LoopbackSocket
    private let target: Int
    private let delay: Duration
    /// Whether connections are passed on, and the descriptors of those open.
    private let state = Locked((passing: true, open: Set<Int32>(), stopped: false))

    /// Starts relaying to `127.0.0.1:target`.
    public init(to target: Int, delay: Duration = .zero) throws {
        listener = try LoopbackSocket(listening: true)
        port = listener.port
        self.target = target
        self.delay = delay
        let listener = listener
        startThread { [self] in
            while true {
                let client = accept(listener.descriptor, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return  // the listener was closed
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)  // not inherited by the processes the tests start
                let passing = state.withLock { $0.passing && !$0.stopped }
                guard passing, let upstream = Self.connect(to: target) else {
                    _ = Glibc.close(client)
                    continue
                }
                state.withLock { _ = $0.open.formUnion([client, upstream]) }
                let pumping = Locked(2)  // both descriptors are closed when both directions have ended
                startThread { [self] in pump(from: client, to: upstream, pumping) }
                startThread { [self] in pump(from: upstream, to: client, pumping) }
            }
        }
    }

    /// Closes every relayed connection and closes new ones at once, until ``restore()``.
    public func cut() {
        state.withLock { state in
            state.passing = false
            // shutdown, not close: the pumps still use these descriptors and close them themselves (under this lock
            // they cannot have closed them yet: they leave the set first).
            for fd in state.open { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Passes new connections on again.
    public func restore() { state.withLock { $0.passing = true } }

    /// Stops relaying (every connection closed, the port freed).
    public func stop() {
        cut()
        state.withLock { $0.stopped = true }
        _ = shutdown(listener.descriptor, Int32(SHUT_RDWR))
        listener.close()
    }

    private static func microseconds(_ d: Duration) -> Int64 {
        let (seconds, attoseconds) = d.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }

    private static func connect(to port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        if !connected {
            _ = Glibc.close(fd)
            return nil
        }
        return fd
    }

    /// Copies `source` to `destination` until either ends, then ends both; the last of the two pumps closes them.
    /// With a delay, a thread of its own sends what was read once it has been held for the delay.
    private func pump(from source: Int32, to destination: Int32, _ pumping: Locked<Int>) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let held = Locked((chunks: [(ContinuousClock.Instant, [UInt8])](), ended: false))
        let sender = Locked(false)  // the delayed sender has finished
        if delay > .zero {
            startThread { [delay] in
                sending: while true {
                    let next = held.withLock { h -> (ContinuousClock.Instant, [UInt8])?? in
                        if !h.chunks.isEmpty { return h.chunks.removeFirst() }
                        return h.ended ? .some(nil) : nil
                    }
                    guard let next else {
                        usleep(500)
                        continue
                    }
                    guard let (readAt, chunk) = next else { break }
                    let due = readAt + delay
                    let now = ContinuousClock.now
                    if due > now { usleep(UInt32(Self.microseconds(due - now))) }
                    var sent = 0
                    while sent < chunk.count {
                        let m = chunk.withUnsafeBytes {
                            send(destination, $0.baseAddress! + sent, chunk.count - sent, Int32(MSG_NOSIGNAL))
                        }
                        if m < 0 && errno == EINTR { continue }
                        if m <= 0 { break sending }
                        sent += m
                    }
                }
                sender.withLock { $0 = true }
            }
        }
        copying: while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if delay > .zero {
                // At most 4 MiB held (the source waits, as a full link makes it), and none once the sender stopped.
                while held.withLock({ $0.chunks.count }) >= 64, !sender.withLock({ $0 }) { usleep(1000) }
                if sender.withLock({ $0 }) { break }
                held.withLock { $0.chunks.append((ContinuousClock.now, Array(buffer[0..<n]))) }
                continue
            }
            var sent = 0
            while sent < n {
                let m = buffer.withUnsafeBytes {
                    send(destination, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL))
                }
                if m < 0 && errno == EINTR { continue }
                if m <= 0 { break copying }
                sent += m
            }
        }
        if delay > .zero {
            held.withLock { $0.ended = true }
            while !sender.withLock({ $0 }) { usleep(1000) }
        }
        _ = shutdown(source, Int32(SHUT_RDWR))
        _ = shutdown(destination, Int32(SHUT_RDWR))
        guard
            pumping.withLock({ count in
                count -= 1
                return count == 0
            })
        else { return }
        state.withLock { _ = $0.open.subtract([source, destination]) }
        _ = Glibc.close(source)
        _ = Glibc.close(destination)
    }
}

extension TCPRelay {
    /// A relay to the PostgreSQL server of `url` (`postgres://…@HOST:PORT/DB` on 127.0.0.1), and the same URL through
    /// the relay.
    public static func forDatabase(_ url: String) throws -> (relay: TCPRelay, url: String) {
        guard let port = url.split(separator: ":").last?.split(separator: "/").first.flatMap({ Int($0) }) else {
            throw TestSupportError("no port in \(url)")
        }
        let relay = try TCPRelay(to: port)
        return (relay, url.replacing(":\(port)/", with: ":\(relay.port)/"))
    }
}
