import NIOCore
import NIOHTTP1
import Testing

@testable import TygerClient

#if canImport(Glibc)
import Glibc
#endif

/// Failed requests say which server could not be reached and why, in words (no NIO type names).
struct TransportFailureTests {
    @Test func connectionFailuresNameTheServerAndTheReason() throws {
        let tcp = try ServiceURL("http://127.0.0.1:1/buffers/b?api-version=1.0")
        let refused = HTTPTransport.transportFailure(.GET, tcp, IOError(errnoCode: ECONNREFUSED, reason: "connect"))
        #expect(refused.code == .transport)
        #expect(refused.message == "cannot reach http://127.0.0.1:1: connection refused")
        let socket = try ServiceURL("http+unix:///run/tyger/api.sock:/buffers/b")
        let missing = HTTPTransport.transportFailure(.GET, socket, IOError(errnoCode: ENOENT, reason: "connect"))
        #expect(missing.message == "cannot reach http+unix:///run/tyger/api.sock: no such file or directory")
        let timedOut = HTTPTransport.transportFailure(.GET, tcp, ChannelError.connectTimeout(.seconds(10)))
        #expect(timedOut.message == "cannot reach http://127.0.0.1:1: connection timed out")
    }

    @Test func failuresAfterConnectingNameTheRequest() throws {
        let url = try ServiceURL("http://127.0.0.1:8080/containers/b?sig=secret")
        let closed = HTTPTransport.transportFailure(.PUT, url, ChannelError.eof)
        #expect(closed.message.hasPrefix("PUT http://127.0.0.1:8080/containers/b?sig="))
        #expect(closed.message.hasSuffix(": the connection was closed"), "\(closed.message)")
        #expect(!closed.message.contains("secret"), "signatures stay out of messages")
    }
}
