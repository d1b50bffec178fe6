import Foundation
import Logging
import ServiceLifecycle
import Testing
import TygerServer

/// A plain blocking TCP socket for tests that need bytes HTTP clients will not send: idle connections, partial
/// request heads, malformed chunked bodies, connections from a chosen loopback source address.
final class RawTCPConnection {
    let fd: Int32

    /// Connects to `127.0.0.1:port` from `source` (any 127.0.0.0/8 address; the port is picked by the kernel).
    init(port: Int, source: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var local = Self.address(source, port: 0)
        var remote = Self.address("127.0.0.1", port: port)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, connected == 0 else {
            let code = errno
            Glibc.close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }

    deinit { Glibc.close(fd) }

    private static func address(_ host: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        _ = inet_pton(AF_INET, host, &address.sin_addr)
        return address
    }

    /// Sends all of `text`; false when the peer has closed.
    @discardableResult
    func send(_ text: String) async -> Bool { await send(Array(text.utf8)) }

    /// Sends all of `bytes`; false when the peer has closed. Never blocks a thread: the server under test runs
    /// its handlers on the same cooperative pool as the test.
    @discardableResult
    func send(_ bytes: [UInt8]) async -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if n > 0 {
                offset += n
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                try? await Task.sleep(for: .milliseconds(2))
            } else {
                return false
            }
        }
        return true
    }

    /// One non-blocking receive: the bytes, `nil` at end of stream or on a reset, empty when nothing is there.
    private func receive() -> [UInt8]? {
        var scratch = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
        if n > 0 { return Array(scratch[..<n]) }
        if n < 0 && (errno == EAGAIN || errno == EINTR) { return [] }
        return nil
    }

    /// Whether the server has closed the connection (EOF or reset), waiting up to `timeout` for it; data that
    /// arrives meanwhile (a response) is discarded.
    func isClosed(within timeout: Duration = .zero) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            guard let bytes = receive() else { return true }
            if !bytes.isEmpty { continue }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Reads until the server closes or `needle` has arrived, for up to `timeout`.
    func read(until needle: String, timeout: Duration = .seconds(60)) async -> String {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        while ContinuousClock.now < deadline {
            guard let bytes = receive() else { break }
            if bytes.isEmpty {
                try? await Task.sleep(for: .milliseconds(5))
                continue
            }
            received += bytes
            if String(decoding: received, as: UTF8.self).contains(needle) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Sends a request and returns the response text up to the end of its head (and whatever body came with it).
    func request(_ text: String, timeout: Duration = .seconds(60)) async -> String {
        guard await send(text) else { return "" }
        return await read(until: "\r\n\r\n", timeout: timeout)
    }
}

/// Runs `body` against a live TCP server on 127.0.0.1 with `configure`d options, then shuts it down.
func withLiveTCPServer(
    dataDirectory: String,
    configure: (inout TygerServerConfiguration) -> Void = { _ in },
    _ body: (TygerServerApplication, Int) async throws -> Void
) async throws {
    var configuration = TygerServerConfiguration(dataDirectory: dataDirectory)
    configuration.unixSocket = false
    configuration.tcp = TCPListenerConfiguration(host: "127.0.0.1", port: 0)
    configuration.tokenStore = InMemoryTokenStore()
    configuration.controlPlane = [EchoControlPlane()]
    configure(&configuration)
    let (listening, continuation) = AsyncStream.makeStream(of: String.self)
    configuration.onListening = { continuation.yield($0) }
    let app = try TygerServerApplication(configuration: configuration)
    let logger = Logger(label: "test")
    let group = ServiceGroup(services: try app.makeServices(logger: logger), logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = listening.makeAsyncIterator()
        let endpoint = try #require(await iterator.next())
        let port = try #require(Int(endpoint.split(separator: ":").last ?? ""))
        do {
            try await body(app, port)
        } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}
