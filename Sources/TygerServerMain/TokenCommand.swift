import ArgumentParser
import Foundation
import TygerCore
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

        @OptionGroup var options: DataDirectoryOptions

        @Option(name: .long, help: "A name for the token.")
        var name: String = "default"

        func run() async throws {
            let issued = try await TokenCommand.perform { try await store(options).create(name: name) }
            print(issued.token)
            TokenCommand.stderr("created token \(issued.record.id) (\(issued.record.name))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens: ID, creation time and name.")

        @OptionGroup var options: DataDirectoryOptions

        func run() async throws {
            let records = try await TokenCommand.perform { try await store(options).list() }
            for record in records { print("\(record.id)\t\(record.createdAt)\t\(record.name)") }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token; it stops working at once.")

        @OptionGroup var options: DataDirectoryOptions

        @Argument(help: "The token's ID (from 'token list').")
        var id: String

        func run() async throws {
            let found = try await TokenCommand.perform { try await store(options).revoke(id: id) }
            guard found else {
                TokenCommand.stderr("error: no token with ID '\(id)'")
                throw ExitCode.failure
            }
            TokenCommand.stderr("revoked token \(id)")
        }
    }

    static func store(_ options: DataDirectoryOptions) -> JSONFileTokenStore {
        JSONFileTokenStore(path: DataDirectoryLayout(root: options.dataDir).tokensPath)
    }

    static func perform<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as TygerServerError {
            stderr("error: \(error)")
            throw ExitCode.failure
        }
    }

    static func stderr(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
