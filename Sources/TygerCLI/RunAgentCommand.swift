import ArgumentParser
import Foundation
import TygerIO
import TygerRunAgent

/// `tyger run-agent`: what a cluster job runs (hidden). Reads its launch document (base64 JSON written by the
/// server's executor) on stdin, runs the replica it describes and exits with the process's exit status.
struct RunAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-agent",
        abstract: "Run one replica of a run on a cluster machine (started by the server's jobs).",
        shouldDisplay: false
    )

    @Option(name: .long, help: "Read the launch document from this file instead of stdin.")
    var launchFile: String?

    func run() async throws {
        let text: String
        if let launchFile {
            guard let data = FileManager.default.contents(atPath: launchFile) else {
                throw CommandFailure("cannot read the launch document \(launchFile)")
            }
            text = String(decoding: data, as: UTF8.self)
        } else {
            // Read on a thread of its own: a blocking read must not hold a thread of the concurrency pool.
            text = try await DedicatedThread.run(name: "tyger-agent-launch") {
                String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            }
        }
        let stop = AgentStop()
        ProcessOps.onSignals([.terminate, .interrupt]) { _ in stop.fire() }
        let code: Int32
        do {
            code = try await RunAgent.run(launchDocument: text, stop: stop)
        } catch let error as RunAgentError {
            throw CommandFailure(error.message)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
