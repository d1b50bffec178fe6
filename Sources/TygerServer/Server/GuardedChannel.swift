import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// A TCP child channel (plain HTTP/1 or TLS) behind a ``ConnectionGuard`` and the idle and request-head deadlines of
/// ``ConnectionLimits``.
///
/// Setup admits the connection (and closes it once set up when the limits say so), then puts a byte watcher at the
/// front of the pipeline and ``ConnectionDeadlineHandler`` after the HTTP decoder.
struct GuardedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let connections: ConnectionGuard

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // A refused connection is set up all the same and closed at the end: failing the setup would leave the
        // accept loop waiting for it.
        let admitted = connections.admit(channel)
        let deadlines = ConnectionDeadlineHandler(limits: connections.limits)
        do {
            try LargeReads.configure(channel)
            try channel.pipeline.syncOperations.addHandler(ConnectionBytesWatcher(deadlines), position: .first)
        } catch {
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
        // Setup runs on the channel's event loop, and so does the continuation.
        return base.setup(channel: channel, logger: logger).assumeIsolated().flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let state = try operations.context(handlerType: HTTPConnectionStateHandler.self)
            try operations.addHandler(deadlines, position: .before(state.handler))
            if !admitted {
                logger.debug("connection refused: the connection cap is reached")
                channel.close(promise: nil)
            }
            return value
        }.nonisolated()
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Closes a connection that sits idle between requests longer than the idle timeout, or whose request head takes
/// longer than the header timeout (from the accept for the first request, from the first byte for later ones).
///
/// Runs on the connection's event loop only; ``ConnectionBytesWatcher`` tells it when bytes arrive.
final class ConnectionDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let idleTimeout: TimeAmount
    private let headerTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var requestsInProgress = 0
    /// Whether the header clock runs: a head is awaited and (after the first request) a byte of it has arrived.
    private var awaitingHead = true

    init(limits: ConnectionLimits) {
        idleTimeout = TimeAmount(limits.idleTimeout)
        headerTimeout = TimeAmount(limits.headerTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The first request head is due within the header timeout of the accept.
        if requestsInProgress == 0 { schedule(headerTimeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    /// Bytes arrived: between requests, they start the header clock.
    func bytesArrived() {
        guard requestsInProgress == 0, !awaitingHead else { return }
        awaitingHead = true
        schedule(headerTimeout)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            requestsInProgress += 1
            awaitingHead = false
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            requestsInProgress = max(0, requestsInProgress - 1)
            if requestsInProgress == 0 {
                awaitingHead = false
                schedule(idleTimeout)
            }
        }
        context.write(data, promise: promise)
    }

    private func schedule(_ delay: TimeAmount) {
        timer?.cancel()
        guard let context else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            guard let self, self.requestsInProgress == 0 else { return }
            self.timer = nil
            self.context?.close(promise: nil)
        }
    }
}

/// Sits at the front of a connection's pipeline and reports raw bytes to the ``ConnectionDeadlineHandler``.
final class ConnectionBytesWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let deadlines: ConnectionDeadlineHandler

    init(_ deadlines: ConnectionDeadlineHandler) { self.deadlines = deadlines }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadlines.bytesArrived()
        context.fireChannelRead(data)
    }
}
