// swift-tools-version:6.1
import PackageDescription

// A stand-in for ordo-one/swift-runtime-interposer, which has no local copy on this machine.
//
// package-benchmark 1.38.1 declares that dependency on Linux with Swift 6.3 whether or not its `RuntimeInterposer`
// trait is enabled. Our Benchmarks package enables only `MallocInterposer`, so this product is never linked: it only
// has to exist for the package graph to resolve. tools/run-benchmarks points RUNTIME_INTERPOSER_LOCAL_PATH here.
// The folder must be named exactly `swift-runtime-interposer`: that is the package identity package-benchmark uses.
let package = Package(
    name: "swift-runtime-interposer",
    products: [
        .library(name: "SwiftRuntimeInterposerSwift", targets: ["SwiftRuntimeInterposerSwift"])
    ],
    targets: [
        .target(name: "SwiftRuntimeInterposerSwift")
    ]
)
