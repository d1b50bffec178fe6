// swift-tools-version:6.2
import PackageDescription

// Every target gets the same language settings (house style rule 1).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

// External dependencies, named once.
let argumentParser = Package.Dependency.package(
    url: "https://github.com/apple/swift-argument-parser",
    from: "1.8.2"
)
let crypto = Package.Dependency.package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0")
let hummingbird = Package.Dependency.package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1")
let nio = Package.Dependency.package(url: "https://github.com/apple/swift-nio", from: "2.101.3")
let nioExtras = Package.Dependency.package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0")
let nioSSL = Package.Dependency.package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6")
let serviceLifecycle = Package.Dependency.package(
    url: "https://github.com/swift-server/swift-service-lifecycle",
    from: "2.13.0"
)
let httpTypes = Package.Dependency.package(url: "https://github.com/apple/swift-http-types", from: "1.8.0")
let log = Package.Dependency.package(url: "https://github.com/apple/swift-log", from: "1.16.2")
let asyncHTTPClient = Package.Dependency.package(
    url: "https://github.com/swift-server/async-http-client",
    from: "1.37.0"
)
let yams = Package.Dependency.package(url: "https://github.com/jpsim/Yams", from: "6.2.2")
let grdb = Package.Dependency.package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0")
let postgres = Package.Dependency.package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2")

let package = Package(
    name: "tyger-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TygerCore", targets: ["TygerCore"]),
        .library(name: "TygerIO", targets: ["TygerIO"]),
        .library(name: "TygerStorage", targets: ["TygerStorage"]),
        .library(name: "TygerDataPath", targets: ["TygerDataPath"]),
        .library(name: "TygerServer", targets: ["TygerServer"]),
        .library(name: "TygerModel", targets: ["TygerModel"]),
        .library(name: "TygerControlPlane", targets: ["TygerControlPlane"]),
        .executable(name: "tyger", targets: ["TygerCLI"]),
        .executable(name: "tyger-server", targets: ["TygerServerMain"]),
    ],
    dependencies: [
        argumentParser, crypto, hummingbird, nio, nioExtras, nioSSL, serviceLifecycle, log, asyncHTTPClient, httpTypes,
        yams, grdb, postgres,
    ],
    targets: [
        // Layers (docs/architecture.md): a target depends only on targets of lower layers.
        // L0: isa-l (CRC32C, igzip), found through pkg-config; without it the build names the package to install.
        .systemLibrary(name: "CIsal", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        // L0: libdeflate (whole-buffer inflate), found through pkg-config the same way.
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // L0: C shims over isa-l, libdeflate, zlib and Linux-only syscalls (splice, renameat2).
        .target(name: "CTygerNative", dependencies: ["CIsal", "CDeflate"], linkerSettings: [.linkedLibrary("z")]),
        // L1: format, integrity, codecs, the block ring, the data-directory layout. No I/O.
        .target(
            name: "TygerCore",
            dependencies: ["CTygerNative", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // L2: descriptors, pipes, FIFOs, Dispatch I/O, the fast copy loops and every syscall wrapper.
        .target(
            name: "TygerIO",
            dependencies: ["TygerCore", "CTygerNative", "CTygerSpawn"],
            swiftSettings: swiftSettings
        ),
        // L3: blob stores.
        .target(
            name: "TygerStorage",
            dependencies: ["TygerCore", "TygerIO", "CTygerNative"],
            swiftSettings: swiftSettings
        ),
        // L4: the write and read pipelines (stdin -> ring -> encode -> blobs, and back).
        .target(
            name: "TygerDataPath",
            dependencies: ["TygerCore", "TygerIO", "TygerStorage"],
            swiftSettings: swiftSettings
        ),
        // L5: HTTP clients: the typed control-plane client, the data plane and the relay.
        .target(
            name: "TygerClient",
            dependencies: [
                "TygerCore", "TygerIO", "TygerStorage", "TygerModel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // L1: every wire type (buffers, codespecs, runs, pages, tags, error envelope, api-version), the JSON coder,
        // the RFC 3339 codec, the wall clock and the strict spec-file decoder. Foundation and Yams only.
        .target(
            name: "TygerModel",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // L5: buffers control plane: repository (in-memory, SQLite via GRDB), manager, expiry. No HTTP framework.
        .target(
            name: "TygerControlPlane",
            dependencies: [
                "TygerModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // L5: the control plane's repositories on PostgreSQL (PostgresNIO), for servers that share one database.
        .target(
            name: "TygerPostgres",
            dependencies: [
                "TygerControlPlane", "TygerRunEngine", "TygerModel",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // L7: the thin `tyger` executable.
        .executableTarget(
            name: "TygerCLI",
            dependencies: [
                "TygerCore", "TygerIO", "TygerStorage", "TygerDataPath", "TygerClient", "TygerModel", "TygerRunAgent",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // L6: the HTTP server and every route: data plane (Azure Blob subset), buffers, codespecs, runs and relay
        // controllers, signed URLs, tokens, listeners, the one error mapping and the one query decoder.
        .target(
            name: "TygerServer",
            dependencies: [
                "TygerCore", "TygerIO", "TygerStorage", "TygerModel", "TygerControlPlane", "TygerRunEngine",
                "TygerClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // L7: the thin `tyger-server` executable.
        .executableTarget(
            name: "TygerServerMain",
            dependencies: [
                "TygerServer", "TygerControlPlane", "TygerCore", "TygerIO", "TygerModel", "TygerRunEngine",
                "TygerContainers", "TygerPostgres", "TygerClient", "TygerStorage", "TygerKubernetes", "TygerSlurm",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // L0: posix_spawn with a new process group, default signals and a working directory; waitpid status decoding.
        .target(name: "CTygerSpawn"),
        // L5: runs: the engine, the lifecycle state machine, repositories, the local process executor. No HTTP
        // framework.
        .target(
            name: "TygerRunEngine",
            dependencies: [
                "CTygerSpawn", "TygerCore", "TygerIO", "TygerStorage", "TygerDataPath", "TygerModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // L6: runs in containers: a Docker Engine API client (Docker or Podman) and the executor on top of it.
        .target(
            name: "TygerContainers",
            dependencies: [
                "TygerRunEngine", "TygerModel", "TygerCore", "TygerIO",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // L6: runs as Slurm batch jobs: the executor (sbatch, squeue, scontrol, scancel) and its agents' reports.
        .target(
            name: "TygerSlurm",
            dependencies: [
                "TygerRunEngine", "TygerModel", "TygerIO",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // L6: the run agent a cluster job starts (`tyger run-agent`): pipes, the process, its buffers over HTTP, reports.
        .target(
            name: "TygerRunAgent",
            dependencies: [
                "TygerRunEngine", "TygerClient", "TygerDataPath", "TygerStorage", "TygerIO", "TygerCore", "TygerModel",
                "TygerContainers",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // L6: upstream's Kubernetes objects for a run, rendered from a run specification (on paper: no cluster here).
        .target(
            name: "TygerKubernetes",
            dependencies: ["TygerModel", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TygerTestSupport",
            dependencies: [
                "TygerIO", "TygerStorage", "TygerPostgres", "TygerClient",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TygerTestSupport",
            // Optimized even in debug builds: its payload generators and reference digests run in every test, in
            // parallel on two cores, and unoptimized they starve the tests that wait on time.
            swiftSettings: swiftSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        .testTarget(
            name: "TygerCoreTests",
            dependencies: ["TygerCore", "TygerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerIOTests",
            dependencies: ["TygerIO", "TygerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerStorageTests",
            dependencies: ["TygerStorage", "TygerClient", "TygerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerDataPathTests",
            dependencies: ["TygerDataPath", "TygerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerModelTests",
            dependencies: ["TygerModel", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerControlPlaneTests",
            dependencies: [
                "TygerControlPlane", "TygerModel", "TygerPostgres", "TygerTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerServerTests",
            dependencies: [
                "TygerServer", "TygerStorage", "TygerCore", "TygerModel", "TygerTestSupport", "TygerControlPlane",
                "TygerRunEngine", "TygerClient",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerRunEngineTests",
            dependencies: [
                "TygerRunEngine", "TygerModel", "TygerDataPath", "TygerStorage", "TygerIO", "TygerPostgres",
                "TygerTestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerCLITests",
            dependencies: ["TygerCore", "TygerClient", "TygerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerSlurmTests",
            dependencies: ["TygerSlurm", "TygerRunEngine", "TygerRunAgent", "TygerModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerKubernetesTests",
            dependencies: [
                "TygerKubernetes", "TygerModel", "TygerTestSupport", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerContainersTests",
            dependencies: [
                "TygerContainers", "TygerRunEngine", "TygerTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TygerClientTests",
            dependencies: [
                "TygerClient", "TygerModel", "TygerStorage", "TygerCore", "TygerIO", "TygerTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
