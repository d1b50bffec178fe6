import Synchronization
import Testing
import TygerClient
import TygerCore
import TygerStorage
import TygerTestSupport

/// A store whose puts take time: `latency` each whatever else is in flight (a path where more requests in flight
/// help), or `latency` each one after another (a link that carries one at a time: more in flight only queue).
private final class SlowStore: BlobStore {
    let base = InMemoryBlobStore()
    let latency: Duration
    let serial: Bool
    /// Puts of these names store the blob and then hang (an answer lost on the way back), once each.
    let hangAfterStoring: Mutex<Set<String>>
    private let link = Mutex(ContinuousClock.now)

    init(latency: Duration, serial: Bool, hangAfterStoring: Set<String> = []) {
        self.latency = latency
        self.serial = serial
        self.hangAfterStoring = Mutex(hangAfterStoring)
    }

    var location: String { "slow" }
    func containerExists() async throws -> Bool { true }
    func createContainer() async throws {}
    func put(_ name: String, bytes: UnsafeRawBufferPointer, metadata: BlobMetadata) async throws {
        let copy = StoredBlob(copying: bytes, metadata: metadata)
        if serial {
            // The link is free again at `done`: this put waits for the ones before it.
            let done = link.withLock { free in
                free = max(free, ContinuousClock.now) + latency
                return free
            }
            try await Task.sleep(until: done)
        } else {
            try await Task.sleep(for: latency)
        }
        try await base.put(name, bytes: copy.bytes, metadata: copy.metadata)
        if hangAfterStoring.withLock({ $0.remove(name) != nil }) { try await Task.sleep(for: .seconds(3600)) }
    }
    func get(_ name: String) async throws -> StoredBlob? { try await base.get(name) }
    func head(_ name: String) async throws -> BlobMetadata? { try await base.head(name) }
    func sync() async throws {}
    func acquireWriterLease() async throws -> any WriterLease { try await base.acquireWriterLease() }
    func writerState() async throws -> WriterState { .unknown }
}

/// Puts `bytes` as blob `name`.
private func put(
    _ store: any BlobStore,
    _ name: String,
    _ bytes: [UInt8],
    _ metadata: BlobMetadata = BlobMetadata()
)
    async throws
{
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
    defer { memory.deallocate() }
    memory.copyBytes(from: bytes)
    try await store.put(name, bytes: UnsafeRawBufferPointer(rebasing: memory[0..<bytes.count]), metadata: metadata)
}

/// Hands out 0, 1, 2, … to concurrent takers.
private final class Ticket: Sendable {
    private let next = Mutex(0)
    func take() -> Int {
        next.withLock { n in
            defer { n += 1 }
            return n
        }
    }
}

/// Puts `count` blobs of `size` bytes from `tasks` tasks at once.
private func putMany(_ store: PacedBlobStore, count: Int, size: Int, tasks: Int) async throws {
    let next = Ticket()
    let bytes = [UInt8](repeating: 7, count: size)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<tasks {
            group.addTask {
                while true {
                    let n = next.take()
                    guard n < count else { return }
                    try await put(store, "b\(n)", bytes)
                }
            }
        }
        try await group.waitForAll()
    }
}

struct TransferPacerTests {
    /// The window's rule on simulated time: requests of 1 MB complete one after another, `gap(window)` apart.
    private func simulate(completions: Int, maxWindow: Int, gap: (Int) -> Duration) -> WindowClimber {
        var now = ContinuousClock.now
        var climber = WindowClimber(maxWindow: maxWindow, now: now)
        for _ in 0..<completions {
            now += gap(climber.window)
            climber.completed(bytes: 1_000_000, at: now)
        }
        return climber
    }

    @Test func onSimulatedTimeTheWindowClimbsWhereMoreInFlightHelpAndComesDownWhereTheyOnlyQueue() {
        // Each request takes 40 ms whatever else is in flight: throughput grows with the window, up to its bound.
        let latency = simulate(completions: 2000, maxWindow: 16) { .milliseconds(40) / $0 }
        #expect(latency.window >= 15, "window \(latency.window)")
        // A slow link that carries one request at a time, 1.5 s each: more in flight only queue (each then takes
        // longer), and the window comes down to one or two.
        let link = simulate(completions: 300, maxWindow: 16) { _ in .milliseconds(1500) }
        #expect(link.window <= 2, "window \(link.window)")
        #expect(link.rate.map { abs($0 - 1e6 / 1.5) < 1e4 } == true, "rate \(link.rate ?? -1)")
        // A slow path whose throughput stops growing at 6 in flight: the window settles near that knee.
        let knee = simulate(completions: 600, maxWindow: 16) { .milliseconds(1800) / min($0, 6) }
        #expect((4...8).contains(knee.window), "window \(knee.window)")
        // A fast one with the same knee (requests of a few ms): more in flight cost nothing, and the window stays
        // above the knee rather than risk the throughput below it.
        let fast = simulate(completions: 3000, maxWindow: 16) { .milliseconds(18) / min($0, 6) }
        #expect(fast.window >= 6, "window \(fast.window)")
    }

    @Test func aTimeoutHalvesTheWindowAndTheRateOnceARound() {
        var now = ContinuousClock.now
        var climber = WindowClimber(maxWindow: 16, now: now)
        for _ in 0..<400 {
            now += .milliseconds(40) / climber.window
            climber.completed(bytes: 1_000_000, at: now)
        }
        let (window, rate) = (climber.window, climber.rate!)
        climber.timedOut(at: now)
        climber.timedOut(at: now)  // the same round: no second halving
        #expect(climber.window == window / 2)
        #expect(climber.rate == rate / 2)
        #expect(climber.timeouts == 2)
    }

    @Test func aFixedTimeoutFailsARequestThatTakesLonger() async throws {
        let store = PacedBlobStore(
            SlowStore(latency: .seconds(2), serial: false),
            pacer: TransferPacer(timeout: .fixed(.milliseconds(200)), maxInFlight: 4)
        )
        let error = await #expect(throws: TygerClientError.self) {
            try await put(store, "b", [UInt8](repeating: 1, count: 10), BlobMetadata())
        }
        #expect(error?.code == .transport)
        #expect(error?.message == "PUT b: no answer within 0.2 s (the request timeout), 3 times", "\(error!)")
        // Before any rate is measured, the adaptive client has no deadline: the same put completes.
        let adaptive = PacedBlobStore(
            SlowStore(latency: .seconds(1), serial: false),
            pacer: TransferPacer(maxInFlight: 4)
        )
        try await put(adaptive, "b", [UInt8](repeating: 1, count: 10), BlobMetadata())
    }

    /// On a link that carries one put at a time (40 ms each), a put waits for those before it: deadlines that follow
    /// the measured rate and the requests sharing it (here above a floor of 30 ms, shorter than any put) let every put
    /// finish, where a fixed 30 ms fails them.
    @Test func adaptiveDeadlinesFollowTheLinkWhereAFixedOneFails() async throws {
        let adaptive = TransferPacer(maxInFlight: 8, minimumDeadline: .milliseconds(30))
        try await putMany(
            PacedBlobStore(SlowStore(latency: .milliseconds(40), serial: true), pacer: adaptive),
            count: 60,
            size: 1000,
            tasks: 8
        )
        #expect(adaptive.rate != nil)
        let fixed = TransferPacer(timeout: .fixed(.milliseconds(30)), maxInFlight: 8)
        await #expect(throws: TygerClientError.self) {
            try await putMany(
                PacedBlobStore(SlowStore(latency: .milliseconds(40), serial: true), pacer: fixed),
                count: 60,
                size: 1000,
                tasks: 8
            )
        }
        #expect(fixed.timeouts >= 3)
    }

    @Test func aPutThatLandedBeforeItTimedOutIsTakenAsDone() async throws {
        let slow = SlowStore(latency: .milliseconds(1), serial: false, hangAfterStoring: ["b"])
        let store = PacedBlobStore(slow, pacer: TransferPacer(timeout: .fixed(.milliseconds(300)), maxInFlight: 4))
        let metadata = BlobMetadata(properties: ["crc32c": "00000001"])
        try await put(store, "b", [UInt8](repeating: 1, count: 10), metadata)
        #expect(try await slow.base.head("b") == metadata)
        // Another blob of that name with other metadata is still refused as write-once.
        let error = await #expect(throws: BlobStoreError.self) {
            try await put(
                store,
                "b",
                [UInt8](repeating: 2, count: 10),
                BlobMetadata(properties: ["crc32c": "00000002"])
            )
        }
        #expect(error?.code == .alreadyExists)
    }

    @Test func adaptiveDeadlinesFollowTheRateAndTheRequestsSharingIt() {
        // 4 MiB alone at 100 kB/s: 4 × 41.9 s.
        #expect(TransferPacer.adaptiveDeadline(bytes: 4 << 20, inFlight: 1, rate: 1e5) == .milliseconds(167772))
        // Four of them sharing it: four times as long each.
        #expect(TransferPacer.adaptiveDeadline(bytes: 4 << 20, inFlight: 4, rate: 1e5) == .milliseconds(671088))
        // A fast link: never under the floor.
        #expect(TransferPacer.adaptiveDeadline(bytes: 4 << 20, inFlight: 16, rate: 2e9) == .seconds(30))
    }
}
