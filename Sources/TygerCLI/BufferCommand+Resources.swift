import ArgumentParser
import Foundation
import TygerClient
import TygerModel

extension BufferCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a buffer and print its ID.")
        @Option(help: "Storage location (local installations: 'local').") var location: String?
        @Option(name: .long, help: "A tag KEY=VALUE (repeatable, or comma-separated).") var tag: [String] = []
        @Option(help: "Time to live, D.HH:MM:SS; the buffer is soft-deleted afterwards.") var ttl: String?
        @Flag(help: "Print the whole buffer as JSON.") var fullResource = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            var request = Buffer(location: location, tags: try parseTags(tag))  // empty tags are not sent
            if let ttl { request.expiresAt = Date().addingTimeInterval(Double(try parseTTL(ttl))) }
            let frozen = request
            let buffer = try await withConnection { try await $0.client.createBuffer(frozen) }
            if fullResource {
                try Console.json(BufferOutput(buffer))
            } else {
                try Console.line(buffer.id)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a buffer as JSON.")
        @Argument var id: String
        @Flag(help: "Show a soft-deleted buffer.") var softDeleted = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let buffer = try await withConnection { try await $0.client.getBuffer(id: id, softDeleted: softDeleted) }
            try Console.json(BufferOutput(buffer))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List buffers, newest first.")
        @Option(name: .long, help: "Only buffers with this tag KEY=VALUE (repeatable: all must match).")
        var tag: [String] = []
        @Option(name: .long, help: "Leave out buffers with this tag KEY=VALUE (repeatable: any excludes).")
        var excludeTag: [String] = []
        @Flag(help: "List soft-deleted buffers.") var softDeleted = false
        // `.unconditional`: `--limit -1` is a (negative) value, refused by validate(), not a missing one.
        @Option(
            name: .shortAndLong,
            parsing: .unconditional,
            help: "The maximum number of buffers to list (default 1000)."
        )
        var limit: Int?
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let limit, limit < 0 { throw ValidationError("--limit must not be negative") }
        }

        func run() async throws {
            let filter = BufferFilter(
                tags: try parseTags(tag),
                excludeTags: try parseTags(excludeTag, option: "--exclude-tag"),
                softDeleted: softDeleted
            )
            let items = try await listPaged(limit: limit) { try await $0.listBuffers(filter, limit: $1) }
            try Console.json(items.map(BufferOutput.init))
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a buffer's tags or time to live.")
        @Argument var id: String
        @Option(name: .long, help: "Set a tag KEY=VALUE (repeatable); other tags are kept unless --clear-tags.")
        var tag: [String] = []
        @Flag(help: "Replace all tags with the --tag values (none: remove all).") var clearTags = false
        @Option(help: "Only change the buffer if its ETag is this.") var etag: String?
        @Option(help: "New time to live from now, D.HH:MM:SS.") var ttl: String?
        @Flag(help: "Operate on a soft-deleted buffer.") var softDeleted = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let newTags = try parseTags(tag)
            let expiresAt = try ttl.map { Date().addingTimeInterval(Double(try parseTTL($0))) }
            let buffer = try await withConnection { connection -> Buffer in
                while true {
                    var tags = newTags
                    var ifMatch = etag
                    if !clearTags {
                        let current = try await connection.client.getBuffer(id: id, softDeleted: softDeleted)
                        if let etag, let serverETag = current.eTag, serverETag != etag {
                            throw CommandFailure("the server's ETag does not match the provided ETag")
                        }
                        tags = (current.tags ?? [:]).merging(newTags) { _, new in new }
                        ifMatch = etag ?? current.eTag
                    }
                    // No tags clears them; no expiry keeps the current one.
                    let update = BufferUpdate(expiresAt: expiresAt, tags: tags.isEmpty ? nil : tags)
                    do {
                        return try await connection.client.updateBuffer(
                            id: id,
                            update,
                            softDeleted: softDeleted,
                            ifMatch: ifMatch
                        )
                    } catch let e as TygerClientError where e.status == 412 && etag == nil {
                        continue  // someone else changed it between our read and write: read again
                    }
                }
            }
            try Console.json(BufferOutput(buffer))
        }
    }

    struct Access: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a signed access URL for a buffer.")
        @Argument var id: String
        @Flag(name: .shortAndLong, help: "A URL that allows writing.") var write = false
        @Option(name: [.customLong("ttl"), .customLong("access-ttl")], help: "How long the URL is valid, D.HH:MM:SS.")
        var ttl: String?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            if let ttl { _ = try parseTTL(ttl, option: "--access-ttl") }  // before starting a server for nothing
            let access = try await withConnection {
                try await bufferAccess(id: id, write: write, ttl: ttl, connection: $0)
            }
            try Console.line(access.uri)
        }
    }

    struct StorageAccount: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "storage-account",
            abstract: "Storage accounts.",
            subcommands: [List.self],
            aliases: ["storage-accounts"]
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the storage accounts.")
            @OptionGroup var global: GlobalOptions
            func run() async throws {
                let accounts = try await withConnection { try await $0.client.storageAccounts() }
                try Console.json(accounts)
            }
        }
    }
}

/// `POST /buffers/{id}/access`.
func bufferAccess(id: String, write: Bool, ttl: String?, connection: Connection) async throws -> BufferAccess {
    let span = try ttl.map { timeSpan(try parseTTL($0, option: "--access-ttl")) }
    return try await connection.client.bufferAccess(id: id, writeable: write, ttl: span)
}

/// Fetches pages following `nextLink`, up to `limit` items (default 1000, with a warning when cut).
///
/// - Parameter first: Fetches the first page with the given page size.
func listPaged<Item: Codable & Sendable>(
    limit: Int?,
    first: (ControlPlaneClient, Int) async throws -> Page<Item>
) async throws -> [Item] {
    let want = limit ?? 1000
    return try await withConnection { connection in
        var page = try await first(connection.client, min(want + 1, 2000))
        var items = page.items
        while items.count <= want, let next = page.nextLink, !next.isEmpty {
            page = try await connection.client.nextPage(next, of: Item.self)
            items += page.items
        }
        if items.count > want {
            items = Array(items.prefix(want))
            if limit == nil {
                Console.writeError(
                    "Warning: the output was truncated. Specify the --limit parameter to increase the number of "
                        + "elements.\n"
                )
            }
        }
        return items
    }
}
