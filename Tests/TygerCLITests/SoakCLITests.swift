import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

extension LiveServerCLITests {
    /// A bounded soak of one `tyger-server` on loopback TCP: 1,000 buffer creates, 64 parallel transfers (each verified)
    /// and 200 short runs at once, with no error and a server peak RSS (`VmHWM`) of at most 300 MiB. `TYGER_SOAK_SCALE`
    /// (percent) scales the counts.
    @Suite(.serialized, .timeLimit(.minutes(20))) struct SoakCLITests {
        static func scaled(_ n: Int) -> Int { max(1, n * FaultSettings.soakPercent / 100) }

        /// The peak resident set of a process, in KiB.
        static func peakRSS(_ pid: Int32) -> Int? {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
            else { return nil }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }

        @Test func loopbackSoak() async throws {
            let creates = Self.scaled(1000)
            let transfers = Self.scaled(64)
            let runs = Self.scaled(200)
            try await FaultTrialEnvironment.with(.tcp) { env in
                let server = try #require(env.server)
                let script = """
                    set -e
                    cd '\(env.directory)'
                    printf 'name: soaktrue\\nimage: ubuntu\\ncommand: [sh, -c, "exit 0", \(env.marker)]\\n' > soak.yml
                    "$TYGER" codespec create -f soak.yml > /dev/null
                    # 1,000 creates, 16 at a time.
                    seq \(creates) | xargs -P 16 -I{} sh -c '"$TYGER" buffer create --tag soak=c > /dev/null'
                    test "$("$TYGER" buffer list --tag soak=c --limit 2000 | grep -c '"id"')" = \(creates)
                    # 64 transfers at once, each verified.
                    gen=$("$TYGER" buffer gen 4M | sha256sum | cut -d' ' -f1)
                    seq \(transfers) | xargs -P \(transfers) -I{} sh -c '
                        id=$("$TYGER" buffer create) &&
                        "$TYGER" buffer gen 4M | "$TYGER" buffer write "$id" -b 256K &&
                        test "$("$TYGER" buffer read "$id" | sha256sum | cut -d" " -f1)" = '"$gen"' || { echo "transfer {} failed" >&2; exit 1; }'
                    # 200 short runs at once.
                    seq \(runs) | xargs -P 50 -I{} sh -c '"$TYGER" run create --codespec soaktrue --run-tag soak=r > /dev/null'
                    # A time without a zone is local time, as `date` prints it under the same TZ.
                    test "$("$TYGER" run list --since "$(date -d '+1 hour' +%Y-%m-%dT%H:%M:%S)" | grep -c '"id"' || true)" = 0
                    test "$("$TYGER" run list --since "$(date -d '-1 hour' +%Y-%m-%dT%H:%M:%S)" --limit 1 | grep -c '"id"')" = 1
                    """
                let started = ContinuousClock.now
                let result = try await runShell(script, environment: env.environment, timeout: .seconds(900))
                #expect(result.exitCode == 0, "\(result)")
                // Every run ends, and succeeds.
                let ended = await eventually(timeout: .seconds(300), every: .seconds(1)) {
                    let counts = try? await env.tyger(["run", "count", "--tag", "soak=r"])
                    let object = counts.flatMap {
                        try? JSONSerialization.jsonObject(with: Data($0.stdout)) as? [String: Int]
                    }
                    return (object?["succeeded"] ?? object?["Succeeded"] ?? 0) >= runs
                }
                let counts = try await env.tyger(["run", "count", "--tag", "soak=r"])
                #expect(ended, "not every run succeeded: \(counts)")
                let rss = try #require(Self.peakRSS(server.process.pid), "no VmHWM for the server")
                #expect(rss <= 300 * 1024, "server peak RSS \(rss / 1024) MiB")
                #expect(await env.serverAnswers())
                let elapsed = ContinuousClock.now - started
                FaultSettings.report(
                    "soak (loopback TCP): \(creates) creates, \(transfers) parallel 4 MiB transfers, \(runs) runs; "
                        + "server peak RSS \(rss / 1024) MiB; \(elapsed.components.seconds) s"
                )
            }
        }
    }
}
