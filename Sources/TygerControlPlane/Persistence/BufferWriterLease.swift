public import Foundation
import TygerModel

/// Where a buffer's write stands: the one buffer state machine (`docs/data-path.md`, "Buffer states").
///
/// ```
///            acquire (with .bufferstart)
///   (none) ──────────────────────────────▶ writing ──.bufferend complete──▶ complete
///                                           │  ▲  └──.bufferend failed────▶ failed
///           lease expired or released       │  │
///           without .bufferend              ▼  │ resume (same buffer, new lease)
///                                         abandoned
/// ```
///
/// `complete` and `failed` are final. `abandoned` is not stored: it is a `writing` lease whose expiry has passed
/// (the writer died, lost its connection, or released the lease without ending the buffer), so a server restart
/// or a clock jump never turns an abandoned buffer back into one that readers wait on.
public enum BufferWriteState: String, Sendable, Hashable, CaseIterable {
    /// A writer holds the lease and renews it.
    case writing
    /// `.bufferend` says `complete`.
    case complete
    /// `.bufferend` says `failed`.
    case failed
    /// The lease ran out without `.bufferend`: readers stop instead of waiting.
    case abandoned
}

/// The writer lease of one buffer, as the control plane keeps it.
public struct BufferWriterLease: Sendable, Hashable {
    /// The buffer (container) ID.
    public var bufferId: String
    /// The writer's lease ID (chosen by the writer, sent with every blob it puts).
    public var leaseId: String
    /// The stored state: `writing`, `complete` or `failed` (`abandoned` is derived, see ``state(at:)``).
    public var storedState: BufferWriteState
    /// When the lease runs out unless renewed.
    public var expiresAt: Date

    /// Creates a lease record; `expiresAt` is truncated to microseconds.
    public init(bufferId: String, leaseId: String, storedState: BufferWriteState, expiresAt: Date) {
        self.bufferId = bufferId
        self.leaseId = leaseId
        self.storedState = storedState
        self.expiresAt = RFC3339.normalize(expiresAt)
    }

    /// The state at `now`: a `writing` lease past its expiry is `abandoned`.
    public func state(at now: Date) -> BufferWriteState {
        storedState == .writing && expiresAt <= now ? .abandoned : storedState
    }
}

/// A change a writer asks of its lease.
public enum BufferWriterLeaseChange: Sendable, Hashable {
    /// Take the lease (no lease yet), or extend it (the same lease ID, still live): a retried `.bufferstart`.
    case acquire(until: Date)
    /// Extend a live lease held with this ID.
    case renew(until: Date)
    /// Take the lease of a write that was abandoned (its lease ran out or was released without `.bufferend`), or of
    /// one no lease covered, to continue it under a new lease ID; or extend it for the same ID (a retry).
    case resume(until: Date)
    /// End the write: `complete` or `failed` (`.bufferend` stored), or `abandoned` (released without `.bufferend`).
    case end(BufferWriteState)

    /// Applies the change to the current record (the same rules for every repository).
    ///
    /// - Returns: The record to store (`nil` = unchanged) and the outcome.
    public func apply(
        to current: BufferWriterLease?,
        bufferId: String,
        leaseId: String,
        now: Date
    ) -> (store: BufferWriterLease?, outcome: BufferWriterLeaseOutcome) {
        let ours = current.map { $0.leaseId == leaseId && $0.state(at: now) == .writing } ?? false
        let refusal: BufferWriterLeaseOutcome = current.map { .refused($0) } ?? .none
        switch self {
        case .acquire(let until):
            if current != nil, !ours { return (nil, refusal) }
            let lease = BufferWriterLease(bufferId: bufferId, leaseId: leaseId, storedState: .writing, expiresAt: until)
            return (lease, .granted(lease))
        case .resume(let until):
            if let current, !ours, current.state(at: now) != .abandoned { return (nil, refusal) }
            let lease = BufferWriterLease(bufferId: bufferId, leaseId: leaseId, storedState: .writing, expiresAt: until)
            return (lease, .granted(lease))
        case .renew(let until):
            guard ours, var lease = current else { return (nil, refusal) }
            lease.expiresAt = RFC3339.normalize(until)
            return (lease, .granted(lease))
        case .end(let state):
            guard ours, var lease = current else { return (nil, refusal) }
            if state == .abandoned {
                lease.expiresAt = RFC3339.normalize(now)
            } else {
                lease.storedState = state
            }
            return (lease, .granted(lease))
        }
    }
}

/// What became of a lease change.
public enum BufferWriterLeaseOutcome: Sendable, Hashable {
    /// Done; the record is the lease now.
    case granted(BufferWriterLease)
    /// Refused: another writer holds the lease, or this lease has ended or run out; the record is the lease now.
    case refused(BufferWriterLease)
    /// Refused: the buffer has no writer lease.
    case none
}
