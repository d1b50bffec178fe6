import Foundation
import Testing
import TygerModel
import TygerRunEngine

@testable import TygerRunAgent
@testable import TygerSlurm

#if canImport(Glibc)
import Glibc
#endif

/// The Slurm executor's pure parts: resource options, script quoting, `scontrol` fields, the launch document.
struct SlurmUnitTests {
    @Test func resourcesBecomeSbatchOptionsLimitsFirst() throws {
        var resources = CodespecResources()
        #expect(SlurmExecutor.resourceArguments(nil) == [])
        #expect(SlurmExecutor.resourceArguments(resources) == [])
        resources.requests = ResourceQuantities(cpu: "1500m", memory: "1Gi")
        #expect(SlurmExecutor.resourceArguments(resources) == ["--cpus-per-task=2", "--mem=1024M"])
        resources.limits = ResourceQuantities(cpu: "3", memory: "1.5M")
        resources.gpu = "2"
        #expect(
            SlurmExecutor.resourceArguments(resources) == ["--cpus-per-task=3", "--mem=2M", "--gres=gpu:2"]
        )
        resources.gpu = "0"
        #expect(!SlurmExecutor.resourceArguments(resources).contains { $0.hasPrefix("--gres") })
    }

    @Test func jobsGetNoneOfTheServersEnvironmentButWhatSlurmReads() {
        let server = [
            "PATH": "/opt/bin:/usr/bin", "LANG": "C.UTF-8", "SLURM_CONF": "/etc/slurm-x/slurm.conf",
            "SBATCH_TIMELIMIT": "10", "AWS_SECRET_ACCESS_KEY": "secret", "HOME": "/root", "TYGER_HOME": "/srv/tyger",
        ]
        #expect(
            SlurmExecutor.jobEnvironment(server) == [
                "PATH": "/opt/bin:/usr/bin", "LANG": "C.UTF-8", "SLURM_CONF": "/etc/slurm-x/slurm.conf",
                "SBATCH_TIMELIMIT": "10",
            ]
        )
        #expect(SlurmExecutor.jobEnvironment([:]) == ["PATH": "/usr/local/bin:/usr/bin:/bin"])
    }

    @Test func theAgentPathIsQuotedForSh() {
        #expect(SlurmExecutor.quoted("/opt/tyger/bin/tyger") == "'/opt/tyger/bin/tyger'")
        #expect(SlurmExecutor.quoted("/it's here/tyger") == #"'/it'\''s here/tyger'"#)
    }

    @Test func scontrolFieldsAreRead() {
        let fields = SlurmExecution.fields(
            "JobId=12 JobName=tyger-run-3 JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=7:0\n"
        )
        #expect(fields["JobState"] == "FAILED")
        #expect(fields["ExitCode"] == "7:0")
        #expect(fields["Dependency"] == "(null)")
        #expect(fields["Nothing"] == nil)
    }

    @Test func theLaunchDocumentRoundTripsAndOtherVersionsAreRefused() throws {
        let launch = AgentLaunch(
            runId: 42,
            replica: 1,
            arguments: ["sh", "-c", "echo 'a b' \"$X\""],
            environment: ["X": "ü\n", "PATH": "/bin"],
            runDirectory: "/tmp/tyger-x-42-1",
            workingDirectory: "/tmp/tyger-x-42-1/work",
            pipesDirectory: "",
            buffers: [
                BufferLaunch(name: "in", isInput: true, url: "http://h:1/containers/b?sig=x", pipe: "/p/in.pipe")
            ],
            reportURL: "http://h:1/agent/runs/42?sig=y",
            logPrefix: "[replica-1] "
        )
        let text = try launch.encoded()
        #expect(!text.contains("\n") && !text.contains("'"), "one shell-safe line: \(text)")
        #expect(try AgentLaunch.decode(text + "\n") == launch)
        var other = launch
        other.version = 2
        #expect(throws: TygerRunEngineError.self) { try AgentLaunch.decode(try other.encoded()) }
        #expect(throws: TygerRunEngineError.self) { try AgentLaunch.decode("not base64!") }
        #expect(throws: TygerRunEngineError.self) { try AgentLaunch.decode(Data("{}".utf8).base64EncodedString()) }
    }

    @Test func agentsRenewTheirURLsHalfTheirLifeBeforeTheEndAndAtMostAnHourBefore() throws {
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(AgentURLs.renewalTime(expiresAt: now + 60, now: now) == now + 30)
        #expect(AgentURLs.renewalTime(expiresAt: now + 86_400, now: now) == now + 86_400 - 3600)
        #expect(AgentURLs.renewalTime(expiresAt: now + 7200, now: now) == now + 3600)
        #expect(AgentURLs.renewalTime(expiresAt: now - 5, now: now) == now - 5, "expired: at once")
        // The expiry travels in the launch document; a document from a server without renewals has none.
        var launch = AgentLaunch(
            runId: 7,
            replica: 0,
            arguments: ["true"],
            environment: [:],
            runDirectory: "/tmp/r",
            workingDirectory: "/tmp/r/work",
            pipesDirectory: "",
            buffers: [],
            reportURL: "http://h:1/agent/runs/7?sig=y",
            logPrefix: ""
        )
        launch.expiresAt = "2026-12-05T10:00:00.5Z"
        #expect(try AgentLaunch.decode(try launch.encoded()).expiresAt == "2026-12-05T10:00:00.5Z")
        var object = try #require(
            try JSONSerialization.jsonObject(with: try JSONEncoder().encode(launch)) as? [String: Any]
        )
        object["expiresAt"] = nil
        let old = try JSONSerialization.data(withJSONObject: object).base64EncodedString()
        #expect(try AgentLaunch.decode(old).expiresAt == nil)
        #expect(
            AgentLaunch.url(under: "http://h:1/agent/runs/7?sig=y", "renew", query: "replica=0")
                == "http://h:1/agent/runs/7/renew?sig=y&replica=0"
        )
    }

    @Test func aWorkersPortThatSomethingListensOnIsFoundBeforeItStarts() throws {
        // A listener on a port of its own (the kernel's choice), and a port taken and let go again.
        func socketOn(_ port: UInt16) -> (fd: Int32, port: Int) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = INADDR_ANY
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            return (fd, Int(UInt16(bigEndian: address.sin_port)))
        }
        let listening = socketOn(0)
        defer { close(listening.fd) }
        try #require(listen(listening.fd, 1) == 0)
        let released = socketOn(0)
        close(released.fd)
        let environment = [
            "TYGER_HTTP_PORT": String(listening.port), "TYGER_GRPC_PORT": String(released.port), "TYGER_X_PORT": "x",
        ]
        let taken = RunAgent.portsInUse(
            ["TYGER_HTTP_PORT", "TYGER_GRPC_PORT", "TYGER_X_PORT", "TYGER_MISSING_PORT"],
            environment: environment
        )
        #expect(taken.map(\.variable) == ["TYGER_HTTP_PORT"] && taken.first?.port == listening.port, "\(taken)")
    }

    @Test func anUnreachableControllerIsToldFromARefusal() {
        func result(_ error: String) -> SlurmCommands.Result { SlurmCommands.Result(code: 1, output: "", error: error) }
        #expect(
            SlurmExecutor.isUnreachable(
                result(
                    "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"
                )
            )
        )
        #expect(SlurmExecutor.isUnreachable(result("sbatch: error: Socket timed out on send/recv operation")))
        #expect(
            !SlurmExecutor.isUnreachable(
                result("sbatch: error: Batch job submission failed: Invalid partition name specified")
            )
        )
    }
}
