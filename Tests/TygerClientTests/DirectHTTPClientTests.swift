import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TygerCore
import TygerTestSupport

@testable import TygerClient

#if canImport(Glibc)
import Glibc
#endif

/// A TCP server on 127.0.0.1 that answers each request with bytes the test scripts, byte for byte: chunked
/// bodies, bodies ended by the close, stalls and closes at chosen points, which a well-behaved HTTP server never
/// sends on demand.
final class ScriptedServer: Sendable {
    /// What to do with request number `n` (0-based, across connections): the raw answer, and whether to close the
    /// connection after it. `nil` bytes: stall (neither answer nor close) until the server stops.
    struct Step: Sendable {
        var answer: [UInt8]?
        var close = false
        /// Answer as soon as the head is in, without reading the body, then close (a refusal).
        var beforeBody = false
    }

    struct Seen: Sendable {
        var head: String
        var body: [UInt8]
        var connection: Int
    }

    let port: Int
    private let listener: Int32
    private let script: @Sendable (Int) -> Step
    private let seen = Mutex<[Seen]>([])
    private let connections = Mutex(0)
    private let stopped = Atomic(false)
    private let open = Mutex<[Int32]>([])

    var requests: [Seen] { seen.withLock { $0 } }
    var connectionCount: Int { connections.withLock { $0 } }
    var url: String { "http://127.0.0.1:\(port)" }

    init(_ script: @escaping @Sendable (Int) -> Step) throws {
        self.script = script
        // Close-on-exec, as every socket of the accepted connections: other tests of this process start child
        // processes, and a connection a child inherited stays open after this server closes it (its client then
        // waited for an answer that never came instead of seeing the close).
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        listen(fd, 16)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .sequentiallyConsistent)
        shutdown(listener, Int32(SHUT_RDWR))
        open.withLock { fds in
            for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !stopped.load(ordering: .sequentiallyConsistent) {
            let fd = accept(listener, nil, nil)
            // Other tests in this process start child processes: a signal may interrupt the call.
            if fd < 0 && (errno == EINTR || errno == ECONNABORTED) { continue }
            if fd < 0 { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // (Glibc's module has no accept4)
            let number = connections.withLock {
                $0 += 1
                return $0
            }
            open.withLock { $0.append(fd) }
            Thread { [self] in serve(fd, connection: number) }.start()
        }
    }

    private func serve(_ fd: Int32, connection: Int) {
        // Closed under the lock that `stop` shuts connections down with: tests run in parallel in one process, and
        // a descriptor number, once closed, is soon another test's socket.
        defer {
            open.withLock { fds in
                fds.removeAll { $0 == fd }
                shutdown(fd, Int32(SHUT_RDWR))  // the connection ends even if a copy of the descriptor lives on
                close(fd)
            }
        }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        func receive() -> Bool {
            var n: Int
            repeat {
                n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            } while n < 0 && errno == EINTR
            if n <= 0 { return false }
            pending += chunk[0..<n]
            return true
        }
        while true {
            var headEnd: Int?
            while headEnd == nil {
                if let range = pending.firstRange(of: [13, 10, 13, 10]) {
                    headEnd = range.lowerBound
                } else if !receive() {
                    return
                }
            }
            let head = String(decoding: pending[0..<headEnd!], as: UTF8.self)
            pending.removeFirst(headEnd! + 4)
            let n = seen.withLock { $0.count }
            let step = script(n)
            var body: [UInt8] = []
            if !step.beforeBody {
                if head.lowercased().contains("\r\ntransfer-encoding: chunked") {
                    // Chunks until the last (0), no extensions or trailers (the client sends none).
                    while true {
                        var lineEnd: Int?
                        while lineEnd == nil {
                            if let range = pending.firstRange(of: [13, 10]) {
                                lineEnd = range.lowerBound
                            } else if !receive() {
                                return
                            }
                        }
                        let size = Int(String(decoding: pending[0..<lineEnd!], as: UTF8.self), radix: 16) ?? -1
                        pending.removeFirst(lineEnd! + 2)
                        guard size >= 0 else { return }
                        while pending.count < size + 2 { if !receive() { return } }
                        body += pending[0..<size]
                        pending.removeFirst(size + 2)
                        if size == 0 { break }
                    }
                } else {
                    let length =
                        head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                        .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                    while pending.count < length { if !receive() { return } }
                    body = Array(pending[0..<length])
                    pending.removeFirst(length)
                }
            }
            seen.withLock { $0.append(Seen(head: head, body: body, connection: connection)) }
            guard let answer = step.answer else {
                while !stopped.load(ordering: .sequentiallyConsistent) { usleep(10_000) }
                return
            }
            var sent = 0
            while sent < answer.count {
                let n = answer.withUnsafeBytes {
                    send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
                }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                sent += n
            }
            if step.close || step.beforeBody { return }
        }
    }
}

extension ScriptedServer.Step {
    /// An answer with a `Content-Length`.
    static func ok(_ body: String, headers: String = "", close: Bool = false) -> Self {
        Self(
            answer: Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\(headers)\r\n\(body)".utf8),
            close: close
        )
    }
}

@Suite(.timeLimit(.minutes(3)))
struct DirectHTTPClientTests {
    func withScripted<T>(
        _ script: @escaping @Sendable (Int) -> ScriptedServer.Step,
        _ body: (ScriptedServer) async throws -> T
    ) async throws -> T {
        let server = try ScriptedServer(script)
        defer { server.stop() }
        return try await body(server)
    }

    @Test func keptAliveConnectionsCarryTheNextRequestAndChunkedBodiesAreJoined() async throws {
        let client = DirectHTTPClient()
        try await withScripted({ n in
            n == 0
                ? .init(
                    answer: Array(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nT: x\r\n\r\n"
                            .utf8
                    )
                ) : .ok("second")
        }) { server in
            let url = try ServiceURL(server.url + "/a?x=1")
            let first = try await client.send(.GET, url, headers: [:], body: nil)
            #expect(first.status == 200 && first.text == "hello world")
            let second = try await client.send(.GET, url, headers: [:], body: nil)
            #expect(second.text == "second")
            #expect(server.connectionCount == 1)
            #expect(server.requests.first?.head.hasPrefix("GET /a?x=1 HTTP/1.1\r\nHost: 127.0.0.1:") == true)
        }
    }

    @Test func connectionCloseAndCloseDelimitedBodiesOpenANewConnection() async throws {
        let client = DirectHTTPClient()
        try await withScripted({ n in
            switch n {
            case 0: .ok("one", headers: "Connection: close\r\n")
            case 1: .init(answer: Array("HTTP/1.1 200 OK\r\n\r\nuntil the end".utf8), close: true)
            default: .ok("three")
            }
        }) { server in
            let url = try ServiceURL(server.url + "/")
            #expect(try await client.send(.GET, url, headers: [:], body: nil).text == "one")
            #expect(try await client.send(.GET, url, headers: [:], body: nil).text == "until the end")
            #expect(try await client.send(.GET, url, headers: [:], body: nil).text == "three")
            #expect(server.connectionCount == 3)
        }
    }

    @Test func anIdleConnectionTheServerClosedIsNotUsed() async throws {
        let client = DirectHTTPClient()
        // The server answers and then closes without saying so: the client must notice before sending again.
        try await withScripted({ _ in .ok("x", close: true) }) { server in
            let url = try ServiceURL(server.url + "/")
            for _ in 0..<3 {
                #expect(try await client.send(.GET, url, headers: [:], body: nil).text == "x")
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(server.connectionCount == 3)
        }
    }

    /// A kept-alive connection closed without an answer is tried once more on a new connection for a GET, never for
    /// a PUT (whose repeat the caller decides on).
    @Test func aKeptConnectionClosedBeforeTheAnswerIsRetriedOnlyForReads() async throws {
        // A bounded wait: a request the server never answers fails the test instead of holding it up.
        let client = DirectHTTPClient(ioTimeout: .seconds(20))
        try await withScripted({ n in
            switch n {
            case 1, 4: .init(answer: [], close: true)
            default: .ok("answer \(n)")
            }
        }) { server in
            let url = try ServiceURL(server.url + "/")
            #expect(try await client.send(.GET, url, headers: [:], body: nil).text == "answer 0")
            #expect(try await client.send(.GET, url, headers: [:], body: nil).text == "answer 2")
            #expect(server.connectionCount == 2)
            #expect(server.requests.map(\.connection) == [1, 1, 2])
            #expect(try await client.send(.PUT, url, headers: [:], body: nil).text == "answer 3")
            let error = await #expect(throws: TygerClientError.self) {
                try await client.send(.PUT, url, headers: [:], body: nil)
            }
            #expect(error?.closedBeforeAnswer == true)
            #expect(server.requests.count == 5, "the PUT was sent again")
        }
    }

    @Test func bodiesGoUpIntactAndDownloadsLandInMemoryOfTheirLength() async throws {
        let big = Payload.random(count: 5 << 20, seed: 214)
        let client = DirectHTTPClient()
        try await withScripted({ n in
            n == 0
                ? .ok("stored")
                : .init(
                    answer: Array("HTTP/1.1 200 OK\r\nContent-Length: \(big.count)\r\nx-ms-meta-a: b\r\n\r\n".utf8)
                        + big
                )
        }) { server in
            let url = try ServiceURL(server.url + "/containers/c/blob")
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: big.count, alignment: 16)
            defer { copy.deallocate() }
            copy.copyBytes(from: big)
            let put = try await client.send(
                .PUT,
                url,
                headers: ["If-None-Match": "*"],
                body: UnsafeRawBufferPointer(copy)
            )
            #expect(put.text == "stored")
            #expect(server.requests.first?.body == big)
            #expect(
                server.requests.first?.head.split(separator: "\r\n").contains("Content-Length: \(big.count)") == true
            )
            let answer = try await client.download(url, headers: [:])
            let received = try #require(answer.received)
            defer { received.memory.deallocate() }
            #expect(received.count == big.count)
            #expect(Array(UnsafeRawBufferPointer(rebasing: received.memory[0..<received.count])) == big)
            #expect(answer.headers.first(name: "X-Ms-Meta-A") == "b")
        }
    }

    @Test func anAnswerThatStopsShortOrNeverComesIsATransportError() async throws {
        // Long enough that a loaded machine's scheduling never turns the short answer into a stall.
        let client = DirectHTTPClient(ioTimeout: .seconds(3))
        try await withScripted({ n in
            switch n {
            case 0: .init(answer: Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".utf8), close: true)
            case 1: .init(answer: nil)
            default: .init(answer: Array("garbage\r\n\r\n".utf8), close: true)
            }
        }) { server in
            let url = try ServiceURL(server.url + "/")
            for expected in ["the body ended early", "no answer in time", "not an HTTP/1.1 answer"] {
                do {
                    _ = try await client.download(url, headers: [:])
                    Issue.record("no error, expected '\(expected)'")
                } catch let error as TygerClientError {
                    #expect(error.code == .transport)
                    #expect(
                        error.message.hasSuffix(expected),
                        "\(error.message) \(server.requests.count) \(server.connectionCount)"
                    )
                }
            }
        }
    }

    /// Interim answers are skipped; sizes no blob has (a `Content-Length` near `Int.max`, a chunk size that would
    /// overflow the total) are transport errors, not a hang or a crash.
    @Test func interimAnswersAreSkippedAndImpossibleSizesRefused() async throws {
        let client = DirectHTTPClient()
        try await withScripted({ n in
            switch n {
            case 0:
                .init(
                    answer: Array(
                        "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                            .utf8
                    )
                )
            case 1: .init(answer: Array("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n".utf8))
            default:
                .init(
                    answer: Array(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n7fffffffffffffff\r\n".utf8
                    )
                )
            }
        }) { server in
            let url = try ServiceURL(server.url + "/")
            #expect(try await client.send(.GET, url, headers: [:], body: nil).text == "ok")
            for _ in 0..<2 {
                do {
                    _ = try await client.download(url, headers: [:])
                    Issue.record("no error")
                } catch let error as TygerClientError {
                    #expect(error.code == .transport && error.message.contains("a response body"), "\(error.message)")
                }
            }
        }
    }

    @Test func aServerThatClosesWithoutAnsweringIsSaidToHaveClosed() async throws {
        let client = DirectHTTPClient()
        try await withScripted({ _ in .init(answer: [], close: true) }) { server in
            do {
                _ = try await client.send(.GET, try ServiceURL(server.url + "/"), headers: [:], body: nil)
                Issue.record("no error")
            } catch let error as TygerClientError {
                #expect(error.closedBeforeAnswer)
                #expect(error.message.hasSuffix("the connection was closed"))
            }
        }
    }

    @Test func cancellingEndsABlockedRequestAtOnce() async throws {
        let client = DirectHTTPClient()
        try await withScripted({ _ in .init(answer: nil) }) { server in
            let url = try ServiceURL(server.url + "/")
            let task = Task { try await client.send(.GET, url, headers: [:], body: nil) }
            while server.requests.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            let start = ContinuousClock.now
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            // Far below the 100 s a blocked receive would wait without the cancellation (the bound is wide: the
            // task resumes on a cooperative thread, which a full parallel test run keeps busy).
            #expect(ContinuousClock.now - start < .seconds(30))
        }
    }

    /// The relays' streams: a chunked upload fed piece by piece, downloads handed over as they arrive in each body
    /// framing, a refusal sent before the body was read, an error answer's body, a cancelled stream.
    @Test func streamedUploadsAreChunkedAndDownloadsDeliverEveryFraming() async throws {
        let client = DirectHTTPClient()
        let pieces = [
            Payload.random(count: (1 << 20) + 1, seed: 1), Array("x".utf8), Payload.random(count: 300, seed: 2),
        ]
        let whole = pieces.flatMap { $0 }
        let chunked =
            Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            + Array("3;e=1\r\nabc\r\n".utf8) + Array("1000\r\n".utf8) + whole[0..<4096]
            + Array("\r\n0\r\nT: x\r\n\r\n".utf8)
        try await withScripted({ n in
            switch n {
            case 0: .init(answer: Array("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".utf8))
            case 1: .init(answer: chunked)
            case 2: .init(answer: Array("HTTP/1.1 200 OK\r\nContent-Length: \(whole.count)\r\n\r\n".utf8) + whole)
            case 3: .init(answer: Array("HTTP/1.1 200 OK\r\n\r\n".utf8) + whole, close: true)
            case 4:
                .init(answer: Array("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot there".utf8), close: true)
            default:
                .init(
                    answer: Array("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 6\r\n\r\nno way".utf8),
                    beforeBody: true
                )
            }
        }) { server in
            let url = try ServiceURL(server.url + "/relay/r?sig=x")
            let queue = Mutex(pieces.map { ByteBuffer(bytes: $0) })
            let put = try await client.streamUpload(url, headers: ["x-ms-version": "2021-08-06"]) {
                queue.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            }
            #expect(put.status == 202)
            let request = try #require(server.requests.first)
            #expect(request.body == whole)
            let lines = request.head.split(separator: "\r\n")
            #expect(lines.contains("Transfer-Encoding: chunked") && !lines.contains { $0.hasPrefix("Content-Length") })

            func download() async throws -> (HTTPTransport.Response, [UInt8]) {
                let received = Mutex<[UInt8]>([])
                let answer = try await client.streamDownload(url, headers: [:]) { bytes in
                    received.withLock { $0 += bytes }
                }
                return (answer, received.withLock { $0 })
            }
            let (first, chunks) = try await download()
            #expect(first.status == 200 && chunks == Array("abc".utf8) + whole[0..<4096])
            let (second, sized) = try await download()
            #expect(second.status == 200 && sized == whole)
            let (third, untilClose) = try await download()
            #expect(third.status == 200 && untilClose == whole)
            let (missing, nothing) = try await download()
            #expect(missing.status == 404 && missing.text == "not there" && nothing.isEmpty)

            // Refused once the head was in: the answer is read even though the body could not all be sent.
            let endless = Payload.random(count: 1 << 20, seed: 3)
            let refused = try await client.streamUpload(url, headers: [:]) { ByteBuffer(bytes: endless) }
            #expect(refused.status == 405 && refused.text == "no way")
        }
        // A stream the server never answers ends at once when its task is cancelled.
        try await withScripted({ _ in .init(answer: nil) }) { server in
            let url = try ServiceURL(server.url + "/relay/r")
            let task = Task { try await client.streamDownload(url, headers: [:]) { _ in } }
            while server.requests.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
        }
    }

    @Test func lineBreaksInTheHeadAreRefusedBeforeAnythingIsSent() async throws {
        let client = DirectHTTPClient()
        try await withScripted({ _ in .ok("x") }) { server in
            await #expect(throws: TygerClientError.self) {
                _ = try await client.send(
                    .GET,
                    try ServiceURL(server.url + "/"),
                    headers: ["x-ms-meta-a": "b\r\nInjected: yes"],
                    body: nil
                )
            }
            #expect(server.requests.isEmpty)
        }
    }

    @Test func anUnreachableServerIsNamedWithTheReason() async throws {
        // A port bound but not listening refuses connections, and stays ours while the test runs (a port freed by a
        // stopped server went to another test's server in a parallel run once, which then got this connection).
        let socket = try LoopbackSocket(listening: false)
        defer { socket.close() }
        let port = socket.port
        do {
            _ = try await DirectHTTPClient().send(
                .GET,
                try ServiceURL("http://127.0.0.1:\(port)/"),
                headers: [:],
                body: nil
            )
            Issue.record("no error")
        } catch let error as TygerClientError {
            #expect(error.message == "cannot reach http://127.0.0.1:\(port): connection refused")
        }
    }
}
