public import Foundation
public import NIOHTTP1

/// How data-plane requests are retried: how many attempts, and how long to wait between them.
///
/// The wait before attempt `n + 1` is exponential (`baseDelay · 2ⁿ`, at most `maxDelay`) with "equal jitter": a
/// random point in its upper half, so that many clients failing together do not retry in lockstep. A `Retry-After`
/// header (seconds, or an HTTP date) on the failed response replaces the computed wait, capped at `maxRetryAfter`.
public struct RetryPolicy: Sendable, Hashable {
    /// The most attempts of one request (the first one included).
    public var maxAttempts: Int
    /// The wait before the second attempt, before jitter.
    public var baseDelay: Duration
    /// The longest computed wait.
    public var maxDelay: Duration
    /// The longest wait a `Retry-After` header may ask for.
    public var maxRetryAfter: Duration

    /// Upstream's data-plane defaults: 6 attempts, 100 ms doubling up to 5 s, `Retry-After` up to 60 s.
    public static let `default` = RetryPolicy(
        maxAttempts: 6,
        baseDelay: .milliseconds(100),
        maxDelay: .seconds(5),
        maxRetryAfter: .seconds(60)
    )

    /// Creates a policy.
    ///
    /// - Precondition: `maxAttempts >= 1`.
    public init(maxAttempts: Int, baseDelay: Duration, maxDelay: Duration, maxRetryAfter: Duration) {
        precondition(maxAttempts >= 1, "maxAttempts must be at least 1, got \(maxAttempts)")
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// The wait after failed attempt number `attempt` (1 for the first), before jitter: `baseDelay · 2^(attempt-1)`,
    /// at most `maxDelay`.
    public func backoff(attempt: Int) -> Duration {
        let factor = 1 << min(max(attempt - 1, 0), 20)
        return min(maxDelay, baseDelay * factor)
    }

    /// The wait after failed attempt number `attempt`: the response's `Retry-After` when it has one, else the
    /// backoff with jitter (uniform in its upper half).
    ///
    /// - Parameters:
    ///   - attempt: The failed attempt's number (1 for the first).
    ///   - headers: The failed response's headers, `nil` when no response arrived.
    ///   - generator: The source of jitter.
    public func delay(
        attempt: Int,
        headers: HTTPHeaders?,
        using generator: inout some RandomNumberGenerator
    ) -> Duration {
        if let text = headers?.first(name: "Retry-After"), let asked = Self.retryAfter(text) {
            return min(asked, maxRetryAfter)
        }
        let full = backoff(attempt: attempt)
        let half = full / 2
        let jitterNanos = Self.nanoseconds(full - half)
        return half + .nanoseconds(jitterNanos > 0 ? Int64.random(in: 0...jitterNanos, using: &generator) : 0)
    }

    /// ``delay(attempt:headers:using:)`` with the system's random numbers.
    public func delay(attempt: Int, headers: HTTPHeaders?) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, headers: headers, using: &generator)
    }

    /// Parses a `Retry-After` value: delay seconds, or an HTTP date (RFC 9110 IMF-fixdate) from now.
    ///
    /// - Returns: The wait, zero for a date in the past, `nil` when the value is neither form.
    public static func retryAfter(_ text: String, now: Date = Date()) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Int64(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .milliseconds(max(0, Int64((date.timeIntervalSince(now) * 1000).rounded(.up))))
    }

    private static func nanoseconds(_ d: Duration) -> Int64 {
        let (s, a) = d.components
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}
