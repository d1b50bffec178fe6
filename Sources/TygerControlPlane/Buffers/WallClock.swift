public import Foundation

/// The source of wall-clock time for timestamps and expiry decisions.
///
/// Injected into ``BufferManager`` so tests can control time; sleeping uses a separate `Clock`
/// (see ``BufferExpiryService``).
public struct WallClock: Sendable {
    private let nowProvider: @Sendable () -> Date

    /// Creates a wall clock from a function that returns the current time.
    ///
    /// - Parameter now: Returns the current time.
    public init(now: @escaping @Sendable () -> Date) {
        self.nowProvider = now
    }

    /// The current time.
    public func now() -> Date { nowProvider() }

    /// The system clock (`Date()`).
    public static let system = WallClock { Date() }
}
