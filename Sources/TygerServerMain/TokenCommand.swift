import ArgumentParser
import Foundation
import Logging
import TygerControlPlane
import TygerCore
import TygerPostgres
import TygerServer

/// `tyger-server token`: bearer tokens for the TCP listener.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Manage the bearer tokens TCP clients authenticate with.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token and print it (it is stored only as a SHA-256 hash and cannot be shown again)."
        )

        @OptionGroup var options: TokenStoreOptions

        @Option(name: .long, help: "A name for the token.")
        var name: String = "default"

        func run() async throws {
            let issued = try await TokenCommand.perform {
                try await options.withStore { try await $0.create(name: name) }
            }
            print(issued.token)
            TokenCommand.stderr("created token \(issued.record.id) (\(issued.record.name))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens: ID, creation time and name.")

        @OptionGroup var options: TokenStoreOptions

        func run() async throws {
            let records = try await TokenCommand.perform { try await options.withStore { try await $0.list() } }
            for record in records { print("\(record.id)\t\(record.createdAt)\t\(record.name)") }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token; it stops working at once.")

        @OptionGroup var options: TokenStoreOptions

        @Argument(help: "The token's ID (from 'token list').")
        var id: String

        func run() async throws {
            let found = try await TokenCommand.perform { try await options.withStore { try await $0.revoke(id: id) } }
            guard found else {
                TokenCommand.stderr("error: no token with ID '\(id)'")
                throw ExitCode.failure
            }
            TokenCommand.stderr("revoked token \(id)")
        }
    }

    static func perform<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as TygerServerError {
            stderr("error: \(error)")
            throw ExitCode.failure
        } catch let error as TygerControlPlaneError {
            stderr("error: \(error.message)")
            throw ExitCode.failure
        }
    }

    static func stderr(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// Where `tyger-server token` keeps tokens: a data directory's `tokens.json`, or the database of servers started with
/// `--database` (which accept the tokens it holds).
struct TokenStoreOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory of a server without --database (its tokens.json).")
    var dataDir: String?

    @Option(
        name: .long,
        help: "The PostgreSQL database of servers started with --database (postgres://USER[:PASSWORD]@HOST:PORT/DB)."
    )
    var database: String?

    func validate() throws {
        guard (dataDir == nil) != (database == nil) else {
            throw ValidationError("give either --data-dir or --database")
        }
        if let dataDir, dataDir.isEmpty { throw ValidationError("--data-dir must not be empty") }
    }

    /// Runs `body` with the token store, closing the database afterwards.
    func withStore<T>(_ body: (any TokenStore) async throws -> T) async throws -> T {
        guard let database else {
            // validate() made sure one is given.
            return try await body(JSONFileTokenStore(path: DataDirectoryLayout(root: dataDir ?? "").tokensPath))
        }
        let shared = try await PostgresDatabase(
            url: database,
            logger: Logger(label: "tyger-server") { _ in
                SwiftLogNoOpLogHandler()
            }
        )
        defer { shared.shutdown() }
        return try await body(PostgresTokenStore(database: shared))
    }
}
