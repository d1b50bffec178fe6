import Foundation
import Testing
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A run whose job (in `jobImage`) runs `before` (shell lines), prints where its workers are, then asks each worker's
/// `http` endpoint for `path` and prints `<address> <status line> <last line of the answer>`, into its output buffer;
/// `worker` is the run's `worker:` section (YAML, from its first column).
func workerProbingRun(jobImage: String, path: String = "/", before: String = "", worker: String) -> String {
    let script =
        (before.isEmpty ? [] : before.split(separator: "\n").map(String.init)) + [
            "{",
            "  echo \"$TYGER_WORKER_NODES\"",
            "  for address in $(echo \"$TYGER_HTTP_WORKER_ENDPOINT_ADDRESSES\" | tr -d '[]\"' | tr , ' '); do",
            "    exec 3<>\"/dev/tcp/${address%:*}/${address#*:}\"",
            "    printf 'GET \(path) HTTP/1.0\\r\\n\\r\\n' >&3",
            "    answer=$(cat <&3)",
            "    echo \"$address $(echo \"$answer\" | head -1 | tr -d '\\r') $(echo \"$answer\" | tail -1)\"",
            "    exec 3<&-",
            "  done",
            "} > \"$OUTPUT_PIPE\"",
        ]
    return """
        job:
          codespec:
            image: \(jobImage)
            buffers:
              outputs: [output]
            command: [bash, -c]
            args:
              - |

        """ + script.map { "          " + $0 }.joined(separator: "\n") + "\n" + worker
}

/// Two `python3 -m http.server` workers on loopback, and a job that asks each of them for `/`.
private let distributedYAML = workerProbingRun(
    jobImage: "ubuntu",
    worker: """
        worker:
          codespec:
            kind: worker
            image: ubuntu
            endpoints: {http: 8080}
            command: [python3, -m, http.server, --bind, 127.0.0.1]
            args: ["$(TYGER_HTTP_PORT)"]
          replicas: 2

        """
)

/// A run whose job would print `never` and whose one worker runs `workerScript` (which never listens on its
/// endpoint).
private func workerRun(workerScript: String) -> String {
    """
    job:
      codespec:
        image: ubuntu
        command: [echo, never]
    worker:
      codespec:
        kind: worker
        image: ubuntu
        endpoints: {http: 8080}
        command: [bash, -c, "\(workerScript)"]
    """
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
func accepts(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    } == 0
}

/// Runs with workers (upstream's distributed runs) on the process executor: workers start first, each endpoint on a
/// loopback port of its own; the job starts once they all accept connections and finds them through upstream's
/// variables; the workers stop when the job ends.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DistributedRunCLITests {
    @Test func theJobReachesEveryWorkerAndTheWorkersStopWithIt() async throws {
        try await withTyger { s in
            let spec = try s.file("distributed.yml", distributedYAML)
            let exec = try await s.tyger(["run", "exec", "-f", spec], timeout: .seconds(120))
            #expect(exec.exitCode == 0, "\(exec)")
            let lines = exec.stdoutText.split(separator: "\n").map(String.init)
            #expect(lines.first == #"["127.0.0.1","127.0.0.1"]"#, "\(exec)")
            let answers = lines.dropFirst()
            #expect(answers.count == 2, "\(exec)")
            var ports: [Int] = []
            for answer in answers {
                let parts = answer.split(separator: " ", maxSplits: 1).map(String.init)
                #expect(parts.count == 2 && parts[1].hasPrefix("HTTP/1.0 200"), "\(answer)")
                if let port = parts.first?.split(separator: ":").last.flatMap({ Int($0) }) { ports.append(port) }
            }
            #expect(Set(ports).count == 2, "two workers, two ports: \(ports)")

            // The workers stopped with the job: nothing listens on their ports any more.
            let stopped = await eventually(timeout: .seconds(20)) { !ports.contains(where: accepts(port:)) }
            #expect(stopped, "a worker still listens after the run ended: \(ports)")

            let runs = try jsonArray(try await s.tyger(["run", "list"]))
            let number = try #require(runs.first?["id"] as? Int, "\(runs)")
            let id = String(number)
            let logs = try await s.tyger(["run", "logs", id])
            #expect(logs.stdoutText.contains("[worker-0] "), "\(logs)")
            #expect(logs.stdoutText.contains("[worker-1] "), "\(logs)")
        }
    }

    @Test func aWorkerThatExitsBeforeItListensFailsTheRun() async throws {
        try await withTyger { s in
            let spec = try s.file("exits.yml", workerRun(workerScript: "exit 3"))
            let id = try await s.createRun(["-f", spec])
            let run = try await s.waitForStatus(id, in: ["Failed", "Succeeded", "Canceled"])
            #expect(run["status"] as? String == "Failed", "\(run)")
            #expect(
                run["statusReason"] as? String
                    == "Failed to start the run: Worker 0 exited with code 3 before its endpoints accepted connections",
                "\(run)"
            )
            let logs = try await s.tyger(["run", "logs", id])
            #expect(!logs.stdoutText.contains("never"), "the job ran: \(logs)")
        }
    }

    @Test func aRunCanceledWhileItsWorkersStartStopsThem() async throws {
        try await withTyger { s in
            let pidFile = s.directory + "/worker.pid"
            let spec = try s.file("silent.yml", workerRun(workerScript: "echo $$ > \(pidFile); exec sleep 600"))
            let id = try await s.createRun(["-f", spec])
            #expect(await eventually(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: pidFile) })
            let pid = try #require(
                Int32(
                    try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                )
            )
            #expect((try await s.show(id))["status"] as? String == "Pending")
            let canceled = try await s.tyger(["run", "cancel", id])
            #expect(canceled.exitCode == 0, "\(canceled)")
            let run = try await s.waitForStatus(id, in: ["Failed", "Succeeded", "Canceled"])
            #expect(run["status"] as? String == "Canceled", "\(run)")
            #expect(await eventually(timeout: .seconds(20)) { kill(pid, 0) != 0 }, "the worker lives on")
        }
    }

    @Test func workerCodespecsAreChecked() async throws {
        try await withTyger { s in
            let spec = try s.file(
                "job-as-worker.yml",
                """
                job:
                  codespec: {image: ubuntu, command: [echo, hi]}
                worker:
                  codespec: {image: ubuntu, command: [sleep, "60"]}
                """
            )
            let refused = try await s.tyger(["run", "create", "-f", spec])
            #expect(refused.exitCode != 0, "\(refused)")
            #expect(
                refused.stderrText.contains("The codespec for a run's worker must be a worker codespec"),
                "\(refused)"
            )
            let status = try await s.tyger(["api", "status"])
            #expect(status.stdoutText.contains("DistributedRuns"), "\(status)")
        }
    }
}
