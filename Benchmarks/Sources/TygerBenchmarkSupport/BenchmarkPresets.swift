public import Benchmark

/// Metric sets and configurations shared by the suites.
///
/// Peak RSS and CPU time come from a sampler thread that reads /proc every 10 ms and allocates while it does, so they
/// are requested only by the streaming and cross-thread benchmarks, whose malloc counts are not deterministic anyway.
/// The single-threaded benchmarks measure wall clock, rate and mallocs only, which keeps their `mallocCountTotal`
/// exact: that is the one metric Benchmarks/Thresholds/ gates on (house style rule 22). Wall clock, CPU, rates and RSS
/// are reported, not gated.
public enum BenchmarkPresets {
    /// For single-threaded benchmarks that move a known number of bytes per iteration.
    public static let byteMetrics: [BenchmarkMetric] = [.wallClock, .bytesPerSecond, .mallocCountTotal]

    /// For streaming benchmarks (tens to hundreds of ms an iteration, several threads).
    public static let streamMetrics: [BenchmarkMetric] = [
        .wallClock, .cpuTotal, .bytesPerSecond, .mallocCountTotal, .peakMemoryResident,
    ]

    /// For cross-thread benchmarks that move a known number of items per iteration.
    public static let itemMetrics: [BenchmarkMetric] = [
        .wallClock, .cpuTotal, .kiloItemsPerSecond, .mallocCountTotal, .peakMemoryResident,
    ]

    /// For single-threaded operation-rate micro-benchmarks with an inner loop (`scalingFactor`).
    public static let operationMetrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]

    /// Gating for deterministic benchmarks: the p90 malloc count may not grow at all.
    public static var exactMallocs: [BenchmarkMetric: BenchmarkThresholds] {
        [.mallocCountTotal: .init(relative: [.p90: 0], absolute: [.p90: 0])]
    }

    /// Raw units for the custom rates, so the tables read directly in MB/s and K items/s.
    public static var units: [BenchmarkMetric: BenchmarkUnits] {
        [.bytesPerSecond: .count, .kiloItemsPerSecond: .count]
    }

    /// A configuration for a benchmark that processes one block per iteration (milliseconds or less).
    public static func block(
        _ metrics: [BenchmarkMetric] = byteMetrics,
        maxDuration: Duration = .seconds(1),
        maxIterations: Int = 2_000
    ) -> Benchmark.Configuration {
        .init(
            metrics: metrics,
            timeUnits: .microseconds,
            units: units,
            warmupIterations: 2,
            maxDuration: maxDuration,
            maxIterations: maxIterations,
            thresholds: exactMallocs
        )
    }

    /// A configuration for a benchmark that streams hundreds of MiB per iteration.
    public static func stream(
        _ metrics: [BenchmarkMetric] = streamMetrics,
        maxDuration: Duration = .seconds(4),
        maxIterations: Int = 20
    ) -> Benchmark.Configuration {
        .init(
            metrics: metrics,
            timeUnits: .milliseconds,
            units: units,
            warmupIterations: 1,
            maxDuration: maxDuration,
            maxIterations: maxIterations
        )
    }

    /// A configuration for an operation-rate benchmark with `scalingFactor` inner iterations.
    public static func operations(
        _ metrics: [BenchmarkMetric] = operationMetrics,
        scalingFactor: BenchmarkScalingFactor = .kilo
    ) -> Benchmark.Configuration {
        .init(
            metrics: metrics,
            timeUnits: .nanoseconds,
            warmupIterations: 5,
            scalingFactor: scalingFactor,
            maxDuration: .seconds(1),
            maxIterations: 10_000,
            thresholds: exactMallocs
        )
    }
}
