import Foundation
import Testing
import TygerKubernetes
import TygerModel
import TygerTestSupport
import Yams

/// A distributed run with every feature the rendering maps: buffers (one with a dash), GPUs, shm, CPU and memory,
/// replicas, a node pool, a timeout, and workers with an endpoint.
private let distributedRun = """
    job:
      codespec:
        image: ghcr.io/example/recon:1.2
        buffers:
          inputs: [input]
          outputs: [output, my-output]
        command: [python3, recon.py]
        args: ["--in", "$(INPUT_PIPE)", "--out", "$(OUTPUT_PIPE)"]
        workingDir: /work
        env:
          FROM_PIPE: "$(INPUT_PIPE)"
          THREADS: "8"
        resources:
          requests: {cpu: "1", memory: 1G}
          limits: {memory: 2G}
          gpu: "1"
          shm: 1G
      replicas: 2
      nodePool: gpunp
      buffers:
        input: abc123
    worker:
      codespec:
        kind: worker
        image: ghcr.io/example/worker:1.2
        command: [worker]
        endpoints: {nccl: 29500}
      replicas: 3
    timeoutSeconds: 600
    """

/// A job whose codespec has a socket that reads one buffer and writes another.
private let socketRun = """
    job:
      codespec:
        image: example/server
        buffers:
          inputs: [request]
          outputs: [response]
        sockets:
          - port: 9002
            inputBuffer: request
            outputBuffer: response
    """

/// The smallest run: no buffers, no workers.
private let plainRun = """
    job:
      codespec:
        image: ubuntu
        command: [echo, hello]
    """

private func render(
    _ yaml: String,
    _ options: KubernetesManifestOptions = .init(runId: 42)
) throws
    -> [KubernetesObject]
{
    try KubernetesManifests.render(try YAMLSpecs.run(fromYAML: yaml), options: options)
}

private func environment(_ container: KubernetesValue?) -> [(name: String, value: KubernetesValue)] {
    (container?["env"]?.items ?? []).compactMap { entry in
        guard let name = entry["name"]?.text else { return nil }
        return (name, entry["value"] ?? entry["valueFrom"] ?? .string(""))
    }
}

private func names(_ list: KubernetesValue?) -> [String] { (list?.items ?? []).compactMap { $0["name"]?.text } }

struct KubernetesManifestsTests {
    @Test func aDistributedRunBecomesUpstreamsObjects() throws {
        var options = KubernetesManifestOptions(runId: 42, namespace: "team")
        options.accessURLs["output"] = "https://store.example/run-output?sig=1"
        let objects = try render(distributedRun, options)
        #expect(objects.map(\.kind) == ["StatefulSet", "Service", "Secret", "Job"])
        #expect(objects.map(\.name) == ["run-42-worker", "run-42-worker", "run-42-job", "run-42-job"])
        #expect(objects.allSatisfy { $0.namespace == "team" })

        let job = objects[3].value
        let spec = try #require(job["spec"])
        #expect(spec["completions"].map { "\($0)" } == "\(KubernetesValue.int(2))")
        guard case .int(let deadline) = spec["activeDeadlineSeconds"], case .int(let backoff) = spec["backoffLimit"]
        else {
            Issue.record("no deadline or backoff limit: \(spec)")
            return
        }
        #expect(deadline == 600)
        #expect(backoff == 0)
        #expect(spec["completionMode"]?.text == "Indexed")
        let pod = try #require(spec["template"]?["spec"])
        #expect(pod["restartPolicy"]?.text == "Never")
        #expect(pod["serviceAccountName"]?.text == "tyger-job")
        #expect(pod["nodeSelector"]?["agentpool"]?.text == "gpunp")
        #expect(pod["nodeSelector"]?["tyger"]?.text == "run")
        #expect((pod["tolerations"]?.items ?? []).compactMap { $0["key"]?.text } == ["tyger", "sku"])
        #expect(names(pod["initContainers"]) == ["mkfifo", "waitforworker"])
        #expect(
            names(pod["containers"])
                == ["main", "input-buffer-sidecar", "output-buffer-sidecar", "my-output-buffer-sidecar"]
        )
        #expect(Set(names(pod["volumes"])) == ["buffers", "pipevolume", "dshm"])

        let main = pod["containers"]?.items.first
        #expect(main?["image"]?.text == "ghcr.io/example/recon:1.2")
        #expect((main?["command"]?.items ?? []).compactMap(\.text) == ["python3", "recon.py"])
        #expect(
            (main?["args"]?.items ?? []).compactMap(\.text) == ["--in", "$(INPUT_PIPE)", "--out", "$(OUTPUT_PIPE)"]
        )
        #expect(main?["workingDir"]?.text == "/work")
        #expect(main?["resources"]?["requests"]?["nvidia.com/gpu"]?.text == "1")
        #expect(main?["resources"]?["limits"]?["nvidia.com/gpu"]?.text == "1")
        #expect(main?["resources"]?["requests"]?["cpu"]?.text == "1")
        #expect(main?["resources"]?["limits"]?["memory"]?.text == "2G")
        let variables = environment(main)
        let order = variables.map(\.name)
        #expect(
            order == [
                "TYGER_RUN_ID", "TYGER_REPLICA_INDEX", "INPUT_PIPE", "OUTPUT_PIPE", "MY-OUTPUT_PIPE",
                "TYGER_WORKER_NODES", "TYGER_NCCL_WORKER_ENDPOINT_ADDRESSES", "FROM_PIPE", "THREADS",
            ]
        )
        let values = Dictionary(variables.map { ($0.name, $0.value.text ?? "") }) { a, _ in a }
        #expect(values["INPUT_PIPE"] == "/etc/buffer-fifos/input")
        #expect(values["MY-OUTPUT_PIPE"] == "/etc/buffer-fifos/my-output")
        let nodes = (0..<3).map { "run-42-worker-\($0).run-42-worker.team.svc.cluster.local" }
        #expect(values["TYGER_WORKER_NODES"] == "[" + nodes.map { "\"\($0)\"" }.joined(separator: ",") + "]")
        #expect(
            values["TYGER_NCCL_WORKER_ENDPOINT_ADDRESSES"]
                == "[" + nodes.map { "\"\($0):29500\"" }.joined(separator: ",") + "]"
        )
        #expect(values["THREADS"] == "8")

        let output = pod["containers"]?.items.first { $0["name"]?.text == "output-buffer-sidecar" }
        #expect(
            (output?["args"]?.items ?? []).compactMap(\.text) == [
                "output", "/etc/buffer-sas-tokens/output", "--input", "/etc/buffer-fifos/output", "--namespace",
                "team", "--pod", "$(POD_NAME)", "--container", "main", "--log-format", "json",
            ]
        )
        let waiter = pod["initContainers"]?.items.last
        #expect((waiter?["args"]?.items ?? []).compactMap(\.text).filter { $0.hasSuffix(".local") } == nodes)

        let secret = objects[2].value["stringData"]
        #expect(secret?["output"]?.text == "https://store.example/run-output?sig=1")
        #expect(secret?["input"]?.text?.contains("tyger buffer access abc123") == true)
        #expect(secret?["my-output"]?.text?.contains(" -w") == true)

        let workers = try #require(objects[0].value["spec"])
        #expect(workers["podManagementPolicy"]?.text == "Parallel")
        #expect(workers["serviceName"]?.text == "run-42-worker")
        #expect(workers["selector"]?["matchLabels"]?["tyger-worker"]?.text == "42")
        #expect(workers["template"]?["spec"]?["restartPolicy"]?.text == "Always")
        #expect(objects[1].value["spec"]?["clusterIP"]?.text == "None")
    }

    /// Annotation and environment values that look like numbers or booleans stay strings in the YAML.
    @Test func theYAMLKeepsStringsStrings() throws {
        let yaml = try KubernetesManifests.yaml(try render(distributedRun))
        let documents = try Array(Yams.load_all(yaml: yaml)).compactMap { $0 as? [String: Any] }
        #expect(documents.count == 4)
        let job = try #require(documents.last)
        let metadata = try #require(job["metadata"] as? [String: Any])
        let annotations = try #require(metadata["annotations"] as? [String: Any])
        #expect(annotations["tyger-job-replica-count"] as? String == "2")
        #expect(annotations["tyger-worker-replica-count"] as? String == "3")
        let labels = try #require(metadata["labels"] as? [String: Any])
        #expect(labels["tyger-run"] as? String == "42")
        let spec = try #require(job["spec"] as? [String: Any])
        #expect(spec["activeDeadlineSeconds"] as? Int == 600)
        let template = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let initContainers = try #require(template["initContainers"] as? [[String: Any]])
        let script = try #require((initContainers.first?["command"] as? [String])?.last)
        #expect(script.hasPrefix("set -euo pipefail\nmkfifo /etc/buffer-fifos/input\nchmod 666"))
    }

    @Test func socketsGetSidecarsAndNoPipeVariables() throws {
        let objects = try render(socketRun)
        #expect(objects.map(\.kind) == ["Secret", "Job"])
        let job = objects[1]
        #expect(job.annotations.contains { $0.0 == "tyger-has-socket" && $0.1.text == "true" })
        let pod = try #require(job.value["spec"]?["template"]?["spec"])
        #expect(
            names(pod["containers"])
                == ["main", "request-buffer-sidecar", "response-buffer-sidecar", "socket-9002-sidecar"]
        )
        #expect(!environment(pod["containers"]?.items.first).map(\.name).contains { $0.hasSuffix("_PIPE") })
        let socket = pod["containers"]?.items.last
        #expect(
            (socket?["args"]?.items ?? []).compactMap(\.text).prefix(7) == [
                "socket-adapt", "--address", "localhost:9002", "--input", "/etc/buffer-fifos/request", "--output",
                "/etc/buffer-fifos/response",
            ]
        )
    }

    @Test func aRunWithoutBuffersIsAJobAlone() throws {
        let objects = try render(plainRun)
        #expect(objects.map(\.kind) == ["Job"])
        let pod = try #require(objects[0].value["spec"]?["template"]?["spec"])
        #expect(pod["initContainers"] == nil)
        #expect(pod["volumes"] == nil)
        #expect(names(pod["containers"]) == ["main"])
        guard case .int(let deadline) = objects[0].value["spec"]?["activeDeadlineSeconds"] else {
            Issue.record("no deadline")
            return
        }
        #expect(deadline == Run.defaultTimeoutSeconds)
    }

    @Test(arguments: [
        ("job:\n  codespec: recon/versions/2\n", "names the codespec 'recon/versions/2'"),
        (
            "job:\n  codespec:\n    kind: worker\n    image: x\n",
            "the job's codespec must be a job codespec, not a worker codespec"
        ),
        (
            "job:\n  codespec:\n    image: x\n    buffers: {inputs: [a]}\n    sockets: [{port: 1, inputBuffer: b}]\n",
            "a socket uses the buffer 'b'"
        ),
        (
            "job:\n  codespec: {image: x}\nworker:\n  codespec: {image: y}\n",
            "the worker's codespec must be a worker codespec"
        ),
        (
            "job:\n  codespec:\n    image: x\n    buffers: {inputs: [a]}\n  buffers: {a: _}\n",
            "ephemeral buffers are not supported on Kubernetes"
        ),
        (
            "job:\n  codespec:\n    image: x\n    buffers: {inputs: [a]}\n  buffers: {b: abc}\n",
            "Buffer argument 'b' does not correspond to a buffer parameter on the codespec"
        ),
    ])
    func runsThatCannotBeRenderedSayWhy(_ spec: String, _ message: String) throws {
        do {
            _ = try render(spec)
            Issue.record("rendered: \(spec)")
        } catch let error as KubernetesManifestError {
            #expect(error.message.contains(message), "\(error.message)")
            #expect(!error.message.contains("\n"))
        }
    }
}

/// The rendered objects against the Kubernetes API's schema (`kubernetes-validate`, strict, Kubernetes 1.30), through
/// `tyger-server k8s manifests`. `tools/test` installs the validator and names it in
/// `TYGER_TEST_KUBERNETES_VALIDATE`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["TYGER_TEST_KUBERNETES_VALIDATE"] != nil))
struct KubernetesManifestSchemaTests {
    let validator = ProcessInfo.processInfo.environment["TYGER_TEST_KUBERNETES_VALIDATE"] ?? ""

    func validate(_ path: String) async throws -> ProcessResult {
        try await runProcess(validator, ["--strict", "-k", "1.30.0", path], timeout: .seconds(120))
    }

    @Test func everyRenderedObjectPassesTheSchema() async throws {
        try await withTemporaryDirectory(prefix: "tyger-k8s") { dir in
            for (name, spec) in [("distributed", distributedRun), ("socket", socketRun), ("plain", plainRun)] {
                let specPath = "\(dir)/\(name).yml"
                try TestFiles.write(Array(spec.utf8), to: specPath)
                let rendered = try await TygerServerBinary.run(
                    ["k8s", "manifests", specPath, "--run-id", "7", "--access-url", "output=https://x.example/o?s=1"]
                )
                #expect(rendered.exitCode == 0, "\(name): \(rendered)")
                #expect(rendered.stdoutText.contains("kind: Job"), "\(name): \(rendered)")
                let manifests = "\(dir)/\(name)-manifests.yml"
                try TestFiles.write(rendered.stdout, to: manifests)
                let checked = try await validate(manifests)
                #expect(checked.exitCode == 0, "\(name): \(checked)\n\(rendered.stdoutText)")
            }
        }
    }

    /// The validator is not a formality: a field the schema does not have fails it.
    @Test func aMisspelledFieldFailsTheSchema() async throws {
        try await withTemporaryDirectory(prefix: "tyger-k8s") { dir in
            let specPath = "\(dir)/plain.yml"
            try TestFiles.write(Array(plainRun.utf8), to: specPath)
            let rendered = try await TygerServerBinary.run(["k8s", "manifests", specPath])
            #expect(rendered.exitCode == 0, "\(rendered)")
            let broken = rendered.stdoutText.replacingOccurrences(of: "completionMode:", with: "completionMod:")
            #expect(broken != rendered.stdoutText)
            try TestFiles.write(Array(broken.utf8), to: "\(dir)/broken.yml")
            let checked = try await validate("\(dir)/broken.yml")
            #expect(checked.exitCode != 0, "\(checked)")
        }
    }
}

/// `tyger-server k8s manifests`'s errors: one line each, exit 1 for a run that cannot be rendered, 64 for a bad
/// command line.
struct KubernetesManifestCommandTests {
    @Test func badInputGivesOneLineAndTheDocumentedExitCode() async throws {
        try await withTemporaryDirectory(prefix: "tyger-k8s") { dir in
            let named = "\(dir)/named.yml"
            try TestFiles.write(Array("job:\n  codespec: recon\n".utf8), to: named)
            let refused = try await TygerServerBinary.run(["k8s", "manifests", named])
            #expect(refused.exitCode == 1, "\(refused)")
            #expect(refused.stderrText.hasPrefix("error: the job names the codespec 'recon'"), "\(refused)")
            #expect(refused.stderrText.split(separator: "\n").count == 1, "\(refused)")
            #expect(refused.stdout.isEmpty)

            let missing = try await TygerServerBinary.run(["k8s", "manifests", "\(dir)/none.yml"])
            #expect(missing.exitCode == 1, "\(missing)")
            #expect(missing.stderrText.contains("cannot read the file"), "\(missing)")

            let unknown = "\(dir)/unknown.yml"
            try TestFiles.write(Array("job:\n  codespec: {image: x}\n  colour: blue\n".utf8), to: unknown)
            let typo = try await TygerServerBinary.run(["k8s", "manifests", unknown])
            #expect(typo.exitCode == 1, "\(typo)")
            #expect(typo.stderrText.contains("colour"), "\(typo)")

            let spec = "\(dir)/plain.yml"
            try TestFiles.write(Array(plainRun.utf8), to: spec)
            for arguments in [["--access-url", "nourl"], ["--namespace", "Team_A"], ["--run-id", "0"]] {
                let bad = try await TygerServerBinary.run(["k8s", "manifests", spec] + arguments)
                #expect(bad.exitCode == 64, "\(arguments): \(bad)")
            }
        }
    }
}
