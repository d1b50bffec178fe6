import ArgumentParser
import Foundation
import NIOHTTP1
import TygerClient

/// The shared shape of `buffer delete|restore|purge (ID… | --tag … | --all) [--force]`.
struct BulkSelection: ParsableArguments {
    @Argument(help: "Buffer IDs.") var ids: [String] = []
    @Option(name: .long, help: "Select buffers with this tag KEY=VALUE (repeatable).") var tag: [String] = []
    @Option(name: .long, help: "Leave out buffers with this tag KEY=VALUE (repeatable).") var excludeTag: [String] = []
    @Flag(help: "Select all buffers.") var all = false
    @Flag(help: "Do not ask for confirmation.") var force = false

    func validate() throws {
        let given = [!ids.isEmpty, !tag.isEmpty, all].filter { $0 }.count
        guard given == 1 else { throw ValidationError("One of ID, --tag, or --all must be specified") }
        if !excludeTag.isEmpty && !ids.isEmpty { throw ValidationError("--exclude-tag applies to --tag or --all only") }
    }
}

/// Runs one of the three bulk operations.
func runBulk(
    _ selection: BulkSelection, single: (String) -> (HTTPMethod, String, [(String, String)]),
    bulk: (HTTPMethod, String, [(String, String)]), countSoftDeleted: Bool, verb: String, pastVerb: String
) async throws {
    try await withConnection { connection in
        if !selection.ids.isEmpty {
            var results: [Any] = []
            for id in selection.ids {
                let (method, path, query) = single(id)
                let response = try await connection.client.call(method, path, query: query)
                results.append(try JSONOutput.parse(response.text))
            }
            print(JSONOutput.render(results.count == 1 ? results[0] : results, order: JSONOutput.bufferOrder))
            return
        }
        let filters = try filterQuery(tag: selection.tag, excludeTag: selection.excludeTag, softDeleted: nil)
        if !selection.force {
            let count = try await connection.client.call(
                .GET, "/buffers/count", query: filters + [("softDeleted", countSoftDeleted ? "true" : "false")])
            let n = Int(count.text.trimmingCharacters(in: " \n")) ?? 0
            if n == 0 {
                Log.writeStderr("No buffers found.\n")
                return
            }
            guard isatty(0) != 0 else {
                throw UsageError("refusing to \(verb) \(n) buffers without confirmation: use --force")
            }
            Log.writeStderr("Are you sure you want to \(verb) \(n) buffers? [y/N] ")
            guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                Log.writeStderr("Canceled.\n")
                return
            }
        }
        let (method, path, query) = bulk
        let response = try await connection.client.call(method, path, query: filters + query)
        print("\(pastVerb) \(response.text.trimmingCharacters(in: " \n")) buffers.")
    }
}

extension BufferCommand {
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Soft-delete buffers (restore them with 'restore').")
        @OptionGroup var selection: BulkSelection
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            try await runBulk(
                selection, single: { (.DELETE, "/buffers/\(ControlPlaneClient.escape($0))", []) },
                bulk: (.DELETE, "/buffers", []), countSoftDeleted: false, verb: "delete", pastVerb: "Deleted")
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Restore soft-deleted buffers.")
        @OptionGroup var selection: BulkSelection
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            try await runBulk(
                selection, single: { (.POST, "/buffers/\(ControlPlaneClient.escape($0))/restore", []) },
                bulk: (.POST, "/buffers/restore", []), countSoftDeleted: true, verb: "restore", pastVerb: "Restored")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Permanently delete soft-deleted buffers and their data.")
        @OptionGroup var selection: BulkSelection
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            let purge = [("ttl", "0.00:00:00"), ("softDeleted", "true")]
            try await runBulk(
                selection, single: { (.DELETE, "/buffers/\(ControlPlaneClient.escape($0))", purge) },
                bulk: (.DELETE, "/buffers", purge), countSoftDeleted: true, verb: "purge", pastVerb: "Purged")
        }
    }
}
