import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A network namespace of the test's own whose loopback is a bad link: `tbf` for the rate, `iptables -m statistic`
/// for loss (this kernel has no `netem`), a 1500-byte MTU. Only that namespace's loopback addresses carry traffic.
struct ShapedNamespace: Sendable {
    let name: String

    /// Whether this machine can make one: root, and `ip`, `tc` and `iptables` installed.
    static var available: Bool {
        getuid() == 0 && ["/usr/sbin/ip", "/usr/sbin/tc", "/usr/sbin/iptables"].allSatisfy(TestFiles.exists)
    }

    static func with<T>(_ body: (ShapedNamespace) async throws -> T) async throws -> T {
        let ns = ShapedNamespace(name: "tyger-shaped-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try await ns.run("/usr/sbin/ip", ["netns", "add", ns.name])
        do {
            try await ns.run("/usr/sbin/ip", ["-n", ns.name, "link", "set", "lo", "up"])
            try await ns.run("/usr/sbin/ip", ["-n", ns.name, "link", "set", "lo", "mtu", "1500"])
            let result = try await body(ns)
            _ = try? await ns.run("/usr/sbin/ip", ["netns", "del", ns.name])
            return result
        } catch {
            _ = try? await ns.run("/usr/sbin/ip", ["netns", "del", ns.name])
            throw error
        }
    }

    /// Shapes the loopback: `rate` (tbf) and `lossPercent` of packets dropped on input.
    func shape(rate: String, lossPercent: Int) async throws {
        try await run(
            "/usr/sbin/tc",
            [
                "-n", name, "qdisc", "replace", "dev", "lo", "root", "tbf", "rate", rate, "burst", "32kbit", "latency",
                "400ms",
            ]
        )
        try await run(
            "/usr/sbin/ip",
            [
                "netns", "exec", name, "iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random",
                "--probability", String(Double(lossPercent) / 100), "-j", "DROP",
            ]
        )
    }

    /// Takes the shaping off again.
    func unshape() async throws {
        try await run("/usr/sbin/tc", ["-n", name, "qdisc", "del", "dev", "lo", "root"])
        try await run("/usr/sbin/ip", ["netns", "exec", name, "iptables", "-F", "INPUT"])
    }

    /// The command that runs a program inside the namespace.
    var launcher: [String] { ["/usr/sbin/ip", "netns", "exec", name] }

    @discardableResult
    private func run(_ executable: String, _ arguments: [String]) async throws -> ProcessResult {
        let result = try await runProcess(executable, arguments, timeout: .seconds(30))
        guard result.exitCode == 0 else {
            throw TestSupportError("\(executable) \(arguments.joined(separator: " ")): \(result)")
        }
        return result
    }
}

/// Over a bad link (2 Mbit/s, 5 % loss), an 8 MiB write in 4 MiB blocks fails with a fixed 5 s request timeout (a
/// block needs 16 s at that rate, or more) and completes with the adaptive one, written at the same time.
@Suite(.serialized, .enabled(if: ShapedNamespace.available, "needs root, ip, tc and iptables"))
struct AdaptiveTransferCLITests {
    @Test func aFixedTimeoutFailsOnASlowLossyLinkWhereTheAdaptiveClientCompletes() async throws {
        try await ShapedNamespace.with { ns in
            try await withTemporaryDirectory { dir in
                let server = try await ServerProcess.start(
                    dataDirectory: dir + "/data",
                    arguments: ["--tcp", "127.0.0.1:0", "--no-unix-socket"],
                    launcher: ns.launcher
                )
                defer { Task { _ = try? await server.stop() } }
                let tyger = try TygerBinary.path()
                let token = try await TygerServerBinary.createToken(dataDirectory: dir + "/data")
                let home = try CLIHome()
                defer { Task { await home.tearDown() } }
                func run(_ arguments: [String], input: ChildInput = .null) async throws -> ProcessResult {
                    try await runProcess(
                        ns.launcher[0],
                        Array(ns.launcher.dropFirst()) + [tyger] + arguments,
                        input: input,
                        environment: home.environment,
                        timeout: .seconds(120)
                    )
                }
                let endpoint = try #require(server.tcpEndpoint)
                let login = try await run(["login", endpoint, "--token", token])
                try #require(login.exitCode == 0, "\(login)")
                let fixedID = try await run(["buffer", "create"]).stdoutText.trimmingCharacters(
                    in: .whitespacesAndNewlines
                )
                let adaptiveID = try await run(["buffer", "create"]).stdoutText.trimmingCharacters(
                    in: .whitespacesAndNewlines
                )
                let input = Payload.random(count: 8 << 20, seed: 42)

                try await ns.shape(rate: "2mbit", lossPercent: 5)
                // Side by side on the same link, so the test stays under a minute.
                async let fixedWrite = run(
                    ["buffer", "write", fixedID, "--block-size", "4M", "--request-timeout", "5s"],
                    input: .bytes(input)
                )
                async let adaptiveWrite = run(
                    ["buffer", "write", adaptiveID, "--block-size", "4M"],
                    input: .bytes(input)
                )
                let (fixed, adaptive) = try await (fixedWrite, adaptiveWrite)
                #expect(fixed.exitCode == 1, "\(fixed)")
                #expect(fixed.stderrText.contains("no answer within 5 s (the request timeout)"), "\(fixed)")
                #expect(adaptive.exitCode == 0, "\(adaptive)")
                try await ns.unshape()
                let read = try await run(["buffer", "read", adaptiveID])
                #expect(read.exitCode == 0, "\(read)")
                #expect(mismatch(read.stdout, input) == nil, "the adaptive write stored other bytes")
            }
        }
    }
}
