import ArgumentParser
import Foundation
import Logging
import TygerCore
import TygerRunEngine
import TygerSlurm

/// The options of `--executor slurm`.
struct SlurmOptions: ParsableArguments {
    @Option(
        name: .customLong("slurm-agent"),
        help:
            "The tyger executable as the cluster's machines see it (jobs run '<it> run-agent'). Default: the tyger beside this tyger-server."
    )
    var agent: String?

    @Option(
        name: .customLong("slurm-user"),
        help: "The user jobs run as (sbatch --uid; the server must run as root). Default: the server's."
    )
    var user: String?

    @Option(
        name: .customLong("slurm-partition"),
        help: "The partition of runs that name no node pool. Default: the cluster's."
    )
    var partition: String?

    @Option(name: .customLong("slurm-account"), help: "The account jobs are charged to (sbatch --account).")
    var account: String?

    @Option(
        name: .customLong("slurm-scratch"),
        help:
            "The directory, on the cluster's machines, under which each job makes its run's pipes and working directory."
    )
    var scratch: String = "/tmp"

    @Option(
        name: .customLong("slurm-bin"),
        help: "The directory of Slurm's commands (sbatch, squeue, scontrol, scancel, sinfo). Default: PATH."
    )
    var bin: String?

    @Option(name: .customLong("slurm-poll-interval"), help: "How often the jobs' states are looked at.")
    var pollInterval: String = "1s"

    @Option(
        name: .customLong("slurm-ca-cert"),
        help:
            "PEM file of the certificates the jobs trust for the server's HTTPS URL (a certificate of your own CA), besides their machines' roots."
    )
    var caCert: String?

    @Option(
        name: .customLong("slurm-container-host"),
        help:
            "Run each job's process in a container of the codespec's image, through the Docker Engine API (Docker or Podman) at this address on the job's machine (unix:///run/podman/podman.sock). Default: host processes."
    )
    var containerHost: String?

    @Option(
        name: .customLong("slurm-container-pull"),
        help: "With --slurm-container-host: when the machines' engines pull images: always, missing or never."
    )
    var containerPull: String = "missing"

    @Option(
        name: .customLong("slurm-container-network"),
        help:
            "With --slurm-container-host: the containers' network: none, host or a network's name (runs with workers use host)."
    )
    var containerNetwork: String = "none"

    func validate() throws {
        guard scratch.hasPrefix("/") else { throw ValidationError("--slurm-scratch must be an absolute path") }
        if let agent, !agent.hasPrefix("/") { throw ValidationError("--slurm-agent must be an absolute path") }
        if let containerHost, !(containerHost.hasPrefix("unix://") || containerHost.hasPrefix("tcp://")) {
            throw ValidationError("--slurm-container-host must be a unix:// or tcp:// address")
        }
        guard ["always", "missing", "never"].contains(containerPull) else {
            throw ValidationError("unknown --slurm-container-pull '\(containerPull)': use always, missing or never")
        }
        guard !containerNetwork.isEmpty else { throw ValidationError("--slurm-container-network must not be empty") }
        do {
            guard try DurationParser.parse(pollInterval) > .zero else {
                throw ValidationError("--slurm-poll-interval must be positive")
            }
        } catch let e as TygerCoreError { throw ValidationError("--slurm-poll-interval: \(e.message)") }
    }

    func makeExecutor(instanceID: String, logger: Logger) async throws -> SlurmExecutor {
        let agentPath = agent ?? Self.besideThisExecutable("tyger")
        var configuration = SlurmExecutorConfiguration(agentPath: agentPath, instanceID: instanceID)
        configuration.user = user
        configuration.partition = partition
        configuration.account = account
        configuration.scratch = scratch
        configuration.binDirectory = bin
        configuration.pollInterval = try DurationParser.parse(pollInterval)
        if let caCert {
            guard let pem = try? String(contentsOfFile: caCert, encoding: .utf8),
                pem.contains("-----BEGIN CERTIFICATE-----")
            else {
                throw ValidationError("--slurm-ca-cert: cannot read PEM certificates from '\(caCert)'")
            }
            configuration.caCertificate = pem
        }
        configuration.containerHost = containerHost
        configuration.containerPull = containerPull
        configuration.containerNetwork = containerNetwork
        let executor = try await SlurmExecutor(configuration: configuration, logger: logger)
        logger.info(
            "running codespecs as Slurm jobs",
            metadata: [
                "engine": "\(executor.description.engine ?? "?")", "agent": "\(agentPath)",
                "user": "\(user ?? "(the server's)")",
                "containers": "\(containerHost ?? "none")",
            ]
        )
        return executor
    }

    /// `name` in the directory of this executable.
    static func besideThisExecutable(_ name: String) -> String {
        let own =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return ((own as NSString).deletingLastPathComponent as NSString).appendingPathComponent(name)
    }
}
