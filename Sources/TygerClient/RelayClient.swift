import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import TygerCore
public import TygerIO

/// The client side of ephemeral buffers: streams bytes to (`PUT`) or from (`GET`) a run's relay URL
/// (`…/relay/<id>?…&relay=true`). Nothing is stored and nothing is retried: the relay can be read once.
public struct RelayClient: Sendable {
    public let url: ServiceURL
    public let transport: HTTPTransport

    public init(url: ServiceURL, transport: HTTPTransport) {
        self.url = url
        self.transport = transport
    }

    /// Whether an access URL is a relay URL.
    public static func isRelay(_ url: ServiceURL) -> Bool {
        url.query.split(separator: "&").contains("relay=true")
    }

    /// Streams everything `source` yields into the relay; returns the byte count.
    ///
    /// - Throws: `TygerClientError` when the server refuses (`405`: an output buffer) or the connection fails.
    public func write(from source: any ByteSource, bytesMoved: LockedCounter? = nil) async throws -> Int64 {
        let queue = HandoffQueue<ByteBuffer>(capacity: 8)
        let total = LockedCounter()
        DedicatedThread.start(name: "tyger-relay-read") {
            let allocator = ByteBufferAllocator()
            do {
                while true {
                    var buffer = allocator.buffer(capacity: 1 << 20)
                    var outcome = ReadOutcome.endOfStream
                    _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { raw in
                        outcome = try source.read(into: raw, waitAtMost: nil)
                        if case .bytes(let n) = outcome { return n }
                        return 0
                    }
                    guard case .bytes(let n) = outcome else { break }
                    total.add(Int64(n))
                    bytesMoved?.add(Int64(n))
                    try queue.pushBlocking(buffer)
                }
                queue.close()
            } catch {
                queue.fail(error)
            }
        }
        if DirectHTTPClient.serves(url) {
            // Plain HTTP: sent by a thread of its own from the reader's buffers, in chunks of up to 1 MiB.
            let response: HTTPTransport.Response
            do {
                // A cancel must also wake the sending thread where it waits for the reader's next buffer.
                response = try await withTaskCancellationHandler {
                    try await DirectHTTPClient.shared.streamUpload(
                        url,
                        headers: ["x-ms-version": "2021-08-06"]
                    ) { try queue.popBlocking() }
                } onCancel: {
                    queue.fail(CancellationError())
                }
            } catch {
                queue.fail(error)
                if error is CancellationError { throw error }
                throw (error as? TygerClientError) ?? HTTPTransport.transportFailure(.PUT, url, error)
            }
            guard (200..<300).contains(response.status) else {
                queue.fail(CancellationError())
                throw ControlPlaneClient.error(from: response)
            }
            return total.value
        }
        var request = HTTPClientRequest(url: try HTTPTransport.clientURL(url))
        request.method = .PUT
        request.headers.add(name: "x-ms-version", value: "2021-08-06")
        request.body = .stream(QueueSequence(queue: queue), length: .unknown)
        let response: HTTPClientResponse
        do {
            response = try await transport.client.execute(request, timeout: .hours(24 * 365))
        } catch {
            queue.fail(error)
            throw HTTPTransport.transportFailure(.PUT, url, error)
        }
        let body = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(Int(response.status.code)) else {
            queue.fail(CancellationError())
            throw ControlPlaneClient.error(
                from: HTTPTransport.Response(status: Int(response.status.code), headers: response.headers, body: body)
            )
        }
        return total.value
    }

    /// Streams the relay into `sink`; returns the byte count.
    public func read(to sink: any ByteSink, bytesMoved: LockedCounter? = nil) async throws -> Int64 {
        if DirectHTTPClient.serves(url) {
            // Plain HTTP: received and written to the sink by one thread, piece by piece as it arrives.
            let counter = bytesMoved ?? LockedCounter()
            let start = counter.value
            let response: HTTPTransport.Response
            do {
                response = try await DirectHTTPClient.shared.streamDownload(
                    url,
                    headers: ["x-ms-version": "2021-08-06"]
                ) { bytes in
                    try sink.write(OutputChunk(bytes: bytes, immutablePages: false, owner: nil))
                    counter.add(Int64(bytes.count))
                }
            } catch {
                if error is CancellationError || error is TygerIOError { throw error }
                throw (error as? TygerClientError) ?? HTTPTransport.transportFailure(.GET, url, error)
            }
            guard response.status == 200 else { throw ControlPlaneClient.error(from: response) }
            try sink.finish()
            return counter.value - start
        }
        let output = HandoffQueue<OutputChunk>(capacity: 8)
        let counter = bytesMoved ?? LockedCounter()
        async let pumped = DedicatedThread.run(name: "tyger-relay-out") {
            try OutputPump.run(input: output, sink: sink, bytesWritten: counter)
        }
        do {
            var status = 0
            var errorBody = ByteBuffer()
            try await transport.stream(.GET, url, headers: ["x-ms-version": "2021-08-06"], head: { s, _ in status = s })
            { chunk in
                if status != 200 {
                    var c = chunk
                    errorBody.writeBuffer(&c)
                    return
                }
                let copy = CopiedBytes(chunk)
                try await output.push(OutputChunk(bytes: copy.bytes, immutablePages: false, owner: copy))
            }
            if status != 200 {
                throw ControlPlaneClient.error(
                    from: HTTPTransport.Response(status: status, headers: [:], body: errorBody)
                )
            }
            output.close()
        } catch {
            output.fail(error)
            _ = try? await pumped
            throw error
        }
        return try await pumped
    }
}

/// Bytes copied out of a ByteBuffer into memory the output thread may keep.
final class CopiedBytes: @unchecked Sendable {
    // @unchecked: written once in init, then only read.
    let memory: UnsafeMutableRawBufferPointer
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(memory) }
    init(_ buffer: ByteBuffer) {
        memory = .allocate(byteCount: max(buffer.readableBytes, 1), alignment: 16)
        buffer.withUnsafeReadableBytes { memory.copyMemory(from: $0) }
    }
    deinit { memory.deallocate() }
}

/// An AsyncSequence over a HandoffQueue, for streaming request bodies.
struct QueueSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let queue: HandoffQueue<ByteBuffer>
    func makeAsyncIterator() -> Iterator { Iterator(queue: queue) }
    struct Iterator: AsyncIteratorProtocol {
        let queue: HandoffQueue<ByteBuffer>
        mutating func next() async throws -> ByteBuffer? { try await queue.pop() }
    }
}
