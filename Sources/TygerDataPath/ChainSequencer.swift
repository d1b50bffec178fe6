private import Synchronization
import TygerCore

/// Computes the hash chain in blob order while blobs are encoded and stored out of order.
///
/// Each writer task submits its blob's checksum and gets back that blob's chain value once every earlier blob's
/// checksum has been folded in. Only this SHA-256 over a few dozen bytes is serialized; checksums, compression and
/// puts of different blobs run in parallel.
final class ChainSequencer: Sendable {
    private struct State {
        var next: Int64 = 0
        var chain = HashChain()
        var waiting: [Int64: (String, CheckedContinuation<String, any Error>)] = [:]
        var failure: (any Error)?
    }
    private let state: Mutex<State>

    /// A sequencer whose first blob is `first`, with `chain` the value after the blobs before it (a resumed write).
    init(first: Int64 = 0, chain: HashChain = HashChain()) {
        state = Mutex(State(next: first, chain: chain))
    }

    /// Returns the chain value of blob `number`, whose checksum string is `checksum`.
    /// - Throws: the error given to `fail(_:)`.
    func link(_ number: Int64, checksum: String) async throws -> String {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
            var ready: [(CheckedContinuation<String, any Error>, String)] = []
            let failure: (any Error)? = state.withLock { s in
                if let failure = s.failure { return failure }
                precondition(number >= s.next && s.waiting[number] == nil, "blob \(number) linked twice")
                s.waiting[number] = (checksum, continuation)
                while let (sum, waiter) = s.waiting.removeValue(forKey: s.next) {
                    ready.append((waiter, s.chain.append(sum)))
                    s.next += 1
                }
                return nil
            }
            if let failure {
                continuation.resume(throwing: failure)
                return
            }
            for (waiter, value) in ready { waiter.resume(returning: value) }
        }
    }

    /// The number of the next blob to link: the blobs linked so far, with those before the first.
    var linked: Int64 { state.withLock { $0.next } }

    /// Fails every waiting and later `link` call.
    func fail(_ error: any Error) {
        let waiters = state.withLock { s -> [CheckedContinuation<String, any Error>] in
            if s.failure == nil { s.failure = error }
            defer { s.waiting.removeAll() }
            return s.waiting.values.map(\.1)
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }
}
