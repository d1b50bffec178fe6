import ArgumentParser
import Foundation
import TygerClient
import TygerModel

/// `tyger codespec create|show|list`.
struct CodespecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codespec",
        abstract: "Create and inspect codespecs.",
        subcommands: [Create.self, Show.self, List.self],
        aliases: ["codespecs"]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update a codespec. Outputs the version.",
            discussion: """
                Flags override the values of the file given with -f. Arguments after -- become `args` (or `command` \
                with --command).
                """
        )

        @Argument(help: "The codespec name (overrides `name` in the file).") var name: String?
        @Option(name: .shortAndLong, help: "A YAML codespec file.") var file: String?
        @Option(help: "Container image (the docker executor runs it; the process executor records it).") var image:
            String?
        @Option(name: .shortAndLong, help: "job or worker.") var kind: String?
        @Option(name: [.customShort("r"), .long], help: "Maximum replicas.") var maxReplicas: Int?
        @Option(name: .shortAndLong, help: "Input buffer names (repeatable or comma-separated).")
        var input: [String] = []
        @Option(name: .shortAndLong, help: "Output buffer names (repeatable or comma-separated).")
        var output: [String] = []
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
                    "codespec names must contain only lower case letters (a-z), numbers (0-9), dashes (-), "
                        + "underscores (_), and dots (.)"
                )
            }
            if let kind, !["job", "worker"].contains(kind) {
                throw ValidationError("codespec kind must be either 'job', worker' or empty (defaults to 'job')")
            }
        }

        func run() async throws {
            var spec: Codespec
            if let file {
                // The flags complete or override the file; the result is validated before it is sent.
                spec = try SpecFiles.codespec(file, name: name, flags: applyFlags(to:))
            } else {
                guard let image else {
                    throw UsageError("a container image is required: --image or `image` in a file given with -f")
                }
                spec = Codespec(image: image)
                spec.name = name
                try applyFlags(to: &spec)
                // The flags may have made it invalid (endpoints on a job, buffers on a worker): say so before sending.
                try spec.validate()
            }
            guard let specName = spec.name, !specName.isEmpty else {
                throw UsageError("a codespec name is required (argument or `name` in the file)")
            }
            let frozen = spec
            let stored = try await withConnection { try await $0.client.putCodespec(name: specName, frozen) }
            try Console.line(stored.version.map(String.init) ?? "?")
        }

        /// Applies the flags to `spec`: they complete or override what a file says.
        private func applyFlags(to spec: inout Codespec) throws {
            if let kind { spec.kind = CodespecKind(rawValue: kind)! }  // checked in validate()
            if let image { spec.image = image }
            if let maxReplicas { spec.maxReplicas = maxReplicas }
            if let workingDir { spec.workingDir = workingDir }
            let inputs = input.flatMap { $0.split(separator: ",").map(String.init) }
            let outputs = output.flatMap { $0.split(separator: ",").map(String.init) }
            if !inputs.isEmpty || !outputs.isEmpty {
                var buffers = spec.buffers ?? BufferParameters()
                if !inputs.isEmpty { buffers.inputs = inputs }
                if !outputs.isEmpty { buffers.outputs = outputs }
                spec.buffers = buffers
            }
            if !env.isEmpty {
                spec.env = (spec.env ?? [:]).merging(try parseTags(env, option: "--env")) { _, new in new }
            }
            if !endpoint.isEmpty {
                var endpoints = spec.endpoints ?? [:]
                for (k, v) in try parseTags(endpoint, option: "--endpoint") {
                    guard let port = Int(v), (1...65535).contains(port) else {
                        throw UsageError("invalid --endpoint '\(k)=\(v)': the port must be a number from 1 to 65535")
                    }
                    endpoints[k] = port
                }
                spec.endpoints = endpoints
            }
            if cpuRequest != nil || memoryRequest != nil || cpuLimit != nil || memoryLimit != nil || gpu != nil {
                var resources = spec.resources ?? CodespecResources()
                var requests = resources.requests ?? ResourceQuantities()
                var limits = resources.limits ?? ResourceQuantities()
                if let cpuRequest { requests.cpu = Quantity(cpuRequest) }
                if let memoryRequest { requests.memory = Quantity(memoryRequest) }
                if let cpuLimit { limits.cpu = Quantity(cpuLimit) }
                if let memoryLimit { limits.memory = Quantity(memoryLimit) }
                if let gpu { resources.gpu = Quantity(gpu) }
                if requests != ResourceQuantities() { resources.requests = requests }
                if limits != ResourceQuantities() { resources.limits = limits }
                spec.resources = resources
            }
            if !arguments.isEmpty {
                if command { spec.command = arguments } else { spec.args = arguments }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a codespec.", aliases: ["get"])
        @Argument var name: String
        @Option(name: [.customShort("v"), .long], help: "A specific version.") var version: Int?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let spec = try await withConnection { try await $0.client.getCodespec(name: name, version: version) }
            try Console.json(spec)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List codespecs (latest version of each).")
        @Option(name: .shortAndLong, help: "Only names starting with this.") var prefix: String?
        @Option(name: .shortAndLong, help: "The maximum number to list (default 1000).") var limit: Int?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let items = try await listPaged(limit: limit) { client, pageSize in
                try await client.listCodespecs(prefix: prefix, limit: pageSize)
            }
            try Console.json(items)
        }
    }
}
