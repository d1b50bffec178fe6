public import Benchmark

extension BenchmarkMetric {
    /// Bytes processed per second, in MB/s (10^6 bytes), measured around the work of each iteration.
    ///
    /// package-benchmark's own `.throughput` counts iterations per second and its scaling factors are powers of
    /// 1000, so a byte rate has to be a custom metric, recorded by ``Benchmark/measure(bytes:_:)``.
    public static var bytesPerSecond: BenchmarkMetric {
        .custom("Throughput (MB/s)", polarity: .prefersLarger, useScalingFactor: false)
    }

    /// Items moved per second, in thousands, measured around the work of each iteration.
    public static var kiloItemsPerSecond: BenchmarkMetric {
        .custom("Throughput (K items/s)", polarity: .prefersLarger, useScalingFactor: false)
    }
}

extension Benchmark {
    /// Measures `body`, which moves `bytes` bytes, and records its rate as ``BenchmarkMetric/bytesPerSecond``.
    ///
    /// Only `body` is inside the measured region: whatever the closure does before (fixtures) or after (checks,
    /// recording the rate, which allocates) is excluded from wall clock and malloc counts alike.
    public func measure(bytes: Int, _ body: () throws -> Void) rethrows {
        let elapsed = try measuredBlocking(body)
        measurement(.bytesPerSecond, Int(Double(bytes) / elapsed.seconds / 1e6))
    }

    /// Measures async `body`, which moves `bytes` bytes; see ``measure(bytes:_:)``.
    public func measure(bytes: Int, _ body: () async throws -> Void) async rethrows {
        let elapsed = try await measured(body)
        measurement(.bytesPerSecond, Int(Double(bytes) / elapsed.seconds / 1e6))
    }

    /// Measures async `body`, which moves `items` items, and records ``BenchmarkMetric/kiloItemsPerSecond``.
    public func measure(items: Int, _ body: () async throws -> Void) async rethrows {
        let elapsed = try await measured(body)
        measurement(.kiloItemsPerSecond, Int(Double(items) / elapsed.seconds / 1e3))
    }

    private func measuredBlocking(_ body: () throws -> Void) rethrows -> Duration {
        let clock = ContinuousClock()
        startMeasurement()
        let start = clock.now
        try body()
        let elapsed = clock.now - start
        stopMeasurement()
        return elapsed
    }

    private func measured(_ body: () async throws -> Void) async rethrows -> Duration {
        let clock = ContinuousClock()
        startMeasurement()
        let start = clock.now
        try await body()
        let elapsed = clock.now - start
        stopMeasurement()
        return elapsed
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
