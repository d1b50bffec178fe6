import ArgumentParser
import Foundation
import TygerKubernetes
import TygerModel

/// `tyger-server k8s manifests RUN-SPEC`: the Kubernetes objects upstream's Kubernetes mode would create for a run.
struct KubernetesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s",
        abstract: "Kubernetes, on paper: render the objects a run would be on a cluster.",
        subcommands: [Manifests.self]
    )

    struct Manifests: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the Kubernetes objects of a run specification as YAML (no cluster is contacted).",
            discussion: """
                RUN-SPEC is a run specification as `tyger run create -f` takes it, with its codespecs written in it \
                (job.codespec and worker.codespec as objects, not names). The output is a Job, a Secret with the \
                buffers' access URLs, and for runs with workers a StatefulSet and a headless Service, in the order \
                they are created; docs/kubernetes.md says what each holds and that no cluster ran them here.
                """
        )

        @Argument(help: "The run specification (YAML or JSON).")
        var runSpec: String

        @Option(name: .long, help: "The namespace of every object.")
        var namespace = "tyger"

        @Option(name: .long, help: "The run's ID, used in names and labels.")
        var runId: Int64 = 1

        @Option(name: .long, help: "The image of upstream's buffer sidecar.")
        var bufferSidecarImage = KubernetesManifestOptions().bufferSidecarImage

        @Option(name: .long, help: "The image of upstream's worker waiter.")
        var workerWaiterImage = KubernetesManifestOptions().workerWaiterImage

        @Option(name: .long, help: "The image of the init container that makes the FIFOs (bash, mkfifo, chmod).")
        var mkfifoImage = KubernetesManifestOptions().mkfifoImage

        @Option(name: .long, help: "The service account of job pods whose codespec names no identity.")
        var jobServiceAccount = "tyger-job"

        @Option(
            name: .long,
            help: ArgumentHelp(
                "A buffer parameter's access URL (repeatable); others get a placeholder.",
                valueName: "NAME=URL"
            )
        )
        var accessUrl: [String] = []

        func validate() throws {
            guard runId > 0 else { throw ValidationError("--run-id must be a positive number") }
            guard Self.isDNSLabel(namespace) else {
                throw ValidationError(
                    "--namespace '\(namespace)' is not a Kubernetes name (lowercase letters, digits, '-')"
                )
            }
            for entry in accessUrl where !entry.contains("=") || entry.hasPrefix("=") {
                throw ValidationError("--access-url '\(entry)' must be NAME=URL")
            }
        }

        func run() async throws {
            var options = KubernetesManifestOptions(runId: runId, namespace: namespace)
            options.bufferSidecarImage = bufferSidecarImage
            options.workerWaiterImage = workerWaiterImage
            options.mkfifoImage = mkfifoImage
            options.jobServiceAccount = jobServiceAccount.isEmpty ? nil : jobServiceAccount
            for entry in accessUrl {
                let parts = entry.split(separator: "=", maxSplits: 1)
                options.accessURLs[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            do {
                guard let text = try? String(contentsOfFile: runSpec, encoding: .utf8) else {
                    throw KubernetesManifestError("cannot read the file '\(runSpec)'")
                }
                let run = try YAMLSpecs.run(fromYAML: text, file: runSpec)
                let objects = try KubernetesManifests.render(run, options: options)
                print(try KubernetesManifests.yaml(objects), terminator: "")
            } catch {
                // A run that cannot be rendered: the renderer's or the spec file's one line.
                guard let message = (error as? KubernetesManifestError)?.message ?? (error as? TygerModelError)?.message
                else { throw error }
                TokenCommand.stderr("error: \(message)")
                throw ExitCode.failure
            }
        }

        static func isDNSLabel(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            guard (1...63).contains(bytes.count), bytes.first != 0x2D, bytes.last != 0x2D else { return false }
            return bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        }
    }
}
