import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import TygerClient
import TygerCore
import TygerDataPath
import TygerIO

extension RunCommand {
    struct Exec: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a run, stream stdin into its input buffer and its output buffer to stdout, and wait for it.",
            discussion: """
                The codespec may have at most one input buffer without a --buffer argument (it gets stdin) and one \
                such output buffer (it goes to stdout). Exit status: 0 when the run succeeds, 1 otherwise (with the \
                status reason on stderr), 130 on Ctrl-C (the run is canceled).
                """)
        @OptionGroup var spec: RunSpecOptions
        @Flag(help: "Stream the run's logs to stderr.") var logs = false
        @Flag(help: "With --logs, prefix log lines with timestamps.") var timestamps = false
        @Option(help: "Block size for the input buffer.") var blockSize: String = "4M"
        @Option(help: "Concurrent uploads of the input buffer.") var writeDop: Int = 16
        @Option(help: "Concurrent downloads of the output buffer.") var readDop: Int = 32
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            _ = try parseSize(blockSize, option: "--block-size")
            guard writeDop >= 1, readDop >= 1 else { throw ValidationError("the degree of parallelism (dop) must be at least 1") }
        }

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            let bodyData = try JSONSerialization.data(withJSONObject: try spec.runBody())
            let blockSize = Int(try parseSize(blockSize, option: "--block-size"))
            let runIDBox = RunIDBox()
            do {
                try await withSignalCancellation {
                    try await withConnection { connection in
                        try await execute(bodyData: bodyData, blockSize: blockSize, connection: connection, runIDBox: runIDBox)
                    }
                }
            } catch is CancellationError {
                if let id = runIDBox.id {
                    _ = try? await withConnection { try await $0.client.call(.POST, "/runs/\(id)/cancel") }
                    Log.shared.warn("Run canceled", ["runId": id])
                }
                throw CancellationError()
            }
        }

        private func execute(bodyData: Data, blockSize: Int, connection: Connection, runIDBox: RunIDBox) async throws {
            let body = try JSONOutput.parse(String(decoding: bodyData, as: UTF8.self)) as? [String: Any] ?? [:]
            let job = body["job"] as? [String: Any] ?? [:]
            let (inputs, outputs) = try await codespecParameters(job["codespec"] as Any, connection: connection)
            let arguments = job["buffers"] as? [String: Any] ?? [:]
            func unmapped(_ names: [String]) -> [String] {
                names.filter { name in
                    let arg = arguments.first { $0.key.lowercased() == name.lowercased() }?.value as? String
                    return arg == nil || arg == "_"
                }
            }
            let stdinParams = unmapped(inputs)
            let stdoutParams = unmapped(outputs)
            if stdinParams.count > 1 { throw UsageError("exec cannot be called if the job has multiple unmapped input buffers") }
            if stdoutParams.count > 1 { throw UsageError("exec cannot be called if the job has multiple unmapped output buffers") }

            let run = try await createRun(body, connection: connection)
            let id = runID(run)
            runIDBox.id = id
            Log.shared.info("Run created", ["runId": id])
            let runJob = run["job"] as? [String: Any] ?? [:]
            let runBuffers = runJob["buffers"] as? [String: Any] ?? [:]
            func bufferID(_ param: String) throws -> String {
                guard let value = runBuffers.first(where: { $0.key.lowercased() == param.lowercased() })?.value as? String else {
                    throw UsageError("the run has no buffer for parameter '\(param)'")
                }
                return value
            }
            let inputID = try stdinParams.first.map(bufferID)
            let outputID = try stdoutParams.first.map(bufferID)
            let writeDop = writeDop
            let readDop = readDop
            let logs = logs
            let timestamps = timestamps

            try await withThrowingTaskGroup(of: Void.self) { group in
                if let inputID {
                    group.addTask {
                        let resolved = try await BufferLocation.resolve(inputID, write: true)
                        defer { Task { await resolved.close() } }
                        var options = WriteOptions()
                        options.blockSize = blockSize
                        options.dop = writeDop
                        options.createContainer = false
                        let counter = LockedCounter()
                        let summary = try await resolved.write(
                            from: 0, source: DescriptorSource(fd: 0), options: options, counter: counter)
                        Log.shared.debug("Input written", ["buffer": inputID, "bytes": String(summary.bytes)])
                    }
                }
                if let outputID {
                    group.addTask {
                        let resolved = try await BufferLocation.resolve(outputID, write: false)
                        defer { Task { await resolved.close() } }
                        var options = ReadOptions()
                        options.dop = readDop
                        let summary = try await resolved.read(
                            to: 1, sink: DescriptorSink(fd: 1), options: options, counter: LockedCounter())
                        Log.shared.debug("Output read", ["buffer": outputID, "bytes": String(summary.bytes)])
                    }
                }
                if logs {
                    group.addTask {
                        try await streamLogs(
                            id: id, timestamps: timestamps, tail: nil, since: nil, follow: true, connection: connection
                        ) { chunk in try FileDescriptorWriter.write(2, chunk) }
                    }
                }
                group.addTask {
                    var last = ""
                    var final: [String: Any] = [:]
                    try await watchRun(id: id, connection: connection) { run in
                        let status = run["status"] as? String ?? "?"
                        if status != last {
                            Log.shared.info("Run status changed", ["status": status, "runId": id])
                            last = status
                        }
                        final = run
                    }
                    let status = final["status"] as? String ?? "?"
                    guard status == "Succeeded" else {
                        let reason = (final["statusReason"] as? String).map { " (\($0))" } ?? ""
                        throw RunFailed(message: "run failed with status \(status)\(reason)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}

struct RunFailed: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Remembers the run being executed, for cancellation on Ctrl-C.
final class RunIDBox: @unchecked Sendable {
    // @unchecked: written once before any reader can look (the run is created before signals can cancel it).
    var id: String?
}

/// The input and output buffer names of the run's codespec (inline, or fetched by reference).
func codespecParameters(_ codespec: Any, connection: Connection) async throws -> ([String], [String]) {
    var spec: [String: Any]
    if let inline = codespec as? [String: Any] {
        spec = inline
    } else if let reference = codespec as? String {
        let parts = reference.split(separator: "/")
        var path = "/codespecs/\(ControlPlaneClient.escape(String(parts[0])))"
        if parts.count == 3, parts[1] == "versions" { path += "/versions/\(parts[2])" }
        let response: HTTPTransport.Response
        do { response = try await connection.client.call(.GET, path) } catch let error as TygerClientError where error.status == 404 {
            // As `run create` says it (the bare 404 would be "NotFound: The resource was not found").
            throw UsageError("The codespec '\(reference)' was not found")
        }
        spec = try JSONOutput.parse(response.text) as? [String: Any] ?? [:]
    } else {
        throw UsageError("job.codespec must be a codespec name or an inline codespec")
    }
    let buffers = spec["buffers"] as? [String: Any] ?? [:]
    return (buffers["inputs"] as? [String] ?? [], buffers["outputs"] as? [String] ?? [])
}
