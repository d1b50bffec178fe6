import Synchronization

/// A writer lease kept by a server, which runs out unless renewed: renewed every `interval` from a task of its own
/// until ``release()`` (or until the lease is dropped), then released once.
///
/// The HTTP data plane's leases, those of S3 buffers behind a server (client and server side) are all this one.
public final class RenewedWriterLease: WriterLease {
    private let renewal: Mutex<Task<Void, Never>?>
    private let letGo: @Sendable () async -> Void

    /// - Parameters:
    ///   - interval: The time between renewals (a quarter of the lease's life is usual).
    ///   - renew: One renewal; a failed one is left to the next (a lease that ran out makes the writer's next write
    ///     fail, which tells it).
    ///   - release: Lets go of the lease.
    public init(
        every interval: Duration,
        renew: @escaping @Sendable () async -> Void,
        release: @escaping @Sendable () async -> Void
    ) {
        renewal = Mutex(
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard !Task.isCancelled else { return }
                    await renew()
                }
            }
        )
        letGo = release
    }

    /// Stops renewing and lets go of the lease, once.
    public func release() async {
        guard
            let task = renewal.withLock({ t -> Task<Void, Never>? in
                defer { t = nil }
                return t
            })
        else { return }
        task.cancel()
        await letGo()
    }

    deinit { renewal.withLock { $0?.cancel() } }
}
