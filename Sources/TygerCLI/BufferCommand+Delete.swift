import ArgumentParser
import TygerClient
import TygerModel

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

/// One of the three bulk operations.
enum BulkOperation {
    case delete, restore, purge

    var verb: String {
        switch self {
        case .delete: "delete"
        case .restore: "restore"
        case .purge: "purge"
        }
    }

    var pastVerb: String {
        switch self {
        case .delete: "Deleted"
        case .restore: "Restored"
        case .purge: "Purged"
        }
    }

    /// Restore and purge work on soft-deleted buffers.
    var countsSoftDeleted: Bool { self != .delete }

    func apply(to id: String, client: ControlPlaneClient) async throws -> Buffer {
        switch self {
        case .delete: try await client.deleteBuffer(id: id)
        case .restore: try await client.restoreBuffer(id: id)
        case .purge: try await client.deleteBuffer(id: id, purge: true)
        }
    }

    func apply(to filter: BufferFilter, client: ControlPlaneClient) async throws -> Int {
        switch self {
        case .delete: try await client.deleteBuffers(filter)
        case .restore: try await client.restoreBuffers(filter)
        case .purge: try await client.deleteBuffers(filter, purge: true)
        }
    }
}

/// Runs one of the three bulk operations: on the IDs given (printing the buffers), or on every buffer the tags
/// select (asking first, unless --force).
func runBulk(_ selection: BulkSelection, _ operation: BulkOperation) async throws {
    try await withConnection { connection in
        if !selection.ids.isEmpty {
            var results: [BufferOutput] = []
            for id in selection.ids {
                results.append(BufferOutput(try await operation.apply(to: id, client: connection.client)))
            }
            if results.count == 1 { try Console.json(results[0]) } else { try Console.json(results) }
            return
        }
        var filter = BufferFilter(
            tags: try parseTags(selection.tag),
            excludeTags: try parseTags(selection.excludeTag, option: "--exclude-tag")
        )
        if !selection.force {
            filter.softDeleted = operation.countsSoftDeleted
            let n = try await connection.client.countBuffers(filter)
            if n == 0 {
                Console.writeError("No buffers found.\n")
                return
            }
            guard Console.stdinIsTerminal else {
                throw CommandFailure("refusing to \(operation.verb) \(n) buffers without confirmation: use --force")
            }
            Console.writeError("Are you sure you want to \(operation.verb) \(n) buffers? [y/N] ")
            guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                Console.writeError("Canceled.\n")
                return
            }
        }
        let n = try await operation.apply(to: filter, client: connection.client)
        try Console.line("\(operation.pastVerb) \(n) buffers.")
    }
}

extension BufferCommand {
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Soft-delete buffers (restore them with 'restore').")
        @OptionGroup var selection: BulkSelection
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await runBulk(selection, .delete) }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Restore soft-deleted buffers.")
        @OptionGroup var selection: BulkSelection
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await runBulk(selection, .restore) }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Permanently delete soft-deleted buffers and their data."
        )
        @OptionGroup var selection: BulkSelection
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await runBulk(selection, .purge) }
    }
}
