// swift-tools-version:6.2
import PackageDescription

// Micro-benchmarks for the data path, kept out of the root package graph: the root package never sees
// package-benchmark or its malloc interposer. Run them with `tools/run-benchmarks` from the repository root, which
// also sets RUNTIME_INTERPOSER_LOCAL_PATH (see LocalPackages/swift-runtime-interposer/Package.swift).

// The same language settings as the root package (house style rule 1).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

// External dependencies, named once. Only the `MallocInterposer` trait: the `RuntimeInterposer` one (ARC counts on
// Linux with Swift 6.3) would need the real swift-runtime-interposer package.
let tyger = Package.Dependency.package(name: "tyger-swift", path: "../")
let packageBenchmark = Package.Dependency.package(
    url: "https://github.com/ordo-one/benchmark",
    from: "1.38.1",
    traits: ["MallocInterposer"]
)

let benchmark = Target.Dependency.product(name: "Benchmark", package: "benchmark")
let benchmarkPlugin = Target.PluginUsage.plugin(name: "BenchmarkPlugin", package: "benchmark")

let package = Package(
    name: "benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [tyger, packageBenchmark],
    targets: [
        // Shared helpers: owned test data, the byte-rate metric and configuration presets.
        .target(
            name: "TygerBenchmarkSupport",
            dependencies: [benchmark, .product(name: "TygerCore", package: "tyger-swift")],
            path: "Sources/TygerBenchmarkSupport",
            swiftSettings: swiftSettings
        ),
        // Checksums, the hash chain, the blob codec, the block ring and the handoff queue.
        .executableTarget(
            name: "TygerCoreBenchmarks",
            dependencies: [benchmark, "TygerBenchmarkSupport", .product(name: "TygerCore", package: "tyger-swift")],
            path: "Benchmarks/TygerCoreBenchmarks",
            swiftSettings: swiftSettings,
            plugins: [benchmarkPlugin]
        ),
        // The chunker, pipe copies and the write/read pipelines end to end over the in-memory blob store.
        .executableTarget(
            name: "TygerIOBenchmarks",
            dependencies: [
                benchmark,
                "TygerBenchmarkSupport",
                .product(name: "TygerCore", package: "tyger-swift"),
                .product(name: "TygerIO", package: "tyger-swift"),
                .product(name: "TygerStorage", package: "tyger-swift"),
                .product(name: "TygerDataPath", package: "tyger-swift"),
            ],
            path: "Benchmarks/TygerIOBenchmarks",
            swiftSettings: swiftSettings,
            plugins: [benchmarkPlugin]
        ),
    ]
)
