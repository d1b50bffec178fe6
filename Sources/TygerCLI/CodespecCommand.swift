import ArgumentParser
import Foundation
import NIOHTTP1
import TygerClient

/// `tyger codespec create|show|list`.
struct CodespecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codespec", abstract: "Create and inspect codespecs.", subcommands: [Create.self, Show.self, List.self],
        aliases: ["codespecs"])

    static let order = [
        "kind", "name", "version", "createdAt", "image", "command", "args", "workingDir", "env", "identity", "resources",
        "maxReplicas", "buffers", "sockets", "endpoints",
    ]

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update a codespec. Outputs the version.",
            discussion: "Flags override the values of the file given with -f. Arguments after -- become `args` (or `command` with --command).")

        @Argument(help: "The codespec name (overrides `name` in the file).") var name: String?
        @Option(name: .shortAndLong, help: "A YAML codespec file.") var file: String?
        @Option(help: "Container image (recorded; the local executor runs commands on the host).") var image: String?
        @Option(name: .shortAndLong, help: "job or worker.") var kind: String?
        @Option(name: [.customShort("r"), .long], help: "Maximum replicas.") var maxReplicas: Int?
        @Option(name: .shortAndLong, help: "Input buffer names (repeatable or comma-separated).") var input: [String] = []
        @Option(name: .shortAndLong, help: "Output buffer names (repeatable or comma-separated).") var output: [String] = []
        @Option(name: .shortAndLong, help: "Environment variable K=V (repeatable).") var env: [String] = []
        @Option(help: "Worker endpoint NAME=PORT (repeatable).") var endpoint: [String] = []
        @Option(help: "GPUs (quantity).") var gpu: String?
        @Option(help: "CPU request (quantity, e.g. 500m, 2).") var cpuRequest: String?
        @Option(help: "Memory request (quantity, e.g. 512Mi).") var memoryRequest: String?
        @Option(help: "CPU limit (quantity).") var cpuLimit: String?
        @Option(help: "Memory limit (quantity).") var memoryLimit: String?
        @Option(help: "Working directory of the process.") var workingDir: String?
        @Flag(help: "The arguments after -- are the command, not its args.") var command = false
        @Argument(parsing: .postTerminator, help: "Command arguments (after --).") var arguments: [String] = []
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let name, name.range(of: #"^[a-z0-9\-._]*$"#, options: .regularExpression) == nil {
                throw ValidationError(
                    "codespec names must contain only lower case letters (a-z), numbers (0-9), dashes (-), underscores (_), and dots (.)")
            }
            if let kind, !["job", "worker"].contains(kind) {
                throw ValidationError("codespec kind must be either 'job', worker' or empty (defaults to 'job')")
            }
        }

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            var spec = try file.map(SpecFiles.load) ?? [:]
            if let name { spec["name"] = name }
            guard let specName = spec["name"] as? String, !specName.isEmpty else {
                throw UsageError("a codespec name is required (argument or `name` in the file)")
            }
            if let kind { spec["kind"] = kind }
            if spec["kind"] == nil { spec["kind"] = "job" }
            if let image { spec["image"] = image }
            if let maxReplicas { spec["maxReplicas"] = maxReplicas }
            if let workingDir { spec["workingDir"] = workingDir }
            let inputs = input.flatMap { $0.split(separator: ",").map(String.init) }
            let outputs = output.flatMap { $0.split(separator: ",").map(String.init) }
            if !inputs.isEmpty || !outputs.isEmpty {
                var buffers = spec["buffers"] as? [String: Any] ?? [:]
                if !inputs.isEmpty { buffers["inputs"] = inputs }
                if !outputs.isEmpty { buffers["outputs"] = outputs }
                spec["buffers"] = buffers
            }
            if !env.isEmpty {
                var e = spec["env"] as? [String: Any] ?? [:]
                for (k, v) in try parseTags(env, option: "--env") { e[k] = v }
                spec["env"] = e
            }
            if !endpoint.isEmpty {
                var e = spec["endpoints"] as? [String: Any] ?? [:]
                for (k, v) in try parseTags(endpoint, option: "--endpoint") {
                    guard let port = Int(v), (1...65535).contains(port) else {
                        throw UsageError("invalid --endpoint '\(k)=\(v)': the port must be a number from 1 to 65535")
                    }
                    e[k] = port
                }
                spec["endpoints"] = e
            }
            var resources = spec["resources"] as? [String: Any] ?? [:]
            var requests = resources["requests"] as? [String: Any] ?? [:]
            var limits = resources["limits"] as? [String: Any] ?? [:]
            if let cpuRequest { requests["cpu"] = cpuRequest }
            if let memoryRequest { requests["memory"] = memoryRequest }
            if let cpuLimit { limits["cpu"] = cpuLimit }
            if let memoryLimit { limits["memory"] = memoryLimit }
            if let gpu { resources["gpu"] = gpu }
            if !requests.isEmpty { resources["requests"] = requests }
            if !limits.isEmpty { resources["limits"] = limits }
            if !resources.isEmpty { spec["resources"] = resources }
            if !arguments.isEmpty { spec[command ? "command" : "args"] = arguments }
            let kindValue = spec["kind"] as? String
            if kindValue == "job", spec["endpoints"] != nil { throw UsageError("job codespecs cannot have endpoints") }
            if kindValue == "worker", spec["buffers"] != nil { throw UsageError("worker codespecs cannot have use buffers") }
            let body = try JSONSerialization.data(withJSONObject: spec)
            let response = try await withConnection {
                try await $0.client.call(.PUT, "/codespecs/\(ControlPlaneClient.escape(specName))", body: body)
            }
            if let location = response.headers.first(name: "Location"), let version = location.split(separator: "/").last {
                print(version)
            } else if let object = try JSONOutput.parse(response.text) as? [String: Any], let version = object["version"] {
                print("\(version)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a codespec.", aliases: ["get"])
        @Argument var name: String
        @Option(name: [.customShort("v"), .long], help: "A specific version.") var version: Int?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            var path = "/codespecs/\(ControlPlaneClient.escape(name))"
            if let version { path += "/versions/\(version)" }
            let response = try await withConnection { try await $0.client.call(.GET, path) }
            print(JSONOutput.render(try JSONOutput.parse(response.text), order: CodespecCommand.order))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List codespecs (latest version of each).")
        @Option(name: .shortAndLong, help: "Only names starting with this.") var prefix: String?
        @Option(name: .shortAndLong, help: "The maximum number to list (default 1000).") var limit: Int?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            let items = try await listPaged(path: "/codespecs", query: prefix.map { [("prefix", $0)] } ?? [], limit: limit)
            print(JSONOutput.render(items, order: CodespecCommand.order))
        }
    }
}
