import Foundation
import NIOHTTP1
import Testing
import TygerClient
import TygerCore
import TygerIO
import TygerStorage

/// A deterministic generator (SplitMix64), so jitter tests do not depend on luck.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Quick retries for tests: the computed waits are a few milliseconds.
let quickRetries = RetryPolicy(
    maxAttempts: 6,
    baseDelay: .milliseconds(2),
    maxDelay: .milliseconds(20),
    maxRetryAfter: .seconds(5)
)

/// The bytes of a blob.
func text(_ blob: StoredBlob?) -> String? {
    blob.map { String(decoding: $0.bytes, as: UTF8.self) }
}

@Suite struct RetryPolicyTests {
    @Test func backoffDoublesUpToTheCap() {
        let policy = RetryPolicy.default
        #expect(policy.backoff(attempt: 1) == .milliseconds(100))
        #expect(policy.backoff(attempt: 2) == .milliseconds(200))
        #expect(policy.backoff(attempt: 4) == .milliseconds(800))
        #expect(policy.backoff(attempt: 7) == .seconds(5))
        #expect(policy.backoff(attempt: 60) == .seconds(5))
    }

    @Test func jitteredDelaysStayInTheUpperHalfAndVary() {
        var generator = SplitMix64(state: 42)
        let policy = RetryPolicy.default
        for attempt in 1...8 {
            let full = policy.backoff(attempt: attempt)
            var seen = Set<Duration>()
            for _ in 0..<50 {
                let d = policy.delay(attempt: attempt, headers: nil, using: &generator)
                #expect(d >= full / 2 && d <= full, "attempt \(attempt): \(d) outside [\(full / 2), \(full)]")
                seen.insert(d)
            }
            #expect(seen.count > 10, "attempt \(attempt): the jitter hardly varies: \(seen)")
        }
    }

    @Test func retryAfterReplacesTheBackoffAndIsCapped() {
        var generator = SplitMix64(state: 1)
        let policy = RetryPolicy.default
        #expect(policy.delay(attempt: 1, headers: ["Retry-After": "3"], using: &generator) == .seconds(3))
        #expect(policy.delay(attempt: 1, headers: ["Retry-After": "3600"], using: &generator) == .seconds(60))
        // Not a number or a date: the usual backoff.
        let d = policy.delay(attempt: 1, headers: ["Retry-After": "soon"], using: &generator)
        #expect(d >= .milliseconds(50) && d <= .milliseconds(100))
    }

    @Test func retryAfterParsesSecondsAndHTTPDates() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)  // Tue, 14 Nov 2023 22:13:20 GMT
        #expect(RetryPolicy.retryAfter("0") == .zero)
        #expect(RetryPolicy.retryAfter(" 12 ") == .seconds(12))
        #expect(RetryPolicy.retryAfter("Tue, 14 Nov 2023 22:13:30 GMT", now: now) == .seconds(10))
        #expect(RetryPolicy.retryAfter("Tue, 14 Nov 2023 22:00:00 GMT", now: now) == .zero)
        #expect(RetryPolicy.retryAfter("-1") == nil)
        #expect(RetryPolicy.retryAfter("tomorrow") == nil)
    }
}

@Suite struct HTTPBlobStoreRetryTests {
    @Test func serverErrorsAreRetriedUntilTheyPass() async throws {
        try await TestHTTPServer.withServer({ _, n in
            n < 2 ? .init(status: .serviceUnavailable) : .init(status: .ok, body: "hello")
        }) { server in
            try await HTTPTransport.withTransport { transport in
                let store = HTTPBlobStore(
                    containerURL: try ServiceURL(server.baseURL + "/c?sig=x"),
                    transport: transport,
                    retryPolicy: quickRetries
                )
                #expect(text(try await store.get("blob")) == "hello")
            }
            #expect(server.requests.count == 3)
        }
    }

    @Test func retriesStopAfterMaxAttempts() async throws {
        try await TestHTTPServer.withServer({ _, _ in .init(status: .internalServerError) }) { server in
            try await HTTPTransport.withTransport { transport in
                let store = HTTPBlobStore(
                    containerURL: try ServiceURL(server.baseURL + "/c?sig=x"),
                    transport: transport,
                    retryPolicy: quickRetries
                )
                await #expect(throws: TygerClientError.self) { try await store.get("blob") }
            }
            #expect(server.requests.count == quickRetries.maxAttempts)
        }
    }

    @Test func retryAfterIsHonoured() async throws {
        try await TestHTTPServer.withServer({ _, n in
            n == 0
                ? .init(status: .serviceUnavailable, headers: ["Retry-After": "1"]) : .init(status: .ok, body: "late")
        }) { server in
            let started = ContinuousClock.now
            try await HTTPTransport.withTransport { transport in
                let store = HTTPBlobStore(
                    containerURL: try ServiceURL(server.baseURL + "/c?sig=x"),
                    transport: transport,
                    retryPolicy: quickRetries
                )
                #expect(text(try await store.get("blob")) == "late")
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .milliseconds(950), "retried after \(elapsed), before the server's Retry-After")
            #expect(server.requests.count == 2)
        }
    }

    @Test func connectionFailuresAreRetried() async throws {
        // A socket that does not exist: every attempt fails to connect at once, and each is retried. (A TCP port
        // freed by a closed test server could be taken meanwhile by another test's server running in parallel.)
        let missingSocket = FileManager.default.temporaryDirectory.path + "/tyger-missing-\(UUID().uuidString).sock"
        let started = ContinuousClock.now
        try await HTTPTransport.withTransport { transport in
            let store = HTTPBlobStore(
                containerURL: try ServiceURL("http+unix://\(missingSocket):/c?sig=x"),
                transport: transport,
                retryPolicy: RetryPolicy(
                    maxAttempts: 3,
                    baseDelay: .milliseconds(100),
                    maxDelay: .seconds(1),
                    maxRetryAfter: .seconds(1)
                )
            )
            await #expect(throws: TygerClientError.self) { try await store.get("blob") }
        }
        // Two waits of at least 50 ms and 100 ms (the lower halves of 100 ms and 200 ms).
        #expect(ContinuousClock.now - started >= .milliseconds(150))
    }
}

@Suite struct HTTPBlobStoreRefreshTests {
    @Test func aRefusedAccessURLIsRefreshedOnceAndTheRequestRetried() async throws {
        try await TestHTTPServer.withServer({ request, _ in
            request.uri.contains("sig=fresh")
                ? .init(status: .ok, body: "data")
                : .init(status: .forbidden, headers: ["x-ms-error-code": "AuthenticationFailed"])
        }) { server in
            let refreshes = LockedCounter()
            try await HTTPTransport.withTransport { transport in
                let fresh = try ServiceURL(server.baseURL + "/c?sig=fresh")
                let store = HTTPBlobStore(
                    containerURL: try ServiceURL(server.baseURL + "/c?sig=stale"),
                    transport: transport,
                    retryPolicy: quickRetries
                ) {
                    _ = refreshes.add(1)
                    return fresh
                }
                #expect(text(try await store.get("blob")) == "data")
                // Later requests use the fresh URL at once.
                #expect(text(try await store.get("other")) == "data")
            }
            #expect(refreshes.value == 1)
            #expect(server.requests.map(\.uri) == ["/c/blob?sig=stale", "/c/blob?sig=fresh", "/c/other?sig=fresh"])
        }
    }

    @Test func withoutARefresherA403IsAnAuthenticationError() async throws {
        try await TestHTTPServer.withServer({ _, _ in
            .init(status: .forbidden, headers: ["x-ms-error-code": "AuthenticationFailed"])
        }) { server in
            try await HTTPTransport.withTransport { transport in
                let store = HTTPBlobStore(
                    containerURL: try ServiceURL(server.baseURL + "/c?sig=stale"),
                    transport: transport,
                    retryPolicy: quickRetries
                )
                let error = await #expect(throws: TygerClientError.self) { try await store.get("blob") }
                #expect(error?.code == .authentication)
                #expect(error?.status == 403)
            }
            #expect(server.requests.count == 1)
        }
    }

    @Test func aStillRefusedFreshURLIsNotRefreshedAgain() async throws {
        try await TestHTTPServer.withServer({ _, _ in
            .init(status: .forbidden, headers: ["x-ms-error-code": "AuthenticationFailed"])
        }) { server in
            let refreshes = LockedCounter()
            try await HTTPTransport.withTransport { transport in
                let store = HTTPBlobStore(
                    containerURL: try ServiceURL(server.baseURL + "/c?sig=stale"),
                    transport: transport,
                    retryPolicy: quickRetries
                ) {
                    _ = refreshes.add(1)
                    return try ServiceURL(server.baseURL + "/c?sig=fresh")
                }
                await #expect(throws: TygerClientError.self) { try await store.get("blob") }
            }
            #expect(refreshes.value == 1)
            #expect(server.requests.count == 2)
        }
    }
}
