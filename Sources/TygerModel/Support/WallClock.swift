public import Foundation

/// The source of wall-clock time: timestamps, expiry, run deadlines and signed-URL validity all read it.
///
/// Injected (buffer manager, run engine, signed URLs, token store) so tests can control time; waiting uses a
/// separate `Clock`.
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

    /// The current time in whole seconds since the Unix epoch (rounded down).
    public func seconds() -> Int64 { Int64(nowProvider().timeIntervalSince1970.rounded(.down)) }

    /// The system clock.
    public static let system = WallClock { Date() }

    /// A clock stopped at `date`.
    public static func fixed(_ date: Date) -> WallClock { WallClock { date } }

    /// A clock stopped at `seconds` since the Unix epoch.
    public static func fixed(seconds: Int64) -> WallClock { fixed(Date(timeIntervalSince1970: Double(seconds))) }
}
