public import TygerModel

/// The Kubernetes objects upstream Tyger's Kubernetes mode creates for a run, rendered from a run specification:
/// a `batch/v1` Job for the job's replicas (with the run's timeout as `activeDeadlineSeconds`), the access URLs of its
/// buffers in a Secret, one buffer sidecar per buffer and one socket sidecar per socket, and for distributed runs a
/// worker StatefulSet with its headless Service and an init container that waits for the workers.
///
/// No cluster runs these here: they are checked against the Kubernetes API schema only (`docs/kubernetes.md`).
///
/// ```swift
/// let run = try YAMLSpecs.run(fromYAML: text)
/// let yaml = try KubernetesManifests.yaml(KubernetesManifests.render(run, options: .init(runId: 42)))
/// ```
public enum KubernetesManifests {
    /// Labels and annotations, upstream's keys.
    public enum Keys {
        public static let run = "tyger-run"
        public static let job = "tyger-job"
        public static let worker = "tyger-worker"
        public static let jobReplicaCount = "tyger-job-replica-count"
        public static let workerReplicaCount = "tyger-worker-replica-count"
        public static let hasSocket = "tyger-has-socket"
    }

    /// Where the job's containers find the FIFOs and the sidecars the access URLs (upstream's paths).
    public static let fifoDirectory = "/etc/buffer-fifos"
    public static let accessURLDirectory = "/etc/buffer-sas-tokens"

    /// The objects of `run`, in the order they are created: the workers' StatefulSet and Service, the Secret, the Job.
    ///
    /// - Throws: ``KubernetesManifestError`` when the run names its codespecs instead of including them (there is no
    ///   server to look them up), when a codespec is of the wrong kind or invalid, when a socket or a buffer argument
    ///   names a buffer the codespec does not have, or for an ephemeral buffer (`_`, which upstream refuses on
    ///   Kubernetes too).
    public static func render(_ run: Run, options: KubernetesManifestOptions = .init()) throws -> [KubernetesObject] {
        let job = try codespec(run.job.codespec, expected: .job, role: "job")
        let id = options.runId
        let jobReplicas = max(1, run.job.replicas)
        var objects: [KubernetesObject] = []
        var workers: (nodes: [String], spec: Codespec, replicas: Int)?
        if let target = run.worker {
            let spec = try codespec(target.codespec, expected: .worker, role: "worker")
            let replicas = max(1, target.replicas ?? 1)
            let service = "run-\(id)-worker"
            let nodes = (0..<replicas).map { "\(service)-\($0).\(service).\(options.namespace).svc.cluster.local" }
            workers = (nodes, spec, replicas)
            objects += workerObjects(spec, target: target, replicas: replicas, jobReplicas: jobReplicas, options)
        }
        let parameters = job.bufferParameters
        for (argument, buffer) in (run.job.buffers ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard parameters.contains(where: { $0.name.lowercased() == argument.lowercased() }) else {
                throw KubernetesManifestError(
                    "Buffer argument '\(argument)' does not correspond to a buffer parameter on the codespec"
                )
            }
            if buffer == "_" {
                throw KubernetesManifestError(
                    "the buffer '\(argument)' is ephemeral ('_'): ephemeral buffers are not supported on Kubernetes"
                )
            }
        }
        let socketBuffers = Set((job.sockets ?? []).flatMap { [$0.inputBuffer, $0.outputBuffer].compactMap { $0 } })
        for buffer in socketBuffers where !parameters.contains(where: { $0.name == buffer }) {
            throw KubernetesManifestError(
                "a socket uses the buffer '\(buffer)', which the job's codespec does not have"
            )
        }
        if !parameters.isEmpty {
            objects.append(secret(run, parameters: parameters, options))
        }

        var annotations = replicaCounts(job: jobReplicas, workers: workers?.replicas ?? 0)
        if let sockets = job.sockets, !sockets.isEmpty { annotations.append((Keys.hasSocket, .string("true"))) }
        var environment: [KubernetesValue] = [
            fieldEnvironment("TYGER_RUN_ID", "metadata.labels['\(Keys.run)']"),
            fieldEnvironment("TYGER_REPLICA_INDEX", "metadata.annotations['batch.kubernetes.io/job-completion-index']"),
        ]
        for (name, _) in parameters where !socketBuffers.contains(name) {
            environment.append(plainEnvironment(name.uppercased() + "_PIPE", "\(fifoDirectory)/\(name)"))
        }
        var initContainers: [KubernetesValue] = []
        var sidecars: [KubernetesValue] = []
        var volumes: [KubernetesValue] = []
        var mounts: [KubernetesValue] = []
        if !parameters.isEmpty {
            volumes.append(.map([("name", "buffers"), ("secret", .map([("secretName", .string("run-\(id)-job"))]))]))
            volumes.append(.map([("name", "pipevolume"), ("emptyDir", .map([]))]))
            let fifoMount = KubernetesValue.map([("name", "pipevolume"), ("mountPath", .string(fifoDirectory))])
            mounts.append(fifoMount)
            let script =
                (["set -euo pipefail"]
                + parameters.flatMap {
                    ["mkfifo \(fifoDirectory)/\($0.name)", "chmod 666 \(fifoDirectory)/\($0.name)"]
                })
                .joined(separator: "\n") + "\n"
            initContainers.append(
                .map([
                    ("name", "mkfifo"), ("image", .string(options.mkfifoImage)),
                    ("command", .list(["bash", "-c", .string(script)])), ("volumeMounts", .list([fifoMount])),
                ])
            )
            let sidecarEnvironment = KubernetesValue.list([fieldEnvironment("POD_NAME", "metadata.name")])
            let lifetime: [KubernetesValue] = [
                "--namespace", .string(options.namespace), "--pod", "$(POD_NAME)", "--container", "main",
                "--log-format", "json",
            ]
            for (name, isInput) in parameters {
                let arguments: [KubernetesValue] = [
                    isInput ? "input" : "output", .string("\(accessURLDirectory)/\(name)"),
                    isInput ? "--output" : "--input", .string("\(fifoDirectory)/\(name)"),
                ]
                sidecars.append(
                    .map([
                        ("name", .string("\(name)-buffer-sidecar")), ("image", .string(options.bufferSidecarImage)),
                        ("args", .list(arguments + lifetime)), ("env", sidecarEnvironment),
                        (
                            "volumeMounts",
                            .list([
                                fifoMount,
                                .map([
                                    ("name", "buffers"), ("mountPath", .string(accessURLDirectory)),
                                    ("readOnly", .bool(true)),
                                ]),
                            ])
                        ),
                    ])
                )
            }
            for socket in job.sockets ?? [] {
                let fifo = { (buffer: String?) in KubernetesValue.string(buffer.map { "\(fifoDirectory)/\($0)" } ?? "")
                }
                let arguments: [KubernetesValue] = [
                    "socket-adapt", "--address", .string("localhost:\(socket.port)"), "--input",
                    fifo(socket.inputBuffer), "--output", fifo(socket.outputBuffer),
                ]
                sidecars.append(
                    .map([
                        ("name", .string("socket-\(socket.port)-sidecar")),
                        ("image", .string(options.bufferSidecarImage)),
                        ("args", .list(arguments + lifetime)), ("env", sidecarEnvironment),
                        ("volumeMounts", .list([fifoMount])),
                    ])
                )
            }
        }
        if let workers {
            var waiter: [KubernetesValue] = [
                "--label-selector", .string("\(Keys.worker)=\(id)"), "--namespace", .string(options.namespace),
            ]
            for node in workers.nodes { waiter += ["--hostname", .string(node)] }
            initContainers.append(
                .map([
                    ("name", "waitforworker"), ("image", .string(options.workerWaiterImage)), ("args", .list(waiter)),
                ])
            )
            let endpoints = (workers.spec.endpoints ?? [:]).sorted { $0.key < $1.key }.map { name, port in
                (name: name, ports: workers.nodes.map { _ in port })
            }
            for variable in WorkerVariables.forJob(nodes: workers.nodes, endpoints: endpoints) {
                environment.append(plainEnvironment(variable.name, variable.value))
            }
        }
        // The codespec's own variables last: Kubernetes expands `$(VAR)` only from variables defined before.
        environment += codespecEnvironment(job)
        let main = container(job, environment: environment, mounts: mounts, volumes: &volumes)

        let labels: [(String, KubernetesValue)] = [(Keys.run, .string("\(id)")), (Keys.job, .string("\(id)"))]
        var podSpec: [(String, KubernetesValue)] = [("restartPolicy", "Never")]
        if let account = job.identity ?? options.jobServiceAccount {
            podSpec.append(("serviceAccountName", .string(account)))
        }
        podSpec += placement(job, nodePool: run.job.nodePool)
        if !initContainers.isEmpty { podSpec.append(("initContainers", .list(initContainers))) }
        podSpec.append(("containers", .list([main] + sidecars)))
        if !volumes.isEmpty { podSpec.append(("volumes", .list(volumes))) }
        objects.append(
            KubernetesObject(
                apiVersion: "batch/v1",
                kind: "Job",
                name: "run-\(id)-job",
                namespace: options.namespace,
                labels: labels,
                annotations: annotations,
                spec: .map([
                    ("parallelism", .int(jobReplicas)), ("completions", .int(jobReplicas)),
                    ("completionMode", "Indexed"), ("backoffLimit", .int(0)),
                    ("activeDeadlineSeconds", .int(run.effectiveTimeoutSeconds)),
                    (
                        "template",
                        .map([
                            ("metadata", .map([("labels", .map(labels)), ("annotations", .map(annotations))])),
                            ("spec", .map(podSpec)),
                        ])
                    ),
                ])
            )
        )
        return objects
    }

    /// The objects as one YAML stream, documents separated by `---`.
    public static func yaml(_ objects: [KubernetesObject]) throws -> String {
        try objects.map { try $0.value.yaml() }.joined(separator: "---\n")
    }

    // MARK: Parts

    private static func codespec(
        _ reference: CodespecReference,
        expected: CodespecKind,
        role: String
    ) throws
        -> Codespec
    {
        guard case .inline(let spec) = reference else {
            if case .named(let name) = reference {
                throw KubernetesManifestError(
                    "the \(role) names the codespec '\(name)': put the codespec itself in the run specification "
                        + "(there is no server here to look it up)"
                )
            }
            throw KubernetesManifestError("the \(role) has no codespec")
        }
        guard spec.kind == expected else {
            throw KubernetesManifestError(
                "the \(role)'s codespec must be a \(expected.rawValue) codespec, not a \(spec.kind.rawValue) codespec"
            )
        }
        do {
            try spec.validate()
        } catch let error as TygerModelError {
            throw KubernetesManifestError("the \(role)'s codespec: \(error.message)")
        }
        return spec
    }

    private static func workerObjects(
        _ spec: Codespec,
        target: RunCodeTarget,
        replicas: Int,
        jobReplicas: Int,
        _ options: KubernetesManifestOptions
    ) -> [KubernetesObject] {
        let id = options.runId
        let name = "run-\(id)-worker"
        let labels: [(String, KubernetesValue)] = [(Keys.run, .string("\(id)")), (Keys.worker, .string("\(id)"))]
        let annotations = replicaCounts(job: jobReplicas, workers: replicas)
        var volumes: [KubernetesValue] = []
        var main = container(
            spec,
            environment: [fieldEnvironment("TYGER_RUN_ID", "metadata.labels['\(Keys.run)']")]
                + codespecEnvironment(spec),
            mounts: [],
            volumes: &volumes
        )
        let ports = (spec.endpoints ?? [:]).values.sorted()
        if !ports.isEmpty, case .map(var fields) = main {
            fields.append(("ports", .list(ports.map { .map([("containerPort", .int($0))]) })))
            main = .map(fields)
        }
        var podSpec: [(String, KubernetesValue)] = [("restartPolicy", "Always")]
        if let identity = spec.identity { podSpec.append(("serviceAccountName", .string(identity))) }
        podSpec += placement(spec, nodePool: target.nodePool)
        podSpec.append(("containers", .list([main])))
        if !volumes.isEmpty { podSpec.append(("volumes", .list(volumes))) }
        return [
            KubernetesObject(
                apiVersion: "apps/v1",
                kind: "StatefulSet",
                name: name,
                namespace: options.namespace,
                labels: labels,
                annotations: [],
                spec: .map([
                    ("replicas", .int(replicas)), ("podManagementPolicy", "Parallel"),
                    ("serviceName", .string(name)), ("selector", .map([("matchLabels", .map(labels))])),
                    (
                        "template",
                        .map([
                            ("metadata", .map([("labels", .map(labels)), ("annotations", .map(annotations))])),
                            ("spec", .map(podSpec)),
                        ])
                    ),
                ])
            ),
            KubernetesObject(
                apiVersion: "v1",
                kind: "Service",
                name: name,
                namespace: options.namespace,
                labels: labels,
                annotations: [],
                spec: .map([("clusterIP", "None"), ("selector", .map(labels))])
            ),
        ]
    }

    /// The Secret holding each buffer parameter's access URL, mounted into the buffer sidecars.
    private static func secret(
        _ run: Run,
        parameters: [(name: String, isInput: Bool)],
        _ options: KubernetesManifestOptions
    ) -> KubernetesObject {
        let id = options.runId
        let urls = parameters.map { parameter -> (String, KubernetesValue) in
            if let url = options.accessURLs[parameter.name] { return (parameter.name, .string(url)) }
            let buffer = run.job.buffers?[parameter.name] ?? "BUFFER_ID"
            let command = "tyger buffer access \(buffer)\(parameter.isInput ? "" : " -w")"
            return (parameter.name, .string("<the access URL \(command) prints>"))
        }
        var object = KubernetesObject(
            apiVersion: "v1",
            kind: "Secret",
            name: "run-\(id)-job",
            namespace: options.namespace,
            labels: [(Keys.run, .string("\(id)")), (Keys.job, .string("\(id)"))],
            annotations: [],
            spec: nil
        )
        object.extra = [("stringData", .map(urls))]
        return object
    }

    private static func replicaCounts(job: Int, workers: Int) -> [(String, KubernetesValue)] {
        [(Keys.jobReplicaCount, .string("\(job)")), (Keys.workerReplicaCount, .string("\(workers)"))]
    }

    /// The main container: image, command, args, working directory, environment, resources (and `/dev/shm`).
    private static func container(
        _ spec: Codespec,
        environment: [KubernetesValue],
        mounts: [KubernetesValue],
        volumes: inout [KubernetesValue]
    ) -> KubernetesValue {
        var fields: [(String, KubernetesValue)] = [("name", "main"), ("image", .string(spec.image))]
        if let command = spec.command, !command.isEmpty {
            fields.append(("command", .list(command.map { .string($0) })))
        }
        if let args = spec.args, !args.isEmpty { fields.append(("args", .list(args.map { .string($0) }))) }
        if let directory = spec.workingDir { fields.append(("workingDir", .string(directory))) }
        fields.append(("env", .list(environment)))
        var resources: [(String, KubernetesValue)] = []
        let gpu = spec.resources?.gpu.map { KubernetesValue.string($0.text) }
        for (key, quantities) in [("requests", spec.resources?.requests), ("limits", spec.resources?.limits)] {
            var values: [(String, KubernetesValue)] = []
            if let cpu = quantities?.cpu { values.append(("cpu", .string(cpu.text))) }
            if let memory = quantities?.memory { values.append(("memory", .string(memory.text))) }
            if let gpu { values.append(("nvidia.com/gpu", gpu)) }
            if !values.isEmpty { resources.append((key, .map(values))) }
        }
        if !resources.isEmpty { fields.append(("resources", .map(resources))) }
        var allMounts = mounts
        if let shm = spec.resources?.shm {
            volumes.append(
                .map([("name", "dshm"), ("emptyDir", .map([("medium", "Memory"), ("sizeLimit", .string(shm.text))]))])
            )
            allMounts.append(.map([("name", "dshm"), ("mountPath", "/dev/shm")]))
        }
        if !allMounts.isEmpty { fields.append(("volumeMounts", .list(allMounts))) }
        return .map(fields)
    }

    /// Node selector and tolerations: upstream's `tyger: run` node label and taint, the node pool as `agentpool`,
    /// and the `sku=gpu` taint for codespecs that ask for GPUs.
    private static func placement(_ spec: Codespec, nodePool: String?) -> [(String, KubernetesValue)] {
        var selector: [(String, KubernetesValue)] = [("tyger", "run")]
        if let nodePool { selector.append(("agentpool", .string(nodePool))) }
        var tolerations: [KubernetesValue] = [toleration("tyger", "run")]
        if let gpu = spec.resources?.gpu, gpu.text != "0" { tolerations.append(toleration("sku", "gpu")) }
        return [("nodeSelector", .map(selector)), ("tolerations", .list(tolerations))]
    }

    private static func toleration(_ key: String, _ value: String) -> KubernetesValue {
        .map([("key", .string(key)), ("operator", "Equal"), ("value", .string(value)), ("effect", "NoSchedule")])
    }

    private static func codespecEnvironment(_ spec: Codespec) -> [KubernetesValue] {
        (spec.env ?? [:]).sorted { $0.key < $1.key }.map { plainEnvironment($0.key, $0.value) }
    }

    private static func plainEnvironment(_ name: String, _ value: String) -> KubernetesValue {
        .map([("name", .string(name)), ("value", .string(value))])
    }

    private static func fieldEnvironment(_ name: String, _ path: String) -> KubernetesValue {
        .map([("name", .string(name)), ("valueFrom", .map([("fieldRef", .map([("fieldPath", .string(path))]))]))])
    }

}

/// What the rendering needs beyond the run specification.
public struct KubernetesManifestOptions: Sendable {
    /// The namespace of every object (upstream's Helm chart: the release's).
    public var namespace = "tyger"
    /// The run's ID, in every name and label.
    public var runId: Int64 = 1
    /// Upstream's buffer sidecar (`cli/cmd/buffer-sidecar`), which a deployment builds and publishes.
    public var bufferSidecarImage = "tyger-buffer-sidecar"
    /// Upstream's worker waiter, which a deployment builds and publishes.
    public var workerWaiterImage = "tyger-worker-waiter"
    /// The image of the init container that makes the FIFOs (it needs `bash`, `mkfifo`, `chmod`).
    public var mkfifoImage = "mcr.microsoft.com/azurelinux/base/core:3.0"
    /// The service account of job pods whose codespec names no identity (upstream's Helm chart: `<release>-job`).
    public var jobServiceAccount: String? = "tyger-job"
    /// Access URLs by buffer parameter; parameters without one get a placeholder saying how to get it.
    public var accessURLs: [String: String] = [:]

    public init(runId: Int64 = 1, namespace: String = "tyger") {
        self.runId = runId
        self.namespace = namespace
    }
}

/// A run that cannot be rendered, in one line.
public struct KubernetesManifestError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
