import Foundation
import Testing
import TygerTestSupport

// Runs as Slurm batch jobs (`--executor slurm`) on the real single-node cluster `tools/slurm` starts (tools/test sets
// TYGER_TEST_SLURM_CONF): each job runs `tyger run-agent`, which moves the run's buffers through access URLs and
// reports to the server. Skipped where no cluster runs.

/// The cluster's `SLURM_CONF`, when tools/test started one.
enum SlurmTestCluster {
    static var configuration: String? {
        guard let path = ProcessInfo.processInfo.environment["TYGER_TEST_SLURM_CONF"], !path.isEmpty else {
            return nil
        }
        return path
    }

    /// What makes the embedded server run codespecs as Slurm jobs.
    static var environment: [String: String] {
        ["TYGER_EXECUTOR": "slurm", "TYGER_TCP": "127.0.0.1:0", "SLURM_CONF": configuration ?? "/nonexistent"]
    }

    /// `squeue -t all` of the cluster: job ID → (name, state, comment, user).
    static func jobs() async throws -> [String: (name: String, state: String, comment: String, user: String)] {
        let listed = try await runProcess(
            "/usr/bin/squeue",
            ["-h", "-t", "all", "-o", "%i|%j|%T|%k|%u"],
            environment: ["SLURM_CONF": configuration ?? ""]
        )
        try #require(listed.exitCode == 0, "\(listed)")
        var jobs: [String: (String, String, String, String)] = [:]
        for line in listed.stdoutText.split(separator: "\n") {
            let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 5 { jobs[parts[0]] = (parts[1], parts[2], parts[3], parts[4]) }
        }
        return jobs
    }

    /// The instance ID of the session's server (its jobs' comments and its containers' labels carry it).
    static func instance(of session: TygerSession) throws -> String {
        String(decoding: try TestFiles.read(session.home + "/server/instance-id"), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The jobs of run `id` of the session's server (their comment is `tyger:<instance>:<id>:<replica>`).
    static func jobs(
        ofRun id: String,
        _ session: TygerSession
    ) async throws -> [(id: String, name: String, state: String, user: String)] {
        let instance = try instance(of: session)
        return try await jobs().compactMap { job, info in
            info.comment.hasPrefix("tyger:\(instance):\(id):") ? (job, info.name, info.state, info.user) : nil
        }.sorted { $0.name < $1.name }
    }
}

@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: SlurmTestCluster.configuration != nil))
struct SlurmRunCLITests {
    private func withSlurm<T>(
        _ extra: [String: String] = [:],
        _ body: (TygerSession) async throws -> T
    ) async throws -> T {
        try await withTyger(environment: SlurmTestCluster.environment.merging(extra) { _, b in b }, body)
    }

    @Test func runExecMovesStoredBuffersThroughASlurmJob() async throws {
        try await withSlurm { s in
            try s.file("upper.yml", upperRunYAML)
            let exec = try await s.shell(
                #"$TYGER buffer gen 64M > in.bin && "$TYGER" run exec -f upper.yml < in.bin > out.bin && tr a-z A-Z < in.bin | cmp - out.bin"#,
                timeout: .seconds(120)
            )
            #expect(exec.exitCode == 0, "\(exec)")
            #expect(exec.stderrText.contains("Succeeded"), "\(exec)")
            let runs = try jsonArray(try await s.tyger(["run", "list"]))
            let id = try #require(runs.first?["id"].map { "\($0)" }, "\(runs)")
            // The run was a Slurm job of this server, named after it, and it completed.
            let jobs = try await SlurmTestCluster.jobs(ofRun: id, s)
            #expect(jobs.count == 1, "\(jobs)")
            #expect(jobs.first?.name == "tyger-run-\(id)", "\(jobs)")
            #expect(jobs.first?.state == "COMPLETED", "\(jobs)")
            // Its log lines came back from the job, with the job's environment (no server variables).
            let logs = try await s.tyger(["run", "logs", id])
            #expect(logs.stdoutText.contains("copying on "), "\(logs)")
            #expect(logs.stdoutText.contains("TYGER_RUN_ID=\(id)"), "\(logs)")
            #expect(!logs.stdoutText.contains("TYGER_HOME="), "\(logs)")
            let status = try await s.tyger(["api", "status"])
            #expect(status.stdoutText.contains(#""kind" : "slurm""#) || status.stdoutText.contains(#""kind": "slurm""#))
            #expect(status.stdoutText.contains("NodePools"), "\(status)")
            #expect(status.stdoutText.contains("DistributedRuns"), "\(status)")
        }
    }

    @Test func exitCodesTimeoutsAndCancelsEndTheJobAndTheRun() async throws {
        try await withSlurm { s in
            try s.file("fail.yml", scriptRun("echo failing; exit 3"))
            let failed = try await s.tyger(["run", "exec", "-f", s.directory + "/fail.yml"], timeout: .seconds(60))
            #expect(failed.exitCode == 1, "\(failed)")
            #expect(failed.stderrText.contains("exited with code 3"), "\(failed)")

            // The deadline bites: the job gets SIGTERM (the trap logs it) and the run fails for its timeout.
            try s.file(
                "slow.yml",
                scriptRun(#"trap 'echo got TERM; exit 7' TERM; echo sleeping; sleep 300 & wait"#, timeout: 15)
            )
            let slow = try await s.tyger(["run", "exec", "-f", s.directory + "/slow.yml"], timeout: .seconds(60))
            #expect(slow.exitCode == 1, "\(slow)")
            #expect(slow.stderrText.contains("timeout"), "\(slow)")
            let slowID = try #require(
                try jsonArray(try await s.tyger(["run", "list"])).first?["id"].map { "\($0)" }
            )
            let logs = try await s.tyger(["run", "logs", slowID])
            #expect(logs.stdoutText.contains("got TERM"), "\(logs)")

            try s.file("long.yml", scriptRun(#"echo started; sleep 300"#))
            let long = try await s.createRun(["-f", s.directory + "/long.yml"])
            _ = try await s.waitForStatus(long, in: ["Running"], timeout: .seconds(30))
            let canceled = try await s.tyger(["run", "cancel", long])
            #expect(canceled.exitCode == 0, "\(canceled)")
            _ = try await s.waitForStatus(long, in: ["Canceled"], timeout: .seconds(30))
            try await slurmEventually(timeout: .seconds(30)) {
                let jobs = try await SlurmTestCluster.jobs(ofRun: long, s)
                return jobs.count == 1 && !["PENDING", "RUNNING", "COMPLETING"].contains(jobs[0].state)
            }
        }
    }

    @Test func aJobThatOutlivesItsSignedURLsHasThemRenewed() async throws {
        // URLs that last 30 s (test-only; 24 h otherwise) and a job that sleeps past them before it reads its input,
        // writes its output and logs: its agent renews the report URL before it expires (the log lines and the exit
        // report get through) and a buffer URL refused as expired. A timeout over 24 h is accepted.
        try await withSlurm(["TYGER_TEST_AGENT_URL_LIFETIME": "30"]) { s in
            try s.file("late.yml", lateUpperRunYAML)
            let started = Date()
            let exec = try await s.shell(
                #"$TYGER buffer gen 8M > in.bin && "$TYGER" run exec -f late.yml < in.bin > out.bin && tr a-z A-Z < in.bin | cmp - out.bin"#,
                timeout: .seconds(180)
            )
            #expect(exec.exitCode == 0, "\(exec)")
            #expect(Date().timeIntervalSince(started) > 38, "the job slept 38 s")
            let runs = try jsonArray(try await s.tyger(["run", "list"]))
            let id = try #require(runs.first?["id"].map { "\($0)" }, "\(runs)")
            let show = try await s.show(id)
            #expect("\(show["timeoutSeconds"] ?? "")" == "100000", "\(show)")
            let logs = try await s.tyger(["run", "logs", id])
            #expect(logs.stdoutText.contains("before the URLs expire"), "\(logs)")
            #expect(logs.stdoutText.contains("after they expired"), "\(logs)")
            // The job's own launch document had URLs of 30 s.
            let job = try #require(try await SlurmTestCluster.jobs(ofRun: id, s).first)
            let launch = try await launchDocument(ofJob: job.id)
            let expiresAt = try #require((launch["expiresAt"] as? String).flatMap(parseRFC3339), "\(launch)")
            #expect(expiresAt.timeIntervalSince(started) < 60, "\(launch)")
        }
    }

    @Test(.enabled(if: TestExecutor.dockerHost != nil))
    func jobsRunTheCodespecsImageInTheMachinesContainerEngine() async throws {
        // `--slurm-container-host`: the agent runs the process as a container of the machine's engine (the test
        // cluster's machine is this one, and the engine is the test Podman). Stored buffers reach it through pipes
        // mounted in the container; the image's non-root user can use them.
        try await withSlurm(["TYGER_SLURM_CONTAINER_HOST": TestExecutor.dockerHost ?? ""]) { s in
            try s.file(
                "inside.yml",
                #"""
                job:
                  codespec:
                    image: localhost/tyger-test/busybox-nobody
                    buffers:
                      inputs: ["input"]
                      outputs: ["output"]
                    env:
                      WHERE: "$(INPUT_PIPE)"
                    command: ["sh", "-c"]
                    args:
                      - |
                        echo "image=$(cat /tyger-image.txt) user=$(id -u) pipe=$WHERE pwd=$PWD"
                        env | grep -c SLURM_ || true
                        tr a-z A-Z < "$INPUT_PIPE" > "$OUTPUT_PIPE"
                """#
            )
            let exec = try await s.shell(
                #"$TYGER buffer gen 16M > in.bin && "$TYGER" run exec -f inside.yml < in.bin > out.bin && tr a-z A-Z < in.bin | cmp - out.bin"#,
                timeout: .seconds(180)
            )
            #expect(exec.exitCode == 0, "\(exec)")
            let id = try #require(try jsonArray(try await s.tyger(["run", "list"])).first?["id"].map { "\($0)" })
            let logs = try await s.tyger(["run", "logs", id]).stdoutText
            #expect(logs.contains("image=busybox user=65534 pipe=/run/secrets/\(id)/pipes/input.pipe pwd=/"), "\(logs)")
            #expect(logs.split(separator: "\n").contains("0"), "Slurm's variables reached the container: \(logs)")
            let jobs = try await SlurmTestCluster.jobs(ofRun: id, s)
            #expect(jobs.first?.state == "COMPLETED", "\(jobs)")
            let status = try await s.tyger(["api", "status"])
            #expect(status.stdoutText.contains("Docker"), "\(status)")
            // The container carried this server's instance and is gone.
            let left = try await containers(label: "tyger-instance=\(try SlurmTestCluster.instance(of: s))")
            #expect(left.isEmpty, "\(left)")

            // Two replicas without buffers (each its own container, named after its replica, on one machine), in the
            // codespec's working directory inside the image.
            try s.file(
                "replicas.yml",
                """
                job:
                  replicas: 2
                  codespec:
                    image: localhost/tyger-test/busybox-nobody
                    workingDir: /tyger-not-on-the-host
                    command: ["sh", "-c", "echo replica $TYGER_REPLICA_INDEX in $PWD"]
                """
            )
            let replicas = try await s.tyger(
                ["run", "exec", "-f", s.directory + "/replicas.yml"],
                timeout: .seconds(90)
            )
            #expect(replicas.exitCode == 0, "\(replicas)")
            let replicasID = try #require(
                try jsonArray(try await s.tyger(["run", "list"])).first?["id"].map { "\($0)" }
            )
            let replicaLogs = try await s.tyger(["run", "logs", replicasID]).stdoutText
            for index in 0..<2 {
                #expect(replicaLogs.contains("replica \(index) in /tyger-not-on-the-host"), "\(replicaLogs)")
            }
            #expect(!FileManager.default.fileExists(atPath: "/tyger-not-on-the-host"))

            // An image the machine's engine does not have and cannot pull (no registry on that port): the run fails
            // naming it.
            try s.file(
                "missing.yml",
                "job:\n  codespec:\n    image: 127.0.0.1:9/tyger-test/not-there:1\n    command: [\"true\"]\n"
            )
            let missing = try await s.tyger(["run", "exec", "-f", s.directory + "/missing.yml"], timeout: .seconds(90))
            #expect(missing.exitCode != 0, "\(missing)")
            #expect(missing.stderrText.contains("127.0.0.1:9/tyger-test/not-there:1"), "\(missing)")
        }
    }

    @Test func jobsReachAServerOverHTTPSWithItsOwnCA() async throws {
        // A server whose TLS certificate comes from a CA of its own: its jobs' agents trust it through
        // `--slurm-ca-cert` (the launch document carries the PEM); without it they cannot reach the server and the run
        // fails.
        try await withTemporaryDirectory(prefix: "tyger-slurm-tls") { dir in
            try await makeTestCertificates(in: dir)
            try TestFiles.write(
                Array(
                    "job:\n  codespec:\n    image: none\n    buffers:\n      inputs: [input]\n      outputs: [output]\n    command: [sh, -c, \"tr a-z A-Z < $INPUT_PIPE > $OUTPUT_PIPE\"]\n"
                        .utf8
                ),
                to: dir + "/upper.yml"
            )
            let input = Payload.random(count: 3_000_000, seed: 7)
            let expected = input.map { (0x61...0x7A).contains($0) ? $0 - 0x20 : $0 }
            for trusted in [true, false] {
                let data = dir + "/server-\(trusted)"
                var arguments = [
                    "--tcp", "127.0.0.1:0", "--tls-cert", dir + "/cert.pem", "--tls-key", dir + "/key.pem",
                    "--executor", "slurm",
                ]
                if trusted { arguments += ["--slurm-ca-cert", dir + "/ca.pem"] }
                try await withServer(
                    dataDirectory: data,
                    arguments: arguments,
                    environment: ["SLURM_CONF": SlurmTestCluster.configuration ?? ""]
                ) { server in
                    let endpoint = try #require(server.tcpEndpoint)
                    #expect(endpoint.hasPrefix("https://127.0.0.1:"), "\(endpoint)")
                    let token = try await TygerServerBinary.createToken(dataDirectory: data)
                    try await withCLIHome { home in
                        let login = try await home.run([
                            "login", endpoint, "--token", token, "--ca-cert", dir + "/ca.pem",
                        ])
                        try #require(login.exitCode == 0, "\(login)")
                        let exec = try await home.run(
                            ["run", "exec", "-f", dir + "/upper.yml"],
                            input: .bytes(input),
                            timeout: .seconds(120)
                        )
                        if trusted {
                            #expect(exec.exitCode == 0, "\(exec)")
                            #expect(mismatch(exec.stdout, expected) == nil)
                        } else {
                            #expect(exec.exitCode != 0, "\(exec)")
                            #expect(exec.stderrText.contains("without its agent's report"), "\(exec)")
                        }
                    }
                }
            }
        }
    }

    @Test func aJobQueuedLongerThanItsURLsLastRenewsThemWhenItStarts() async throws {
        // URLs of 30 s (test-only) and a job held in the queue for 35 s: its agent starts with expired URLs and renews
        // them with the one it holds (genuine, expired, the run live), then moves its buffers and reports.
        try await withSlurm(["TYGER_TEST_AGENT_URL_LIFETIME": "30"]) { s in
            try s.file("upper.yml", upperRunYAML)
            let made = try await s.shell(
                #"id=$("$TYGER" buffer create) && printf 'queued a while\n' | "$TYGER" buffer write "$id" && echo "$id""#
            )
            try #require(made.exitCode == 0, "\(made)")
            let input = made.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            let id = try await s.createRun([
                "-f", s.directory + "/upper.yml", "--node-pool", "queued", "-b", "input=" + input,
            ])
            try await slurmEventually(timeout: .seconds(30)) {
                try await SlurmTestCluster.jobs(ofRun: id, s).first?.state == "PENDING"
            }
            try await Task.sleep(for: .seconds(35))
            try await queuedPartition("UP")
            let ended: [String: Any]
            do {
                ended = try await s.waitForStatus(id, in: ["Succeeded", "Failed"], timeout: .seconds(60))
            } catch {
                try? await queuedPartition("DOWN")
                throw error
            }
            try await queuedPartition("DOWN")
            #expect(ended["status"] as? String == "Succeeded", "\(ended)")
            let output = try #require((ended["job"] as? [String: Any])?["buffers"] as? [String: Any])["output"]
            let read = try await s.tyger(["buffer", "read", "\(output ?? "")"])
            #expect(read.stdoutText == "QUEUED A WHILE\n", "\(read)")
        }
    }

    @Test func aJobSlurmEndsFailsTheRunWithSlurmsStateAndReason() async throws {
        // Cancelled by someone else than the server (`scancel` by hand; a node that fails or a preemption take the
        // same path): the agent still reports the process's exit, and the run says what Slurm did.
        try await withSlurm { s in
            try s.file("long.yml", scriptRun(#"trap 'echo got TERM; exit 143' TERM; echo started; sleep 300 & wait"#))
            let id = try await s.createRun(["-f", s.directory + "/long.yml"])
            _ = try await s.waitForStatus(id, in: ["Running"], timeout: .seconds(30))
            let job = try #require(try await SlurmTestCluster.jobs(ofRun: id, s).first)
            let cancelled = try await runProcess(
                "/usr/bin/scancel",
                [job.id],
                environment: ["SLURM_CONF": SlurmTestCluster.configuration ?? ""]
            )
            try #require(cancelled.exitCode == 0, "\(cancelled)")
            let run = try await s.waitForStatus(id, in: ["Failed"], timeout: .seconds(30))
            let reason = "\(run["statusReason"] ?? "")"
            #expect(reason.contains("the Slurm job \(job.id) ended CANCELLED"), "\(run)")
            #expect(reason.contains("143"), "\(run)")
            let logs = try await s.tyger(["run", "logs", id])
            #expect(logs.stdoutText.contains("got TERM"), "\(logs)")
        }
    }

    @Test func ephemeralBuffersAreRelayedThroughTheServerToTheJob() async throws {
        try await withSlurm { s in
            try s.file("upper.yml", upperRunYAML)
            let exec = try await s.shell(
                #"$TYGER buffer gen 32M | tee in.bin | "$TYGER" run exec -f upper.yml -b input=_ -b output=_ > out.bin && tr a-z A-Z < in.bin | cmp - out.bin"#,
                timeout: .seconds(120)
            )
            #expect(exec.exitCode == 0, "\(exec)")
            // Nothing was stored: the run's buffers are its ephemeral ones.
            let listed = try jsonArray(try await s.tyger(["buffer", "list"]))
            #expect(listed.isEmpty, "\(listed)")
        }
    }

    @Test func clustersAndNodePoolsAreTheClustersNameAndPartitions() async throws {
        try await withSlurm { s in
            try s.file("echo.yml", scriptRun("echo placed"))
            let spec = s.directory + "/echo.yml"
            let placed = try await s.tyger(["run", "exec", "-f", spec, "--cluster", "tyger", "--node-pool", "debug"])
            #expect(placed.exitCode == 0, "\(placed)")
            let id = try #require(try jsonArray(try await s.tyger(["run", "list"])).first?["id"].map { "\($0)" })
            #expect(try await s.show(id)["cluster"] as? String == "tyger")
            let pool = try await s.tyger(["run", "create", "-f", spec, "--node-pool", "gpu-nodes"])
            #expect(pool.exitCode == 1, "\(pool)")
            #expect(pool.stderrText.contains("Unknown nodepool 'gpu-nodes'"), "\(pool)")
            let cluster = try await s.tyger(["run", "create", "-f", spec, "--cluster", "elsewhere"])
            #expect(cluster.exitCode == 1, "\(cluster)")
            #expect(cluster.stderrText.contains("Unknown cluster 'elsewhere'"), "\(cluster)")
        }
    }

    @Test func aRunStaysPendingWhileSlurmKeepsItsJobQueued() async throws {
        // The test cluster's partition `queued` is down: Slurm accepts jobs there and keeps them queued
        // (PartitionDown) until it is brought up. Only this suite's tests use it, one at a time.
        func partition(_ state: String) async throws { try await queuedPartition(state) }
        try await withSlurm { s in
            try s.file("echo.yml", scriptRun("echo ran"))
            let spec = s.directory + "/echo.yml"
            let id = try await s.createRun(["-f", spec, "--node-pool", "queued"])
            try await slurmEventually(timeout: .seconds(30), "the run never said why it is queued") {
                let reason = try await s.show(id)["statusReason"] as? String ?? ""
                return reason.hasPrefix("Slurm job ") && reason.hasSuffix(" is queued (PartitionDown)")
            }
            let jobs = try await SlurmTestCluster.jobs(ofRun: id, s)
            #expect(jobs.count == 1 && jobs.first?.state == "PENDING", "\(jobs)")
            let queued = try await s.show(id)
            #expect(queued["status"] as? String == "Pending", "\(queued)")
            #expect(queued["runningCount"] == nil, "\(queued)")
            #expect(queued["startedAt"] == nil, "\(queued)")

            // Once the partition is up the job runs: the run goes Running, then succeeds.
            try await partition("UP")
            do {
                let states = try await s.tyger(["run", "watch", id], timeout: .seconds(60))
                #expect(states.exitCode == 0, "\(states)")
                #expect(states.stdoutText.contains("Running"), "\(states)")
                #expect(states.stdoutText.contains("Succeeded"), "\(states)")
                let ended = try await s.show(id)
                #expect(ended["statusReason"] == nil, "\(ended)")
                #expect(ended["startedAt"] != nil, "\(ended)")
            } catch {
                try? await partition("DOWN")
                throw error
            }
            try await partition("DOWN")

            // A queued run that is canceled ends Canceled, and its job with it.
            let second = try await s.createRun(["-f", spec, "--node-pool", "queued"])
            try await slurmEventually(timeout: .seconds(30)) {
                try await SlurmTestCluster.jobs(ofRun: second, s).first?.state == "PENDING"
            }
            #expect(try await s.show(second)["status"] as? String == "Pending")
            let canceled = try await s.tyger(["run", "cancel", second])
            #expect(canceled.exitCode == 0, "\(canceled)")
            _ = try await s.waitForStatus(second, in: ["Canceled"], timeout: .seconds(30))
            try await slurmEventually(timeout: .seconds(30)) {
                try await SlurmTestCluster.jobs(ofRun: second, s).first?.state == "CANCELLED"
            }
        }
    }

    @Test func workersAreJobsOfTheirOwnThatTheJobFindsOnTheirMachines() async throws {
        try await withSlurm { s in
            let spec = try s.file(
                "distributed.yml",
                workerProbingRun(
                    jobImage: "none",
                    worker: """
                        worker:
                          codespec:
                            kind: worker
                            image: none
                            endpoints: {http: 8080}
                            command: [/usr/bin/python3, -m, http.server, --bind, 127.0.0.1]
                            args: ["$(TYGER_HTTP_PORT)"]
                          replicas: 2

                        """
                )
            )
            let exec = try await s.tyger(["run", "exec", "-f", spec], timeout: .seconds(120))
            #expect(exec.exitCode == 0, "\(exec)")
            let lines = exec.stdoutText.split(separator: "\n").map(String.init)
            // The test cluster's node has NodeAddr=127.0.0.1.
            #expect(lines.first == #"["127.0.0.1","127.0.0.1"]"#, "\(exec)")
            let answers = lines.dropFirst()
            #expect(answers.count == 2, "\(exec)")
            for answer in answers { #expect(answer.contains(" HTTP/1.0 200 OK "), "\(answer)") }
            #expect(Set(answers.map { $0.split(separator: " ").first }).count == 2, "two workers, two ports: \(lines)")
            let id = try #require(try jsonArray(try await s.tyger(["run", "list"])).first?["id"].map { "\($0)" })
            let logs = try await s.tyger(["run", "logs", id])
            #expect(logs.stdoutText.contains("[worker-0] "), "\(logs)")
            #expect(logs.stdoutText.contains("[worker-1] "), "\(logs)")
            // Three jobs: the workers' and the job's; the workers' end with the job.
            let jobs = try await SlurmTestCluster.jobs(ofRun: id, s)
            #expect(
                jobs.map(\.name) == ["tyger-run-\(id)", "tyger-run-\(id)-worker-0", "tyger-run-\(id)-worker-1"],
                "\(jobs)"
            )
            try await slurmEventually(timeout: .seconds(30), "the workers' jobs outlived the run") {
                try await SlurmTestCluster.jobs(ofRun: id, s).allSatisfy {
                    !["PENDING", "RUNNING", "COMPLETING"].contains($0.state)
                }
            }
        }
    }

    @Test func jobsRunAsTheConfiguredUser() async throws {
        // The agent must be where `nobody` can run it: a copy outside the build directory (whose parents may be
        // private on a CI machine).
        try await withTemporaryDirectory(prefix: "tyger-slurm-agent") { agent in
            let copied = try await runShell(
                "cp '\(try TygerBinary.path())' '\(agent)/tyger' && chmod 755 '\(agent)' '\(agent)/tyger'"
            )
            try #require(copied.exitCode == 0, "\(copied)")
            try await withSlurm(["TYGER_SLURM_USER": "nobody", "TYGER_SLURM_AGENT": agent + "/tyger"]) { s in
                try s.file(
                    "whoami.yml",
                    upperRunYAML.replacingOccurrences(of: "copying on $(hostname)", with: "user $(id -un)")
                )
                let exec = try await s.shell(#"echo abc | "$TYGER" run exec -f whoami.yml"#, timeout: .seconds(60))
                #expect(exec.exitCode == 0, "\(exec)")
                #expect(exec.stdoutText == "ABC\n", "\(exec)")
                let id = try #require(try jsonArray(try await s.tyger(["run", "list"])).first?["id"].map { "\($0)" })
                let logs = try await s.tyger(["run", "logs", id])
                #expect(logs.stdoutText.contains("user nobody"), "\(logs)")
                #expect(try await SlurmTestCluster.jobs(ofRun: id, s).first?.user == "nobody")
            }
        }
    }

    @Test func replicasAreJobsOfTheirOwnWithPrefixedLogs() async throws {
        try await withSlurm { s in
            try s.file("replicas.yml", scriptRun(#"echo "I am $TYGER_REPLICA_INDEX""#, replicas: 2))
            let exec = try await s.tyger(["run", "exec", "-f", s.directory + "/replicas.yml"], timeout: .seconds(60))
            #expect(exec.exitCode == 0, "\(exec)")
            let id = try #require(try jsonArray(try await s.tyger(["run", "list"])).first?["id"].map { "\($0)" })
            let jobs = try await SlurmTestCluster.jobs(ofRun: id, s)
            #expect(jobs.map(\.name) == ["tyger-run-\(id)-0", "tyger-run-\(id)-1"], "\(jobs)")
            let logs = try await s.tyger(["run", "logs", id])
            #expect(logs.stdoutText.contains("[replica-0] I am 0"), "\(logs)")
            #expect(logs.stdoutText.contains("[replica-1] I am 1"), "\(logs)")
        }
    }

    @Test func aJobWhoseAgentNeverReportsFailsTheRunWithTheJobsState() async throws {
        try await withSlurm(["TYGER_SLURM_AGENT": "/nonexistent/tyger"]) { s in
            try s.file("echo.yml", scriptRun("echo never"))
            let exec = try await s.tyger(["run", "exec", "-f", s.directory + "/echo.yml"], timeout: .seconds(60))
            #expect(exec.exitCode == 1, "\(exec)")
            #expect(exec.stderrText.contains("ended FAILED"), "\(exec)")
            #expect(exec.stderrText.contains("without its agent's report"), "\(exec)")
        }
    }

    @Test func aCanceledRunsOutputEndsFailedNotComplete() async throws {
        try await withSlurm { s in
            // The process writes part of its output and keeps the pipe open: a cancel must not complete the buffer.
            try s.file(
                "partial.yml",
                """
                job:
                  codespec:
                    image: none
                    buffers:
                      outputs: ["output"]
                    command: ["sh", "-c", "exec 3> \\"$OUTPUT_PIPE\\"; echo partial >&3; sleep 300"]
                """
            )
            let id = try await s.createRun(["-f", s.directory + "/partial.yml"])
            _ = try await s.waitForStatus(id, in: ["Running"], timeout: .seconds(30))
            let buffers = try #require((try await s.show(id)["job"] as? [String: Any])?["buffers"] as? [String: Any])
            let output = try #require(buffers["output"] as? String)
            // The first line is stored once the agent flushed it (every second).
            try await Task.sleep(for: .seconds(3))
            let canceled = try await s.tyger(["run", "cancel", id])
            #expect(canceled.exitCode == 0, "\(canceled)")
            _ = try await s.waitForStatus(id, in: ["Canceled"], timeout: .seconds(30))
            let read = try await s.tyger(["buffer", "read", output], timeout: .seconds(30))
            #expect(read.exitCode != 0, "a canceled run's output must not read back as complete: \(read)")
            #expect(read.stderrText.lowercased().contains("failed"), "\(read)")
        }
    }

    @Test func aRunsReportURLReportsForThatRunOnly() async throws {
        try await withSlurm { s in
            try s.file("long.yml", scriptRun("sleep 300"))
            let first = try await s.createRun(["-f", s.directory + "/long.yml"])
            let second = try await s.createRun(["-f", s.directory + "/long.yml"])
            _ = try await s.waitForStatus(first, in: ["Running"], timeout: .seconds(30))
            let job = try #require(try await SlurmTestCluster.jobs(ofRun: first, s).first?.id)
            let launch = try await launchDocument(ofJob: job)
            let report = try #require(launch["reportURL"] as? String, "\(launch)")
            #expect(launch["runId"] as? Int == Int(first), "\(launch)")
            func post(_ url: String) async throws -> String {
                try await runProcess(
                    "/usr/bin/curl",
                    ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", "@-", url],
                    input: .bytes(Array("2026-12-04T10:00:00.5Z from the test\n".utf8))
                ).stdoutText
            }
            let parts = report.split(separator: "?", maxSplits: 1).map(String.init)
            // Its own run takes the report...
            #expect(try await post(parts[0] + "/logs?" + parts[1] + "&replica=0") == "204")
            let logs = try await s.tyger(["run", "logs", first])
            #expect(logs.stdoutText.contains("from the test"), "\(logs)")
            // ...another run's path with the same signature does not.
            let other = parts[0].replacingOccurrences(of: "/agent/runs/\(first)", with: "/agent/runs/\(second)")
            #expect(["401", "403"].contains(try await post(other + "/logs?" + parts[1] + "&replica=0")))
            _ = try await s.tyger(["run", "cancel", first])
            _ = try await s.tyger(["run", "cancel", second])
        }
    }

    @Test func reportsNeedTheRunsSignature() async throws {
        try await withSlurm { s in
            let status = try await s.tyger(["api", "status"])
            let tcp = try #require(
                status.stdoutText.split(separator: "\"").first { $0.hasPrefix("http://127.0.0.1:") }.map(String.init),
                "\(status)"
            )
            for path in ["/agent/runs/1/exit?replica=0", "/agent/runs/1/logs?replica=0&sv=0.1.0&sp=c&sig=AAAA"] {
                let posted = try await runProcess(
                    "/usr/bin/curl",
                    ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", #"{"code":0}"#, tcp + path]
                )
                #expect(["401", "403"].contains(posted.stdoutText), "\(path): \(posted)")
            }
        }
    }

    @Test func aSubmissionWaitsForAControllerThatDoesNotAnswer() async throws {
        // The server reads a copy of the cluster's configuration, which the test points at a port nobody listens
        // on (sbatch then fails after ~10 s with "Unable to contact slurm controller"), and back after 12 s.
        let configuration = try #require(SlurmTestCluster.configuration)
        let good = String(decoding: try TestFiles.read(configuration), as: UTF8.self)
        let bad = good.replacingOccurrences(of: "SlurmctldPort=16817", with: "SlurmctldPort=16899")
        try #require(bad != good, "the cluster's configuration names no SlurmctldPort=16817")
        try await withTemporaryDirectory(prefix: "tyger-slurm-conf") { dir in
            let copy = dir + "/slurm.conf"
            try TestFiles.write(Array(good.utf8), to: copy)
            try await withSlurm(["SLURM_CONF": copy]) { s in
                try s.file("echo.yml", scriptRun("echo submitted at last"))
                let status = try await s.tyger(["api", "status"])
                try #require(status.exitCode == 0, "\(status)")
                try TestFiles.write(Array(bad.utf8), to: copy)
                let exec = try s.start(["run", "exec", "-f", s.directory + "/echo.yml", "--logs"])
                try await Task.sleep(for: .seconds(12))
                try TestFiles.write(Array(good.utf8), to: copy)
                let result = try await exec.wait(timeout: .seconds(120))
                #expect(result.exitCode == 0, "\(result)")
                #expect(result.stderrText.contains("submitted at last"), "\(result)")
            }
        }
    }

    @Test func aSubmissionWithoutMungeFailsTheRunSayingSo() async throws {
        // The server's copy of the configuration points at a munge socket that does not exist once it is up: as if
        // munged had stopped on the server's machine.
        let configuration = try #require(SlurmTestCluster.configuration)
        let good = String(decoding: try TestFiles.read(configuration), as: UTF8.self)
        let bad = good.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasPrefix("AuthInfo=") ? "AuthInfo=socket=/nonexistent/munge.socket" : String($0)
        }.joined(separator: "\n")
        try #require(bad != good, "the cluster's configuration has no AuthInfo line")
        try await withTemporaryDirectory(prefix: "tyger-slurm-conf") { dir in
            let copy = dir + "/slurm.conf"
            try TestFiles.write(Array(good.utf8), to: copy)
            try await withSlurm(["SLURM_CONF": copy]) { s in
                try s.file("echo.yml", scriptRun("echo never"))
                let status = try await s.tyger(["api", "status"])
                try #require(status.exitCode == 0, "\(status)")
                try TestFiles.write(Array(bad.utf8), to: copy)
                let exec = try await s.tyger(["run", "exec", "-f", s.directory + "/echo.yml"], timeout: .seconds(60))
                #expect(exec.exitCode == 1, "\(exec)")
                #expect(exec.stderrText.contains("munge cannot authenticate this machine to Slurm"), "\(exec)")
                #expect(exec.stderrText.contains("Did you start munged?"), "\(exec)")
            }
        }
    }

    @Test func aRestartedServerCancelsTheJobsItLeft() async throws {
        try await withSlurm { s in
            try s.file("long.yml", scriptRun("sleep 300"))
            let started = ContinuousClock.now
            let id = try await s.createRun(["-f", s.directory + "/long.yml"])
            _ = try await s.waitForStatus(id, in: ["Running"], timeout: .seconds(30))
            let running = ContinuousClock.now - started
            let killed = try await s.shell(#"kill -9 "$(cat "$TYGER_HOME/server/server.pid")""#)
            #expect(killed.exitCode == 0, "\(killed)")
            // The next command starts a server, which fails the run and cancels its job.
            _ = try await s.waitForStatus(id, in: ["Failed"], timeout: .seconds(60))
            let failed = ContinuousClock.now - started
            // The phases are in the message, for a slow run (once 32 s in all where it takes 2 s alone).
            try await slurmEventually(timeout: .seconds(60), "running after \(running), failed after \(failed)") {
                let jobs = try await SlurmTestCluster.jobs(ofRun: id, s)
                return jobs.count == 1 && jobs[0].state == "CANCELLED"
            }
        }
    }

}

/// Upper-cases its input into its output, and logs where it runs and its environment.
private let upperRunYAML = upperRun(prelude: [#"echo "copying on $(hostname)" >&2"#, "env | sort"])

/// Upper-cases its input into its output after sleeping past its URLs' 30 s, with a timeout over 24 h.
private let lateUpperRunYAML = upperRun(
    prelude: [#"echo "before the URLs expire""#, "sleep 38", #"echo "after they expired""#],
    timeout: 100_000
)

/// A run that runs the `prelude` lines (sh), then upper-cases its input into its output.
private func upperRun(prelude: [String], timeout: Int? = nil) -> String {
    let lines = (prelude + [#"tr a-z A-Z < "$INPUT_PIPE" > "$OUTPUT_PIPE""#]).map { "        " + $0 }
    return """
        job:
          codespec:
            image: none
            buffers:
              inputs: ["input"]
              outputs: ["output"]
            command:
              - "sh"
              - "-c"
              - |
        \(lines.joined(separator: "\n"))
        \(timeout.map { "timeoutSeconds: \($0)" } ?? "")
        """
}

/// A run of `script` (sh) without buffers.
private func scriptRun(_ script: String, timeout: Int? = nil, replicas: Int = 1) -> String {
    """
    job:
      replicas: \(replicas)
      codespec:
        image: none
        command: ["sh", "-c", "\(script.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))"]
    \(timeout.map { "timeoutSeconds: \($0)" } ?? "")
    """
}

/// Sets the state of the test cluster's partition `queued` (down between tests: jobs there stay queued).
private func queuedPartition(_ state: String) async throws {
    let updated = try await runProcess(
        "/usr/bin/scontrol",
        ["update", "PartitionName=queued", "State=\(state)"],
        environment: ["SLURM_CONF": SlurmTestCluster.configuration ?? ""]
    )
    try #require(updated.exitCode == 0, "\(updated)")
}

/// Waits until `condition` holds, looking every 200 ms.
private func slurmEventually(
    timeout: Duration,
    _ context: String = "",
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(200))
    }
    Issue.record("the condition did not hold within \(timeout) \(context)")
}

/// The launch document in the batch script of Slurm job `job` (`scontrol write batch_script`).
private func launchDocument(ofJob job: String) async throws -> [String: Any] {
    let script = try await runProcess(
        "/usr/bin/scontrol",
        ["write", "batch_script", job, "-"],
        environment: ["SLURM_CONF": SlurmTestCluster.configuration ?? ""]
    )
    try #require(script.exitCode == 0, "\(script)")
    let lines = script.stdoutText.split(separator: "\n").map(String.init)
    let start = try #require(lines.firstIndex { $0.hasSuffix("<<'TYGER_LAUNCH'") }, "\(script)")
    let data = try #require(Data(base64Encoded: lines[start + 1]), "\(script)")
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}
