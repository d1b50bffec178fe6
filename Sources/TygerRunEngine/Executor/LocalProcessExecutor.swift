private import CTygerSpawn
import Synchronization
import TygerIO

#if canImport(Glibc)
private import Glibc
public import TygerModel
#endif

/// Runs codespecs as host processes: `command` + `args`, one process group per replica, stdout and stderr into the
/// run's log. The codespec's `image` is recorded and not used.
public struct LocalProcessExecutor: Executor {
    /// Whether GPUs are present (`/proc/driver/nvidia/gpus` exists) unless overridden.
    public var hasGPU: Bool
    /// Online CPU cores.
    public var cores: Int
    /// Physical memory in bytes.
    public var memoryBytes: Double

    /// An executor describing this machine.
    public init() {
        var st = stat()
        hasGPU = stat("/proc/driver/nvidia/gpus", &st) == 0
        cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        memoryBytes = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
    }

    public var description: ExecutorDescription {
        ExecutorDescription(kind: "process", capabilities: (hasGPU ? ["Gpu"] : []) + ["DistributedRuns"])
    }

    /// Workers are host processes too, each endpoint on a loopback port of its own.
    public var runsWorkers: Bool { true }

    /// Processes see the host's paths, start in the run's private work directory and inherit the server's
    /// ``RunEnvironment/inherited`` variables (`PATH` defaults to `/usr/local/bin:/usr/bin:/bin`).
    public func processView(runId: Int64, pipesDirectory: String, workDirectory: String) -> ProcessView {
        var base: [String: String] = [:]
        for key in RunEnvironment.inherited { if let v = getenv(key) { base[key] = String(cString: v) } }
        if base["PATH"] == nil { base["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        return ProcessView(pipesDirectory: pipesDirectory, workingDirectory: workDirectory, inheritedEnvironment: base)
    }

    public func pullImage(of codespec: Codespec) async throws {
        throw TygerRunEngineError.invalid(
            "This server runs codespecs as host processes (--executor process): there is no image to pull"
        )
    }

    public func validate(codespec: Codespec, replicas: Int) async throws {
        if (codespec.command ?? []).isEmpty && (codespec.args ?? []).isEmpty {
            throw TygerRunEngineError.invalid(
                "The codespec has no command or args: the local executor runs 'command' + 'args' as a host process (the image '\(codespec.image)' is not used)"
            )
        }
        if let sockets = codespec.sockets, !sockets.isEmpty {
            throw TygerRunEngineError.invalid("Codespecs with sockets are not supported by the local executor")
        }
        if let gpu = codespec.resources?.gpu, let value = gpu.value, value > 0, !hasGPU {
            throw TygerRunEngineError.invalid(
                "The codespec requests GPUs (gpu: \(gpu.text)) but this server has no GPU, so the run cannot be honoured"
            )
        }
        if let cpu = codespec.resources?.requests?.cpu, let value = cpu.value, value > Double(cores) {
            throw TygerRunEngineError.invalid(
                "The codespec requests \(cpu.text) CPUs but this server has only \(cores) cores, so the run cannot be honoured"
            )
        }
        if let memory = codespec.resources?.requests?.memory, let value = memory.value, value > memoryBytes {
            throw TygerRunEngineError.invalid(
                "The codespec requests \(memory.text) of memory but this server has only \(Int64(memoryBytes)) bytes, so the run cannot be honoured"
            )
        }
    }

    public func start(_ request: ExecutionRequest, log: RunLogWriter) async throws -> any Execution {
        var processes: [LocalProcess] = []
        do {
            for replica in request.replicas {
                processes.append(try LocalProcess.spawn(replica, log: log))
            }
        } catch {
            for p in processes { _ = tyger_kill_group(p.pid, SIGKILL) }
            for p in processes { _ = await p.exitCode() }
            throw error
        }
        // Recorded so a restarted server can kill what this one left behind.
        let record = processes.map { "\($0.pid) \(LocalProcess.startTime(of: $0.pid) ?? "?")" }.joined(separator: "\n")
        let path = request.runDirectory + "/processes"
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd >= 0 {
            var text = record + "\n"
            text.withUTF8 { try? FileDescriptorOps.writeAll(fd, UnsafeRawBufferPointer($0)) }
            Glibc.close(fd)
        }
        return LocalExecution(processes: processes)
    }

    /// Kills the processes still running (a host process's exit status is lost with its parent): always `nil`. A
    /// previous owner's processes ran on its own machine, out of reach.
    public func recover(runId: Int64, runDirectory: String, previousOwner: String?) async -> [ReplicaExit]? {
        guard let text = try? String(contentsOfFile: runDirectory + "/processes") else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let pid = Int32(parts[0]) else { continue }
            // Only a process that is still the one we started (same start time) is killed, never a reused pid.
            if let now = LocalProcess.startTime(of: pid), now == String(parts[1]) {
                _ = tyger_kill_group(pid, SIGKILL)
            }
        }
        return nil
    }
}

extension String {
    init(contentsOfFile path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TygerIOError.system("open", path: path) }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        self = String(decoding: bytes, as: UTF8.self)
    }
}

/// The processes of one run on this host.
final class LocalExecution: Execution {
    let processes: [LocalProcess]

    init(processes: [LocalProcess]) { self.processes = processes }

    var replicaCount: Int { processes.count }

    func waitForExit(replica: Int) async -> ReplicaExit { ReplicaExit(code: await processes[replica].exitCode()) }

    func terminate(grace: Duration) async {
        let running = processes.filter { !$0.hasExited }
        guard !running.isEmpty else { return }
        for p in running { _ = tyger_kill_group(p.pid, SIGTERM) }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, running.contains(where: { !$0.hasExited }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for p in running where !p.hasExited { _ = tyger_kill_group(p.pid, SIGKILL) }
    }
}
