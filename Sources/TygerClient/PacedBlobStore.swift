import Synchronization
public import TygerCore
public import TygerStorage

/// How long one blob request may take.
public enum RequestTimeout: Sendable, Equatable {
    /// Follows the rate measured on the link: ``TransferPacer/adaptiveDeadline(bytes:inFlight:rate:)``.
    case adaptive
    /// Every request gets this long, whatever its size and the link (upstream's client: 100 s).
    case fixed(Duration)
}

/// Paces the blob requests of one transfer over a network store: how many are in flight, and how long each may
/// take (`docs/data-path.md`, "Adaptive transfers").
///
/// - **In flight.** A window of requests, at most the transfer's `dop`, that grows and shrinks with the throughput
///   achieved: it starts at 4 and doubles while the throughput rises by 10 % or more from one round to the next (a
///   round: as many completed requests as the window, and at least 250 ms), then climbs (``WindowClimber``): up while
///   a step gains 2 % or more, down while it loses less than 2 %. So it grows on a path where more requests in flight help and shrinks where they do not (a slow link, a
///   busy server), where fewer requests each finish sooner. A timeout halves it (once a round) and halves the rate.
/// - **Time.** With `.adaptive`, a request of `n` bytes with `k` in flight may take
///   `max(30 s, 4 · n · k / rate)` (the rate: an average of the rounds' throughput), plus the wait of a long poll,
///   doubled for each attempt after a timeout; before the first round is measured only the client's no-progress guard
///   applies (a send or receive that moves nothing for 100 s). The time covers the store's own retries of the request
///   (after a 500 or 503). With `.fixed(d)` every attempt may take `d`. A request that times out is sent again, up to
///   ``attempts`` times in all.
public final class TransferPacer: Sendable {
    public let timeout: RequestTimeout
    public let maxInFlight: Int
    /// The most attempts of one request that times out.
    public let attempts = 3
    /// The window a transfer starts with (or `maxInFlight`, when smaller).
    public static let initialWindow = 4
    /// The shortest adaptive deadline (30 s; tests give shorter ones).
    public let minimumDeadline: Duration

    private struct State {
        var climber: WindowClimber
        var inFlight = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    public init(timeout: RequestTimeout = .adaptive, maxInFlight: Int, minimumDeadline: Duration = .seconds(30)) {
        self.timeout = timeout
        self.maxInFlight = max(1, maxInFlight)
        self.minimumDeadline = minimumDeadline
        state = Mutex(State(climber: WindowClimber(maxWindow: max(1, maxInFlight), now: .now)))
    }

    /// The window now (requests allowed in flight).
    public var window: Int { state.withLock { $0.climber.window } }
    /// The measured throughput in bytes per second, once a round was measured.
    public var rate: Double? { state.withLock { $0.climber.rate } }
    /// The requests that timed out so far.
    public var timeouts: Int { state.withLock { $0.climber.timeouts } }

    /// The adaptive deadline of a request of `bytes` with `inFlight` requests sharing `rate` bytes per second, at
    /// least `minimum`.
    public static func adaptiveDeadline(
        bytes: Int,
        inFlight: Int,
        rate: Double,
        minimum: Duration = .seconds(30)
    ) -> Duration {
        let seconds = 4 * Double(max(bytes, 1)) * Double(max(inFlight, 1)) / max(rate, 1)
        return max(minimum, .milliseconds(Int64(min(seconds, 86_400) * 1000)))
    }

    /// Runs one request of about `bytes` (a long poll's `wait` added to its deadline), in the window, timed out and
    /// sent again as the policy says.
    ///
    /// - Throws: `TygerClientError` `.transport` when every attempt timed out; what `request` throws.
    func perform<T: Sendable>(
        _ what: String,
        bytes: Int,
        wait: Duration = .zero,
        moved: @Sendable (T, Duration) -> Int = { _, _ in -1 },
        _ request: @escaping @Sendable (_ attempt: Int) async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            await acquire()
            let deadline = state.withLock { s -> Duration? in
                switch timeout {
                case .fixed(let d): d + wait
                case .adaptive:
                    s.climber.rate.map {
                        let base = Self.adaptiveDeadline(
                            bytes: bytes,
                            inFlight: s.inFlight,
                            rate: $0,
                            minimum: minimumDeadline
                        )
                        return base * (1 << (attempt - 1)) + wait
                    }
                }
            }
            let started = ContinuousClock.now
            let outcome: T?
            do {
                let current = attempt
                outcome = try await Self.within(deadline) { try await request(current) }
            } catch {
                release(bytes: 0, timedOut: false)
                throw error
            }
            if let outcome {
                let count = moved(outcome, ContinuousClock.now - started)
                release(bytes: Int64(count < 0 ? bytes : count), timedOut: false)
                return outcome
            }
            release(bytes: 0, timedOut: true)
            let elapsed = ContinuousClock.now - started
            guard attempt < attempts else {
                throw TygerClientError(
                    .transport,
                    "\(what): no answer within \(Self.describe(deadline ?? elapsed)) (the request timeout), "
                        + "\(attempts) times"
                )
            }
            attempt += 1
            try await Task.sleep(for: .milliseconds(100 * (1 << (attempt - 1))))
        }
    }

    static func describe(_ d: Duration) -> String {
        let tenths = Int64((seconds(d) * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
    }

    /// `body`'s result, or `nil` when `deadline` passed first (then `body` is cancelled: the clients shut the
    /// request's socket down).
    private static func within<T: Sendable>(
        _ deadline: Duration?,
        _ body: @escaping @Sendable () async throws -> T
    )
        async throws -> T?
    {
        guard let deadline else { return try await body() }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: deadline)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { s -> Bool in
                if s.inFlight < s.climber.window {
                    s.inFlight += 1
                    return true
                }
                s.waiters.append(continuation)
                return false
            }
            if admitted { continuation.resume() }
        }
    }

    /// Ends a request: its bytes count towards the round; a round's end moves the window.
    private func release(bytes: Int64, timedOut: Bool) {
        let wake = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.inFlight -= 1
            if timedOut {
                s.climber.timedOut(at: .now)
            } else if bytes > 0 {
                s.climber.completed(bytes: bytes, at: .now)
            }
            var wake: [CheckedContinuation<Void, Never>] = []
            while s.inFlight < s.climber.window, !s.waiters.isEmpty {
                s.inFlight += 1
                wake.append(s.waiters.removeFirst())
            }
            return wake
        }
        for continuation in wake { continuation.resume() }
    }
}

/// The rule that moves a ``TransferPacer``'s window, apart from the requests and the clock (the times are given), so
/// that it can be followed step by step: rounds of completed requests, slow start, the climb, timeouts.
public struct WindowClimber: Sendable {
    /// Requests allowed in flight.
    public private(set) var window: Int
    public let maxWindow: Int
    /// The smoothed throughput of the rounds, bytes per second; `nil` before the first round.
    public private(set) var rate: Double?
    /// Timeouts so far.
    public private(set) var timeouts = 0
    /// The shortest round.
    public static let minimumRound: Duration = .milliseconds(250)

    private var slowStart = true
    private var direction = 1
    /// The smoothed rate before the last round: what a round is compared with.
    private var previous: Double?
    /// A timeout in the current round already halved the window and the rate.
    private var timedOutThisRound = false
    private var roundStart: ContinuousClock.Instant
    private var roundBytes: Int64 = 0
    private var roundCompletions = 0

    /// A window of `min(4, maxWindow)` whose first round starts at `now`.
    public init(maxWindow: Int, now: ContinuousClock.Instant) {
        self.maxWindow = max(1, maxWindow)
        window = min(TransferPacer.initialWindow, self.maxWindow)
        roundStart = now
    }

    /// A request that moved `bytes` completed at `now`; a round that ends so moves the window.
    public mutating func completed(bytes: Int64, at now: ContinuousClock.Instant) {
        roundBytes += bytes
        roundCompletions += 1
        let elapsed = now - roundStart
        guard roundCompletions >= window, elapsed >= Self.minimumRound else { return }
        let roundRate = Double(roundBytes) / seconds(elapsed)
        // With `window` in flight sharing the rate, one request of the round's mean size took about this long.
        let perRequest = Double(window) * Double(roundBytes) / Double(roundCompletions) / max(roundRate, 1)
        move(roundRate: roundRate, perRequestSeconds: perRequest)
        // Compared with the smoothed rate, not the last round alone: a slow decline turns it back too.
        rate = rate.map { 0.5 * $0 + 0.5 * roundRate } ?? roundRate
        previous = rate
        timedOutThisRound = false
        startRound(at: now)
    }

    /// A request timed out at `now`: the link got slower than measured. Once a round, the window and the rate are
    /// halved (so that the next deadlines are longer), and the climb goes down.
    public mutating func timedOut(at now: ContinuousClock.Instant) {
        timeouts += 1
        if !timedOutThisRound {
            window = max(1, window / 2)
            rate = rate.map { $0 / 2 }
            timedOutThisRound = true
        }
        slowStart = false
        direction = -1
        previous = nil
        startRound(at: now)
    }

    private mutating func startRound(at now: ContinuousClock.Instant) {
        roundStart = now
        roundBytes = 0
        roundCompletions = 0
    }

    /// The window after a round measured at `roundRate`, whose requests took `perRequestSeconds` each on average.
    private mutating func move(roundRate: Double, perRequestSeconds: Double) {
        guard let previous else {
            if slowStart { window = min(maxWindow, window * 2) }
            return
        }
        if slowStart {
            if roundRate >= previous * 1.1, window < maxWindow {
                window = min(maxWindow, window * 2)
                return
            }
            slowStart = false
            direction = -1
        } else {
            // On a plateau (within 2 %), which way to lean: where a request takes more than a second (a slow link),
            // toward fewer requests, each then finishing sooner (it comes down to the knee, where fewer start to cost
            // throughput); where requests are quick, toward more (it stays up, where a step down would cost).
            let preferFewer = perRequestSeconds > 1
            let keepGoing = direction > 0 ? (preferFewer ? 1.02 : 0.98) : (preferFewer ? 0.98 : 1.02)
            if roundRate < previous * keepGoing { direction = -direction }
        }
        window = min(maxWindow, max(1, window + direction))
    }
}

/// A network store whose blob requests go through a ``TransferPacer``: the window of requests in flight and the
/// timeout of each. Every other call goes to the store as it is.
public final class PacedBlobStore: BlobStore {
    public let base: any BlobStore
    public let pacer: TransferPacer
    /// The size of the blobs seen so far (a get's size is known only once it is there): 4 MiB until one is.
    private let blobSize = Mutex<Int?>(nil)

    public init(_ base: any BlobStore, pacer: TransferPacer) {
        self.base = base
        self.pacer = pacer
    }

    public var location: String { base.location }
    public func containerExists() async throws -> Bool { try await base.containerExists() }
    public func createContainer() async throws { try await base.createContainer() }

    /// A put that timed out may have landed: sent again, a blob already there with this checksum and chain is it.
    public func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws {
        let body = UncheckedBytes(bytes: bytes)
        let base = base
        try await pacer.perform("PUT \(name)", bytes: bytes.count) { attempt in
            do {
                try await base.put(name, bytes: body.bytes, metadata: metadata)
            } catch let error as BlobStoreError where error.code == .alreadyExists && attempt > 1 {
                guard try await base.holds(name, with: metadata) else { throw error }
            }
        }
    }

    public func get(_ name: String) async throws -> StoredBlob? {
        let base = base
        let blob = try await pacer.perform(
            "GET \(name)",
            bytes: blobSize.withLock { $0 } ?? 4 << 20,
            moved: { blob, _ in blob?.bytes.count ?? 0 }
        ) { _ in try await base.get(name) }
        noteSize(name, blob)
        return blob
    }

    public func awaitBlob(_ name: String, upTo wait: Duration) async throws -> BlobWait {
        let base = base
        // Only a blob there at once measures the link: one waited for (a long poll that took a quarter of its wait or
        // more) measures the writer.
        let look = try await pacer.perform(
            "GET \(name)",
            bytes: blobSize.withLock { $0 } ?? 4 << 20,
            wait: wait,
            moved: { look, took in
                if case .found(let blob) = look, took < wait / 4 { return blob.bytes.count }
                return 0
            }
        ) { _ in try await base.awaitBlob(name, upTo: wait) }
        if case .found(let blob) = look { noteSize(name, blob) }
        return look
    }

    public func head(_ name: String) async throws -> BlobMetadata? { try await base.head(name) }
    public func inspect(_ name: String) async throws -> BlobStat? { try await base.inspect(name) }
    public func sync() async throws { try await base.sync() }
    public func acquireWriterLease() async throws -> any WriterLease { try await base.acquireWriterLease() }
    public func resumeWriterLease() async throws -> any WriterLease { try await base.resumeWriterLease() }
    public func writerState() async throws -> WriterState { try await base.writerState() }

    /// Notes a data blob's size (not a marker's): the largest seen.
    private func noteSize(_ name: String, _ blob: StoredBlob?) {
        guard let blob, !name.hasPrefix("."), blob.bytes.count > 0 else { return }
        blobSize.withLock { size in size = size.map { max($0, blob.bytes.count) } ?? blob.bytes.count }
    }
}

/// `d` in seconds.
private func seconds(_ d: Duration) -> Double {
    let (secs, atto) = d.components
    return Double(secs) + Double(atto) / 1e18
}

/// A put's bytes, valid for the duration of the put (the request tasks end before it returns).
private struct UncheckedBytes: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
}
