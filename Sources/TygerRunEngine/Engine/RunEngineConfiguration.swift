/// Settings of a `RunEngine`.
public struct RunEngineConfiguration: Sendable {
    /// Where run directories (`runs/<id>`, 0700, with the FIFOs) and logs (`logs/<id>.log`) live.
    public var dataDirectory: String
    /// How long processes get between SIGTERM and SIGKILL when a run is canceled or times out. Default 5 s.
    public var terminationGrace: Duration = .seconds(5)
    /// How often Pending runs are checked against their timeout. Default 1 s.
    public var pendingSweepInterval: Duration = .seconds(1)
    /// Options of the writes from output FIFOs into buffers (flush interval 1 s, as upstream's sidecar).
    public var writeOptions: TransferWriteOptions = .init()
    /// How long the buffers a run creates are kept after the run ends, when its `job.bufferTtl` does not say;
    /// `nil` keeps them forever (upstream's behaviour). Default 24 h. Until the run ends they expire at
    /// creation + `timeoutSeconds` + this, a bound the run cannot outlive (it also holds when the server restarts).
    public var runBufferTTL: Duration? = .seconds(86_400)
    /// With servers sharing a database (``RunCoordination``): how often this server shows it is alive. Default 5 s.
    public var heartbeatInterval: Duration = .seconds(5)
    /// With servers sharing a database: how long a server may go without a heartbeat before another server takes
    /// over its runs (and fails them). Default 30 s.
    public var ownerLease: Duration = .seconds(30)
    /// With servers sharing a database: this server's TCP endpoint once its listener is bound, which it tells the
    /// others (they send the relays of its runs' ephemeral buffers there).
    public var advertisedEndpoint: @Sendable () -> String? = { nil }
    /// With servers sharing a database: how often this server looks for cancel requests made on other servers.
    /// Default 500 ms.
    public var cancelPollInterval: Duration = .milliseconds(500)
    /// With servers sharing a database whose notices reach this server (PostgreSQL's `LISTEN`): how often the loops
    /// woken by them (cancel requests, run states and logs of other servers' runs) also look, in case a notice was
    /// lost. Default 5 s.
    public var notifiedPollInterval: Duration = .seconds(5)

    /// For an executor that moves its own buffers: a signed access URL of a buffer (its ID; writeable; how long it
    /// must stay valid) on a listener the executor's machines reach. `nil`: such executors cannot run.
    public var bufferAccessURL: (@Sendable (String, Bool, Duration) async throws -> String)?
    /// For an executor that moves its own buffers: the signed base URL where a run's processes report (the run's
    /// ID; how long it must stay valid). `nil`: such executors cannot run.
    public var agentReportURL: (@Sendable (Int64, Duration) throws -> String)?

    /// For an executor that moves its own buffers: the longest its signed URLs last (the signer's bound, 24 h);
    /// the agent of a longer run renews them before they expire.
    public var remoteAccessLifetime: Duration = .seconds(24 * 3600)

    /// Settings with defaults.
    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }
}

/// The subset of the data path's write options the engine lets callers set.
public struct TransferWriteOptions: Sendable {
    /// Bytes per blob. Default 4 MiB.
    public var blockSize = 4 << 20
    /// Concurrent blob puts. Default 16.
    public var dop = 16
    /// Partial-block flush interval. Default 1 s.
    public var flushInterval: Duration? = .seconds(1)

    public init() {}
}
