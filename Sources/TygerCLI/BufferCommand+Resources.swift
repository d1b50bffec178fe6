import ArgumentParser
import Foundation
import NIOHTTP1
import TygerClient

/// Runs `body` with a control-plane connection, closing it afterwards.
func withConnection<T>(_ body: (Connection) async throws -> T) async throws -> T {
    let connection = try await Connection.open()
    do {
        let result = try await body(connection)
        await connection.close()
        return result
    } catch {
        await connection.close()
        throw error
    }
}

func printBuffers(_ text: String) throws {
    print(JSONOutput.render(try JSONOutput.parse(text), order: JSONOutput.bufferOrder))
}

extension BufferCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a buffer and print its ID.")
        @Option(help: "Storage location (local installations: 'local').") var location: String?
        @Option(name: .long, help: "A tag KEY=VALUE (repeatable, or comma-separated).") var tag: [String] = []
        @Option(help: "Time to live, D.HH:MM:SS; the buffer is soft-deleted afterwards.") var ttl: String?
        @Flag(help: "Print the whole buffer as JSON.") var fullResource = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            var body: [String: Any] = [:]
            let tags = try parseTags(tag)
            if !tags.isEmpty { body["tags"] = tags }
            if let location { body["location"] = location }
            if let ttl { body["expiresAt"] = rfc3339(Date().addingTimeInterval(Double(try parseTTL(ttl)))) }
            let response = try await withConnection {
                try await $0.client.call(.POST, "/buffers", body: try JSONSerialization.data(withJSONObject: body))
            }
            if fullResource {
                try printBuffers(response.text)
            } else {
                guard let object = try JSONOutput.parse(response.text) as? [String: Any], let id = object["id"] as? String else {
                    throw UsageError("the server returned a buffer without an ID")
                }
                print(id)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a buffer as JSON.")
        @Argument var id: String
        @Flag(help: "Show a soft-deleted buffer.") var softDeleted = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            let query = softDeleted ? [("softDeleted", "true")] : []
            let response = try await withConnection {
                try await $0.client.call(.GET, "/buffers/\(ControlPlaneClient.escape(id))", query: query)
            }
            try printBuffers(response.text)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List buffers, newest first.")
        @Option(name: .long, help: "Only buffers with this tag KEY=VALUE (repeatable: all must match).") var tag: [String] = []
        @Option(name: .long, help: "Leave out buffers with this tag KEY=VALUE (repeatable: any excludes).")
        var excludeTag: [String] = []
        @Flag(help: "List soft-deleted buffers.") var softDeleted = false
        // `.unconditional`: `--limit -1` is a (negative) value, refused by validate(), not a missing one.
        @Option(name: .shortAndLong, parsing: .unconditional, help: "The maximum number of buffers to list (default 1000).")
        var limit: Int?
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let limit, limit < 0 { throw ValidationError("--limit must not be negative") }
        }

        func run() async throws {
            Log.shared.setLevel(global.logLevel)
            let items = try await listPaged(
                path: "/buffers", query: filterQuery(tag: tag, excludeTag: excludeTag, softDeleted: softDeleted), limit: limit)
            print(JSONOutput.render(items, order: JSONOutput.bufferOrder))
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
            Log.shared.setLevel(global.logLevel)
            let newTags = try parseTags(tag)
            let expiresAt = try ttl.map { rfc3339(Date().addingTimeInterval(Double(try parseTTL($0)))) }
            let path = "/buffers/\(ControlPlaneClient.escape(id))"
            let query = softDeleted ? [("softDeleted", "true")] : []
            let response = try await withConnection { connection -> HTTPTransport.Response in
                while true {
                    var tags: [String: String] = newTags
                    var currentETag = etag
                    var currentExpiry: Any = NSNull()
                    if !clearTags {
                        let current = try await connection.client.call(.GET, path, query: query)
                        guard let object = try JSONOutput.parse(current.text) as? [String: Any] else {
                            throw UsageError("the server returned an invalid buffer")
                        }
                        if let etag, let serverETag = object["eTag"] as? String, serverETag != etag {
                            throw UsageError("the server's ETag does not match the provided ETag")
                        }
                        let existing = object["tags"] as? [String: String] ?? [:]
                        tags = existing.merging(newTags) { _, new in new }
                        currentETag = etag ?? object["eTag"] as? String
                        currentExpiry = object["expiresAt"] ?? NSNull()
                    }
                    var body: [String: Any] = ["tags": clearTags && tags.isEmpty ? NSNull() : tags]
                    body["expiresAt"] = expiresAt ?? currentExpiry
                    var headers: HTTPHeaders = [:]
                    if let currentETag, etag != nil || !clearTags { headers.add(name: "If-Match", value: currentETag) }
                    do {
                        return try await connection.client.call(
                            .PUT, path, query: query, body: try JSONSerialization.data(withJSONObject: body), headers: headers)
                    } catch let e as TygerClientError where e.status == 412 && etag == nil {
                        continue  // someone else changed it between our read and write: read again
                    }
                }
            }
            try printBuffers(response.text)
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
            Log.shared.setLevel(global.logLevel)
            if let ttl { _ = try parseTTL(ttl, option: "--access-ttl") }  // before starting a server for nothing
            let url = try await withConnection { try await accessURL(id: id, write: write, ttl: ttl, connection: $0) }
            print(url)
        }
    }

    struct StorageAccount: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "storage-account", abstract: "Storage accounts.", subcommands: [List.self],
            aliases: ["storage-accounts"])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the storage accounts.")
            @OptionGroup var global: GlobalOptions
            func run() async throws {
                Log.shared.setLevel(global.logLevel)
                let response = try await withConnection { try await $0.client.call(.GET, "/buffers/storage-accounts") }
                print(JSONOutput.render(try JSONOutput.parse(response.text), order: ["name", "location", "endpoint"]))
            }
        }
    }
}

/// `POST /buffers/{id}/access` → the URI.
func accessURL(id: String, write: Bool, ttl: String?, connection: Connection) async throws -> String {
    var query = [("writeable", write ? "true" : "false")]
    if let ttl { query.append(("ttl", timeSpan(try parseTTL(ttl, option: "--access-ttl")))) }
    let response = try await connection.client.call(.POST, "/buffers/\(ControlPlaneClient.escape(id))/access", query: query)
    guard let object = try JSONOutput.parse(response.text) as? [String: Any], let uri = object["uri"] as? String else {
        throw UsageError("the server returned no access URL")
    }
    return uri
}

func filterQuery(tag: [String], excludeTag: [String], softDeleted: Bool?) throws -> [(String, String)] {
    var query: [(String, String)] = []
    for (k, v) in try parseTags(tag).sorted(by: { $0.key < $1.key }) { query.append(("tag[\(k)]", v)) }
    for (k, v) in try parseTags(excludeTag, option: "--exclude-tag").sorted(by: { $0.key < $1.key }) {
        query.append(("excludeTag[\(k)]", v))
    }
    if let softDeleted { query.append(("softDeleted", softDeleted ? "true" : "false")) }
    return query
}

/// Fetches pages following `nextLink`, up to `limit` items (default 1000, with a warning when cut).
func listPaged(path: String, query: [(String, String)], limit: Int?) async throws -> [Any] {
    let want = limit ?? 1000
    return try await withConnection { connection in
        var items: [Any] = []
        var response = try await connection.client.call(.GET, path, query: query + [("limit", String(min(want + 1, 2000)))])
        while true {
            guard let page = try JSONOutput.parse(response.text) as? [String: Any] else {
                throw UsageError("the server returned an invalid page")
            }
            items += page["items"] as? [Any] ?? []
            guard items.count <= want, let next = page["nextLink"] as? String, !next.isEmpty else { break }
            response = try await connection.client.get(link: next)
        }
        if items.count > want {
            items = Array(items.prefix(want))
            if limit == nil {
                Log.writeStderr(
                    "Warning: the output was truncated. Specify the --limit parameter to increase the number of elements.\n")
            }
        }
        return items
    }
}
