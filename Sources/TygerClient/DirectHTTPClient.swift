import NIOCore
import NIOHTTP1
private import Synchronization
import TygerCore
import TygerIO

#if canImport(Glibc)
private import Glibc
#endif

/// The data plane's plain-HTTP/1.1 client (`http://` and `http+unix://`; `https://` stays with AsyncHTTPClient):
/// blocking sockets on threads of their own, so that bytes are copied once on each side of the socket.
///
/// - A request body is sent straight from the caller's memory (`sendmsg` of the head and the blob together), where
///   AsyncHTTPClient needs a `ByteBuffer` copy of every block.
/// - A response body with a `Content-Length` is received straight into memory of that size (`recv` with
///   `MSG_WAITALL` into the blob), where AsyncHTTPClient hands over 64 KiB pieces that are copied again.
/// - Connections are kept alive per server (HTTP/1.1, no pipelining) and dropped after ``idleLifetime`` idle
///   (servers of this project close idle connections after 120 s) or when the server has closed them.
/// - Each blocking call waits at most ``ioTimeout`` for progress (connecting: ``connectTimeout``): a transfer that
///   keeps moving is never cut off, whatever its size, and one that stalls fails with "no answer in time".
/// - Cancelling the awaiting task shuts the socket down, which ends the blocked call at once.
///
/// Errors are `TygerClientError` `.transport` with the same wording as ``HTTPTransport``'s.
final class DirectHTTPClient: Sendable {
    /// The client of this process.
    static let shared = DirectHTTPClient()
    /// Off when `TYGER_DIRECT_HTTP=0`: plain HTTP then goes through AsyncHTTPClient too (for comparisons).
    static let enabled = getenv("TYGER_DIRECT_HTTP").map { String(cString: $0) != "0" } ?? true

    /// How long a connection may sit idle in the pool.
    static let idleLifetime: Duration = .seconds(50)
    /// At most this many idle connections per server are kept.
    static let idlePerServer = 64
    /// The longest response head accepted.
    static let maxHeadSize = 256 << 10
    /// The largest response body accepted (blobs are at most a few hundred MiB; a `ByteBuffer` holds 4 GiB).
    static let maxDownload = (4 << 30) - 1

    let ioTimeout: Duration
    let connectTimeout: Duration
    private let idle = Mutex<[String: [PlainConnection]]>([:])
    private let threads = ElasticThreads(limit: 512, name: "tyger-http")
    /// Memory of downloaded blobs, used again: fresh memory costs a page fault and a cleared page per 4 KiB, a fifth
    /// of a reader's CPU when measured.
    fileprivate let receiveMemory = MemoryPool(limit: 96 << 20, largest: DirectHTTPClient.maxDownload)

    init(ioTimeout: Duration = .seconds(100), connectTimeout: Duration = .seconds(10)) {
        self.ioTimeout = ioTimeout
        self.connectTimeout = connectTimeout
    }

    /// Whether this client serves `url`: plain HTTP over TCP or a unix socket, unless `TYGER_DIRECT_HTTP=0`.
    static func serves(_ url: ServiceURL) -> Bool {
        guard enabled else { return false }
        return switch url.transport {
        case .unix: true
        case .tcp(let scheme, _): scheme == "http"
        }
    }

    /// Memory a response body was received into (at least `count` bytes): the caller owns it, and gives it back
    /// with ``recycle(_:)`` (or deallocates it).
    struct ReceivedBody: @unchecked Sendable {
        let memory: UnsafeMutableRawBufferPointer
        let count: Int
    }

    /// Takes back memory of a ``ReceivedBody`` for the next download.
    func recycle(_ memory: UnsafeMutableRawBufferPointer) { receiveMemory.put(memory) }

    /// What came back: a status, headers, and the body, either collected or (``download(_:headers:)`` of a 200/206
    /// with a length) in memory of its own.
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
        var received: ReceivedBody?
    }

    /// Sends a request and collects the response body (at most `maxBody` bytes).
    ///
    /// - Parameter body: The request body; it must stay valid until this returns (it is sent from where it is).
    func send(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        headers: HTTPHeaders,
        body: UnsafeRawBufferPointer?,
        maxBody: Int = 300 << 20
    ) async throws -> HTTPTransport.Response {
        let answer = try await perform(method, url, headers: headers, body: body, receiveIntoMemory: false, maxBody)
        return HTTPTransport.Response(status: answer.status, headers: answer.headers, body: answer.body)
    }

    /// GETs `url`; a 200 or 206 with a `Content-Length` is received into memory of that size
    /// (``Answer/received``), any other answer is collected (at most 1 MiB).
    func download(_ url: ServiceURL, headers: HTTPHeaders) async throws -> Answer {
        try await perform(.GET, url, headers: headers, body: nil, receiveIntoMemory: true, 1 << 20)
    }

    private struct Outgoing: @unchecked Sendable {
        let body: UnsafeRawBufferPointer?
    }

    private func perform(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        headers: HTTPHeaders,
        body: UnsafeRawBufferPointer?,
        receiveIntoMemory: Bool,
        _ maxBody: Int
    ) async throws -> Answer {
        let head = try Self.requestHead(method, url, headers: headers, bodyLength: body?.count)
        let outgoing = Outgoing(body: body)
        let request = InFlight()
        return try await withTaskCancellationHandler {
            try await threads.run { [self] in
                try exchange(method, url, head: head, body: outgoing.body, request, receiveIntoMemory, maxBody)
            }
        } onCancel: {
            request.cancel()
        }
    }

    /// The request line and headers, with `Host` and `Content-Length` (for PUT and POST without a body too).
    static func requestHead(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        headers: HTTPHeaders,
        bodyLength: Int?,
        chunked: Bool = false
    ) throws -> [UInt8] {
        let host: String
        switch url.transport {
        case .tcp(_, let authority): host = authority
        case .unix: host = "localhost"
        }
        let target = url.path + (url.query.isEmpty ? "" : "?" + url.query)
        var text = "\(method.rawValue) \(target) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers where name.lowercased() != "host" && name.lowercased() != "content-length" {
            text += "\(name): \(value)\r\n"
        }
        if chunked {
            text += "Transfer-Encoding: chunked\r\n"
        } else if let bodyLength {
            text += "Content-Length: \(bodyLength)\r\n"
        } else if method == .PUT || method == .POST {
            text += "Content-Length: 0\r\n"
        }
        text += "\r\n"
        // A line break inside a name, a value or the target would start a header or a request of its own. (Bytes,
        // not Characters: "\r\n" is one Character.)
        func unsafe(_ text: String, space: Bool = false) -> Bool {
            text.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 || (space && $0 == 32) }
        }
        guard !unsafe(target, space: true), !headers.contains(where: { unsafe($0.name) || unsafe($0.value) }) else {
            throw TygerClientError(.invalidURL, "\(method) \(url.redacted): a line break in the request head")
        }
        return Array(text.utf8)
    }

    /// One request and its answer, on the calling (blocking) thread.
    private func exchange(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        head: [UInt8],
        body: UnsafeRawBufferPointer?,
        _ request: InFlight,
        _ receiveIntoMemory: Bool,
        _ maxBody: Int
    ) throws -> Answer {
        let key = url.origin
        if let kept = takeIdle(key) {
            do {
                return try exchange(
                    method,
                    url,
                    on: kept,
                    head: head,
                    body: body,
                    request,
                    receiveIntoMemory,
                    maxBody
                )
            } catch let error as TygerClientError
                where error.closedBeforeAnswer && Self.repeatable(method) && !request.isCancelled
            {
                // A kept-alive connection the server closed just as the request went out (its idle close raced the
                // check in `takeIdle`): the server saw nothing of it, so it goes once more on a new connection.
            }
        }
        return try exchange(
            method,
            url,
            on: try connect(url),
            head: head,
            body: body,
            request,
            receiveIntoMemory,
            maxBody
        )
    }

    /// Whether a request may be sent again on a new connection when a kept-alive one closed before any answer: the
    /// methods without effects (RFC 9110 §9.2.1). Uploads are left to the caller, which knows whether a blob's
    /// write-once condition makes a repeat safe.
    static func repeatable(_ method: HTTPMethod) -> Bool { method == .GET || method == .HEAD }

    /// One request and its answer on `connection`.
    private func exchange(
        _ method: HTTPMethod,
        _ url: ServiceURL,
        on connection: PlainConnection,
        head: [UInt8],
        body: UnsafeRawBufferPointer?,
        _ request: InFlight,
        _ receiveIntoMemory: Bool,
        _ maxBody: Int
    ) throws -> Answer {
        let key = url.origin
        guard request.attach(connection) else {
            connection.close()
            throw CancellationError()
        }
        var reader = ResponseReader(connection: connection, timeout: ioTimeout, memory: receiveMemory)
        do {
            do {
                try connection.sendAll(head, body, timeout: ioTimeout)
            } catch let failure as SocketFailure {
                // A server may refuse a request before reading all of its body, answer and close: that answer,
                // when it is there already, says more than the failed send.
                guard connection.readableWhileIdle(),
                    let early = try? reader.read(method: method, receiveIntoMemory: false, maxBody: 1 << 20)
                else { throw failure }
                request.detach()
                connection.close()
                return early
            }
            let answer = try reader.read(method: method, receiveIntoMemory: receiveIntoMemory, maxBody: maxBody)
            // A cancellation that came after the answer shut the socket down: not one to keep.
            if request.detach(), reader.reusable { putIdle(connection, key) } else { connection.close() }
            return answer
        } catch {
            request.detach()
            connection.close()
            if request.isCancelled { throw CancellationError() }
            guard var failure = error as? SocketFailure else { throw error }
            // Once any of the answer arrived, the request was processed: never "closed before the answer".
            if reader.receivedAny { failure.closedBeforeAnswer = false }
            throw Self.failure(method, url, failure)
        }
    }

    // MARK: Streams (the relays of ephemeral buffers)

    /// A `PUT` whose chunked body is what `next` yields (blocking; `nil` at the end), on a new connection and a thread
    /// of its own. No I/O timeout: a relay waits as long as its run (a queued job, a process that reads slowly).
    ///
    /// - Returns: The answer, its body collected (at most 1 MiB); an answer the server sent before it read the whole
    ///   body (a refusal) too.
    func streamUpload(
        _ url: ServiceURL,
        headers: HTTPHeaders,
        next: @escaping @Sendable () throws -> ByteBuffer?
    ) async throws -> HTTPTransport.Response {
        let head = try Self.requestHead(.PUT, url, headers: headers, bodyLength: nil, chunked: true)
        let request = InFlight()
        return try await withTaskCancellationHandler {
            try await DedicatedThread.run(name: "tyger-relay-put") { [self] in
                try stream(url, method: .PUT, head: head, request) { connection in
                    var framing = ""
                    while let buffer = try next() {
                        guard buffer.readableBytes > 0 else { continue }
                        framing += String(buffer.readableBytes, radix: 16) + "\r\n"
                        try buffer.withUnsafeReadableBytes { bytes in
                            try connection.sendAll(Array(framing.utf8), bytes, timeout: .zero)
                        }
                        framing = "\r\n"
                    }
                    try connection.sendAll(Array((framing + "0\r\n\r\n").utf8), nil, timeout: .zero)
                } answer: { reader in
                    let answer = try reader.read(method: .PUT, receiveIntoMemory: false, maxBody: 1 << 20)
                    return HTTPTransport.Response(status: answer.status, headers: answer.headers, body: answer.body)
                }
            }
        } onCancel: {
            request.cancel()
        }
    }

    /// A `GET` whose 200 answer's body is handed to `deliver` as it arrives (blocking), on a new connection and a
    /// thread of its own; no I/O timeout, as ``streamUpload(_:headers:next:)``.
    ///
    /// - Returns: The answer, with the body collected (at most 1 MiB) when it is not a 200.
    func streamDownload(
        _ url: ServiceURL,
        headers: HTTPHeaders,
        deliver: @escaping @Sendable (UnsafeRawBufferPointer) throws -> Void
    ) async throws -> HTTPTransport.Response {
        let head = try Self.requestHead(.GET, url, headers: headers, bodyLength: nil)
        let request = InFlight()
        return try await withTaskCancellationHandler {
            try await DedicatedThread.run(name: "tyger-relay-get") { [self] in
                try stream(url, method: .GET, head: head, request) { _ in
                } answer: { reader in
                    try reader.readStreaming(deliver: deliver)
                }
            }
        } onCancel: {
            request.cancel()
        }
    }

    /// One streamed exchange on a new connection (never kept: a relay is read once).
    private func stream(
        _ url: ServiceURL,
        method: HTTPMethod,
        head: [UInt8],
        _ request: InFlight,
        send: (PlainConnection) throws -> Void,
        answer: (inout ResponseReader) throws -> HTTPTransport.Response
    ) throws -> HTTPTransport.Response {
        let connection = try connect(url)
        defer { connection.close() }
        guard request.attach(connection) else { throw CancellationError() }
        defer { request.detach() }
        var reader = ResponseReader(connection: connection, timeout: .zero, memory: receiveMemory)
        do {
            do {
                try connection.sendAll(head, nil, timeout: .zero)
                try send(connection)
            } catch let failure as SocketFailure {
                // A refusal sent before the whole body was read says more than the failed send.
                guard connection.readableWhileIdle(),
                    let early = try? reader.read(method: method, receiveIntoMemory: false, maxBody: 1 << 20)
                else { throw failure }
                return HTTPTransport.Response(status: early.status, headers: early.headers, body: early.body)
            }
            return try answer(&reader)
        } catch {
            if request.isCancelled { throw CancellationError() }
            throw Self.failure(method, url, error)
        }
    }

    private static func failure(_ method: HTTPMethod, _ url: ServiceURL, _ error: any Error) -> any Error {
        guard let io = error as? SocketFailure else { return error }
        var failure = TygerClientError(.transport, "\(method) \(url.redacted): \(io.reason)")
        failure.closedBeforeAnswer = io.closedBeforeAnswer
        return failure
    }

    // MARK: Connections

    private func takeIdle(_ key: String) -> PlainConnection? {
        let now = ContinuousClock.now
        while true {
            let candidate = idle.withLock { pool -> PlainConnection? in pool[key]?.popLast() }
            guard let candidate else { return nil }
            // Too old, or readable while idle (the server closed it, or sent something unasked): not reused.
            if candidate.idleTooLong(at: now) || candidate.readableWhileIdle() {
                candidate.close()
                continue
            }
            return candidate
        }
    }

    private func putIdle(_ connection: PlainConnection, _ key: String) {
        let now = ContinuousClock.now
        connection.idleSince = now
        // Connections idle too long are dropped here too: the pool is taken from its end, so after a burst the
        // oldest would otherwise stay (their descriptors held) until the next burst.
        let (kept, stale) = idle.withLock { pool -> (Bool, [PlainConnection]) in
            var list = pool[key, default: []]
            let stale = list.filter { $0.idleTooLong(at: now) }
            list.removeAll { $0.idleTooLong(at: now) }
            let kept = list.count < Self.idlePerServer
            if kept { list.append(connection) }
            pool[key] = list
            return (kept, stale)
        }
        for old in stale { old.close() }
        if !kept { connection.close() }
    }

    private func connect(_ url: ServiceURL) throws -> PlainConnection {
        do {
            switch url.transport {
            case .unix(let path): return try PlainConnection.unix(path, connectTimeout: connectTimeout)
            case .tcp(_, let authority): return try PlainConnection.tcp(authority, connectTimeout: connectTimeout)
            }
        } catch let error as SocketFailure {
            throw TygerClientError(.transport, "cannot reach \(url.origin): \(error.reason)")
        }
    }
}

/// A failed socket call, in words.
private struct SocketFailure: Error {
    var reason: String
    var closedBeforeAnswer = false

    static func errno(_ call: String, _ value: Int32) -> SocketFailure {
        switch value {
        case EAGAIN: return SocketFailure(reason: "no answer in time")
        case ECONNRESET, EPIPE: return SocketFailure(reason: "the connection was closed", closedBeforeAnswer: true)
        default: return SocketFailure(reason: ProcessOps.describe(errno: value).lowercased())
        }
    }
}

/// The connection a request is using, so that cancelling the awaiting task can shut it down.
private final class InFlight: Sendable {
    private enum State {
        case waiting
        case using(PlainConnection)
        case cancelled
    }
    private let state = Mutex<State>(.waiting)

    /// Returns false when the request was cancelled before it had a connection.
    func attach(_ connection: PlainConnection) -> Bool {
        state.withLock { s in
            if case .cancelled = s { return false }
            s = .using(connection)
            return true
        }
    }

    /// Lets go of the connection; false when the request was cancelled (and the connection shut down).
    @discardableResult
    func detach() -> Bool {
        state.withLock { s in
            if case .using = s {
                s = .waiting
                return true
            }
            return false
        }
    }

    func cancel() {
        state.withLock { s in
            if case .using(let connection) = s { connection.shutDown() }
            s = .cancelled
        }
    }

    var isCancelled: Bool { state.withLock { if case .cancelled = $0 { true } else { false } } }
}

/// One socket. `close` and `shutDown` take the same lock, so a cancellation never touches a descriptor number that
/// was closed and reused.
private final class PlainConnection: @unchecked Sendable {
    private let descriptor: Mutex<Int32>
    /// Used only by the thread that holds the connection.
    var idleSince: ContinuousClock.Instant = .now
    private let fd: Int32

    private init(_ fd: Int32) {
        self.fd = fd
        self.descriptor = Mutex(fd)
    }

    deinit { close() }

    func close() {
        descriptor.withLock { d in
            if d >= 0 { _ = Glibc.close(d) }
            d = -1
        }
    }

    func shutDown() {
        descriptor.withLock { d in if d >= 0 { _ = Glibc.shutdown(d, Int32(SHUT_RDWR)) } }
    }

    /// Whether the connection has been idle longer than ``DirectHTTPClient/idleLifetime`` at `now`.
    func idleTooLong(at now: ContinuousClock.Instant) -> Bool { now - idleSince > DirectHTTPClient.idleLifetime }

    /// Whether an idle connection has something to read: the server's close (end of stream), or bytes it sent
    /// unasked. Either way it cannot carry a request.
    func readableWhileIdle() -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) != 0
    }

    static func unix(_ path: String, connectTimeout: Duration) throws -> PlainConnection {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw SocketFailure(reason: "the socket path is too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketFailure.errno("socket", errno) }
        let connection = PlainConnection(fd)
        connection.setTimeout(SO_SNDTIMEO, connectTimeout)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let e = errno
            throw e == EAGAIN || e == EINPROGRESS
                ? SocketFailure(reason: "connection timed out") : SocketFailure.errno("connect", e)
        }
        return connection
    }

    static func tcp(_ authority: String, connectTimeout: Duration) throws -> PlainConnection {
        let (host, port) = try hostAndPort(authority)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &list)
        guard rc == 0, let first = list else {
            throw SocketFailure(reason: "cannot resolve the host name \(host)")
        }
        defer { freeaddrinfo(first) }
        var lastError = SocketFailure(reason: "no address to connect to for \(host)")
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                lastError = .errno("socket", errno)
                continue
            }
            let connection = PlainConnection(fd)
            connection.setTimeout(SO_SNDTIMEO, connectTimeout)
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                var one: Int32 = 1
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return connection
            }
            let e = errno
            // A connect that outlived SO_SNDTIMEO fails with EINPROGRESS (TCP) or EAGAIN (unix sockets).
            lastError =
                e == EAGAIN || e == EINPROGRESS ? SocketFailure(reason: "connection timed out") : .errno("connect", e)
            connection.close()
        }
        throw lastError
    }

    /// `host:port`, `[v6]:port` or a host alone (port 80).
    static func hostAndPort(_ authority: String) throws -> (String, String) {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            let host = String(authority[authority.index(after: authority.startIndex)..<close])
            let rest = authority[authority.index(after: close)...]
            return (host, rest.hasPrefix(":") ? String(rest.dropFirst()) : "80")
        }
        if let colon = authority.lastIndex(of: ":") {
            return (String(authority[..<colon]), String(authority[authority.index(after: colon)...]))
        }
        return (authority, "80")
    }

    private func setTimeout(_ option: Int32, _ timeout: Duration) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        _ = setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends `head` and then `body`, in as few calls as the socket takes.
    func sendAll(_ head: [UInt8], _ body: UnsafeRawBufferPointer?, timeout: Duration) throws {
        setTimeout(SO_SNDTIMEO, timeout)
        try head.withUnsafeBytes { headBytes in
            var pieces = [headBytes]
            if let body, body.count > 0 { pieces.append(body) }
            var index = 0
            var offset = 0
            while index < pieces.count {
                var vectors = pieces[index...].enumerated().map { n, piece in
                    let start = n == 0 ? offset : 0
                    return iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: piece.baseAddress! + start),
                        iov_len: piece.count - start
                    )
                }
                let sent = vectors.withUnsafeMutableBufferPointer { v -> Int in
                    var message = msghdr()
                    message.msg_iov = v.baseAddress
                    message.msg_iovlen = v.count
                    return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
                }
                if sent < 0 {
                    if errno == EINTR { continue }
                    throw SocketFailure.errno("sendmsg", errno)
                }
                var left = sent
                while left > 0, index < pieces.count {
                    let remaining = pieces[index].count - offset
                    if left >= remaining {
                        left -= remaining
                        index += 1
                        offset = 0
                    } else {
                        offset += left
                        left = 0
                    }
                }
            }
        }
    }

    /// Receives up to `buffer.count` bytes (all of them with `waitAll`); 0 at the end of the stream.
    func receive(into buffer: UnsafeMutableRawBufferPointer, waitAll: Bool, timeout: Duration) throws -> Int {
        setTimeout(SO_RCVTIMEO, timeout)
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, waitAll ? Int32(MSG_WAITALL) : 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw SocketFailure.errno("recv", errno)
        }
    }
}

/// Reads one response off a connection.
private struct ResponseReader {
    let connection: PlainConnection
    let timeout: Duration
    /// Received bytes not consumed yet (what came after the head).
    private var pending: [UInt8] = []
    /// Whether the connection can carry another request after this response.
    private(set) var reusable = false
    private(set) var receivedAny = false

    let memory: MemoryPool

    init(connection: PlainConnection, timeout: Duration, memory: MemoryPool) {
        self.connection = connection
        self.timeout = timeout
        self.memory = memory
    }

    mutating func read(method: HTTPMethod, receiveIntoMemory: Bool, maxBody: Int) throws -> DirectHTTPClient.Answer {
        let (version, status, headers) = try readFinalHead()
        let keepAlive =
            version == "HTTP/1.1" && !headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
        if method == .HEAD || status == 204 || status == 304 {
            reusable = keepAlive && pending.isEmpty
            return .init(status: status, headers: headers, body: ByteBuffer(), received: nil)
        }
        if headers[canonicalForm: "transfer-encoding"].contains(where: { $0.lowercased() == "chunked" }) {
            let body = try readChunked(
                maxBody: receiveIntoMemory && (status == 200 || status == 206) ? DirectHTTPClient.maxDownload : maxBody
            )
            reusable = keepAlive && pending.isEmpty
            if receiveIntoMemory, status == 200 || status == 206 {
                let memory = memory.take(body.readableBytes)
                body.withUnsafeReadableBytes { memory.copyMemory(from: $0) }
                return .init(
                    status: status,
                    headers: headers,
                    body: ByteBuffer(),
                    received: .init(memory: memory, count: body.readableBytes)
                )
            }
            return .init(status: status, headers: headers, body: body, received: nil)
        }
        if let lengthText = headers.first(name: "Content-Length") {
            guard let length = Int(lengthText), length >= 0 else {
                throw SocketFailure(reason: "invalid Content-Length '\(lengthText)'")
            }
            guard length <= DirectHTTPClient.maxDownload else {
                throw SocketFailure(reason: "a response body of \(length) bytes")
            }
            if receiveIntoMemory, status == 200 || status == 206 {
                let memory = memory.take(length)
                do {
                    try fill(UnsafeMutableRawBufferPointer(rebasing: memory[0..<length]))
                } catch {
                    self.memory.put(memory)
                    throw error
                }
                reusable = keepAlive && pending.isEmpty
                return .init(
                    status: status,
                    headers: headers,
                    body: ByteBuffer(),
                    received: .init(memory: memory, count: length)
                )
            }
            guard length <= maxBody else { throw SocketFailure(reason: "a response body of \(length) bytes") }
            var body = ByteBuffer()
            body.reserveCapacity(length)
            try body.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                try fill(UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]))
                return length
            }
            reusable = keepAlive && pending.isEmpty
            return .init(status: status, headers: headers, body: body, received: nil)
        }
        // Neither a length nor chunks: the body ends with the connection.
        var body = ByteBuffer(bytes: pending)
        pending = []
        while true {
            let n = try body.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 << 10) {
                try connection.receive(into: $0, waitAll: false, timeout: timeout)
            }
            if n == 0 { break }
            guard body.readableBytes <= maxBody else {
                throw SocketFailure(reason: "a response body over \(maxBody) bytes")
            }
        }
        return .init(status: status, headers: headers, body: body, received: nil)
    }

    /// Reads an answer whose 200 body is handed to `deliver` piece by piece as it arrives (chunked, with a length, or
    /// up to the connection's end); any other answer is collected (at most 1 MiB).
    mutating func readStreaming(
        deliver: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> HTTPTransport.Response {
        let (_, status, headers) = try readFinalHead()
        guard status == 200 else {
            // Not a stream: the error's body, as a plain read would collect it (the head is already consumed).
            var body = ByteBuffer()
            if headers[canonicalForm: "transfer-encoding"].contains(where: { $0.lowercased() == "chunked" }) {
                body = try readChunked(maxBody: 1 << 20)
            } else if let text = headers.first(name: "Content-Length"), let length = Int(text), length >= 0,
                length <= 1 << 20
            {
                try body.writeWithUnsafeMutableBytes(minimumWritableBytes: max(length, 1)) { raw in
                    try fill(UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]))
                    return length
                }
            }
            return HTTPTransport.Response(status: status, headers: headers, body: body)
        }
        let chunkSize = 1 << 20
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
        defer { scratch.deallocate() }
        // Up to `count` bytes (at least one): what is pending first, then what the socket has.
        func piece(atMost count: Int) throws -> Int {
            if !pending.isEmpty {
                let n = min(count, pending.count, chunkSize)
                pending.withUnsafeBytes { scratch.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                pending.removeFirst(n)
                return n
            }
            return try connection.receive(
                into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<min(count, chunkSize)]),
                waitAll: false,
                timeout: timeout
            )
        }
        // `count` bytes of the body, as they come; `short` says what a body that ends first is.
        func deliverExactly(_ count: Int, else short: String) throws {
            var left = count
            while left > 0 {
                let n = try piece(atMost: left)
                if n == 0 { throw SocketFailure(reason: short) }
                try deliver(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                left -= n
            }
        }
        if headers[canonicalForm: "transfer-encoding"].contains(where: { $0.lowercased() == "chunked" }) {
            while true {
                let size = try readChunkSize()
                if size == 0 { break }
                try deliverExactly(size, else: "the answer ended early")
                guard try readLine().isEmpty else { throw SocketFailure(reason: "bad chunked encoding in the answer") }
            }
        } else if let text = headers.first(name: "Content-Length") {
            guard let length = Int(text), length >= 0 else {
                throw SocketFailure(reason: "invalid Content-Length '\(text)'")
            }
            try deliverExactly(length, else: "the body ended early")
        } else {
            while true {
                let n = try piece(atMost: chunkSize)
                if n == 0 { break }
                try deliver(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
            }
        }
        return HTTPTransport.Response(status: status, headers: headers, body: ByteBuffer())
    }

    /// Fills `target` from what is pending, then from the socket.
    private mutating func fill(_ target: UnsafeMutableRawBufferPointer) throws {
        let first = min(pending.count, target.count)
        if first > 0 {
            pending.withUnsafeBytes { target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<first])) }
            pending.removeFirst(first)
        }
        var filled = first
        while filled < target.count {
            let n = try connection.receive(
                into: UnsafeMutableRawBufferPointer(rebasing: target[filled...]),
                waitAll: true,
                timeout: timeout
            )
            if n == 0 { throw SocketFailure(reason: "the body ended early") }
            filled += n
        }
    }

    /// Receives more bytes into `pending`; false at the end of the stream.
    private mutating func receiveMore() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        let n = try chunk.withUnsafeMutableBytes {
            try connection.receive(into: $0, waitAll: false, timeout: timeout)
        }
        if n == 0 { return false }
        receivedAny = true
        pending.append(contentsOf: chunk[0..<n])
        return true
    }

    /// The status line and headers.
    private mutating func readHead() throws -> (String, Int, HTTPHeaders) {
        var searchFrom = 0
        var end: Int?
        while end == nil {
            if pending.count >= 4 {
                for i in max(0, searchFrom - 3)...(pending.count - 4)
                where pending[i] == 13 && pending[i + 1] == 10 && pending[i + 2] == 13 && pending[i + 3] == 10 {
                    end = i
                    break
                }
                searchFrom = pending.count
            }
            if end != nil { break }
            guard pending.count < DirectHTTPClient.maxHeadSize else {
                throw SocketFailure(reason: "a response head over \(DirectHTTPClient.maxHeadSize) bytes")
            }
            let more: Bool
            do {
                more = try receiveMore()
            } catch var failure as SocketFailure {
                failure.closedBeforeAnswer = failure.closedBeforeAnswer && !receivedAny
                throw failure
            }
            guard more else {
                throw SocketFailure(
                    reason: receivedAny ? "the answer ended early" : "the connection was closed",
                    closedBeforeAnswer: !receivedAny
                )
            }
        }
        let headEnd = end!
        let text = String(decoding: pending[0..<headEnd], as: UTF8.self)
        pending.removeFirst(headEnd + 4)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]),
            (100..<600).contains(status)
        else {
            throw SocketFailure(reason: "not an HTTP/1.1 answer")
        }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, !line.first!.isWhitespace else {
                throw SocketFailure(reason: "a malformed header line in the answer")
            }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            headers.add(name: name, value: value)
        }
        return (String(statusLine[0]), status, headers)
    }

    /// A chunked body (RFC 9112 §7.1), trailers skipped.
    private mutating func readChunked(maxBody: Int) throws -> ByteBuffer {
        var body = ByteBuffer()
        while true {
            let size = try readChunkSize()
            if size == 0 { return body }
            guard size <= maxBody - body.readableBytes else {
                throw SocketFailure(reason: "a response body over \(maxBody) bytes")
            }
            try body.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
                try fill(UnsafeMutableRawBufferPointer(rebasing: raw[0..<size]))
                return size
            }
            guard try readLine().isEmpty else { throw SocketFailure(reason: "bad chunked encoding in the answer") }
        }
    }

    /// The head of the final answer: interim answers (100 Continue, 103 Early Hints, …) come before it; 101 switches
    /// protocols, which nothing here asks for.
    private mutating func readFinalHead() throws -> (String, Int, HTTPHeaders) {
        var head = try readHead()
        while (100..<200).contains(head.1) {
            guard head.1 != 101 else { throw SocketFailure(reason: "an unexpected 101 Switching Protocols") }
            head = try readHead()
        }
        return head
    }

    /// The size line of the next chunk; at the last chunk (0) its trailers are skipped too.
    private mutating func readChunkSize() throws -> Int {
        let line = try readLine()
        let sizeText = line.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        guard let size = Int(sizeText.trimmingCharacters(in: " \t"), radix: 16), size >= 0 else {
            throw SocketFailure(reason: "bad chunked encoding in the answer")
        }
        if size == 0 { while try !readLine().isEmpty {} }
        return size
    }

    private mutating func readLine() throws -> String {
        while true {
            if let lf = pending.firstIndex(of: 10) {
                var line = pending[0..<lf]
                if line.last == 13 { line = line.dropLast() }
                let text = String(decoding: line, as: UTF8.self)
                pending.removeFirst(lf + 1)
                return text
            }
            guard pending.count < 64 << 10 else { throw SocketFailure(reason: "bad chunked encoding in the answer") }
            guard try receiveMore() else { throw SocketFailure(reason: "the answer ended early") }
        }
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

/// Threads for blocking requests, started as needed up to `limit` and kept: a request never waits for another to
/// finish while fewer than `limit` are in flight.
final class ElasticThreads: Sendable {
    private struct Counts {
        var threads = 0
        var idle = 0
        var queued = 0
    }
    private let counts = Mutex(Counts())
    private let jobs = HandoffQueue<@Sendable () -> Void>(capacity: 4096)
    private let limit: Int
    private let name: String

    init(limit: Int, name: String) {
        self.limit = limit
        self.name = name
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let start = counts.withLock { c -> Bool in
                c.queued += 1
                guard c.queued > c.idle, c.threads < limit else { return false }
                c.threads += 1
                return true
            }
            if start {
                DedicatedThread.start(name: name) { [self] in
                    while true {
                        counts.withLock { $0.idle += 1 }
                        let job = try? jobs.popBlocking()
                        counts.withLock {
                            $0.idle -= 1
                            $0.queued -= 1
                        }
                        guard let job else { return }
                        job()
                    }
                }
            }
            do {
                try jobs.pushBlocking { continuation.resume(with: Result { try body() }) }
            } catch {
                counts.withLock { $0.queued -= 1 }
                continuation.resume(throwing: error)
            }
        }
    }
}
