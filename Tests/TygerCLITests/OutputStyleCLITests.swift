import Foundation
import Testing
import TygerTestSupport

extension LiveServerCLITests {
    /// One JSON style for every command, and logging through one handler whose level and format come from flags
    /// (before or after the subcommand) or the environment.
    @Suite(.timeLimit(.minutes(3))) struct OutputStyleCLITests {
        /// Checks the CLI's JSON style: two-space indentation, `": "` between keys and values, nothing sorted
        /// alphabetically where upstream's order differs, and one document that parses.
        private func expectStyle(_ text: String, firstKeys: [String], _ what: String) throws {
            #expect(!text.contains("\" : "), "\(what): a space before the colon: \(text)")
            #expect(!text.contains("\t"), "\(what): tabs: \(text)")
            #expect(text.contains("\": "), "\(what): no `\": \"`: \(text)")
            _ = try JSONSerialization.jsonObject(with: Data(text.utf8))
            // Keys of the first object (lines indented by 2, or by 4 inside a top-level array), in order.
            let lines = text.split(separator: "\n").map(String.init)
            let indent = text.hasPrefix("[") ? "    " : "  "
            let keys = lines.filter { $0.hasPrefix(indent + "\"") && !$0.hasPrefix(indent + " ") }.map {
                String($0.dropFirst(indent.count + 1).prefix { $0 != "\"" })
            }
            let expected = firstKeys.filter { keys.contains($0) }
            let seen = keys.filter { firstKeys.contains($0) }
            #expect(Array(seen.prefix(expected.count)) == expected, "\(what): key order \(keys), want \(firstKeys)")
            #expect(
                lines.allSatisfy { line in
                    let spaces = line.prefix { $0 == " " }.count
                    return spaces % 2 == 0
                },
                "\(what): indentation is not by two spaces: \(text)"
            )
        }

        @Test func everyJSONCommandPrintsInOneStyleWithUpstreamsFieldOrder() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create", "--tag", "b=2", "--tag", "a=1"])
                let bufferOrder = ["id", "createdAt", "location", "tags", "eTag"]
                try expectStyle(try await home.output(["buffer", "show", id]), firstKeys: bufferOrder, "buffer show")
                try expectStyle(try await home.output(["buffer", "list"]), firstKeys: bufferOrder, "buffer list")
                let shown = try await home.output(["buffer", "show", id])
                let sortedTags = #""a": "1",\s+"b": "2""#
                #expect(shown.range(of: sortedTags, options: .regularExpression) != nil, "tags sorted: \(shown)")

                let status = try await home.output(["api", "status"])
                try expectStyle(status, firstKeys: ["controlPlaneEndpoint", "mode", "healthy"], "api status")

                let spec = home.path + "/quick.yml"
                try TestFiles.write(Array("name: quick\nimage: ubuntu\ncommand: [\"true\"]\n".utf8), to: spec)
                #expect(try await home.output(["codespec", "create", "-f", spec]) == "1")
                try expectStyle(
                    try await home.output(["codespec", "show", "quick"]),
                    firstKeys: ["kind", "name", "version", "createdAt", "image", "command"],
                    "codespec show"
                )

                let run = try await home.output(["run", "create", "--codespec", "quick", "--run-tag", "t=1"])
                let runOrder = ["id", "status", "createdAt", "job", "timeoutSeconds", "tags"]
                let watched = try await home.output(["run", "watch", run])
                // One pretty object per change: the last one starts at the last line that is just "{".
                let watchLines = watched.split(separator: "\n", omittingEmptySubsequences: false)
                let start = try #require(watchLines.lastIndex(of: "{"), "\(watched)")
                let last = watchLines[start...].joined(separator: "\n")
                try expectStyle(last, firstKeys: ["id", "status", "createdAt"], "run watch")
                #expect(last.contains("\"status\": \"Succeeded\""), "\(watched)")
                try expectStyle(try await home.output(["run", "show", run]), firstKeys: runOrder, "run show")
                try expectStyle(try await home.output(["run", "list"]), firstKeys: runOrder, "run list")
                try expectStyle(try await home.output(["run", "counts"]), firstKeys: [], "run counts")
            }
        }

        @Test func logLevelBeforeOrAfterTheSubcommandOrFromTheEnvironment() async throws {
            try await withCLIHome { home in
                _ = try await home.output(["api", "status"])  // the server's start is not what we look at
                for arguments in [["--log-level", "debug", "run", "list"], ["run", "list", "--log-level=debug"]] {
                    let result = try await home.run(arguments)
                    #expect(result.exitCode == 0, "\(arguments): \(result)")
                    #expect(result.stdoutText.hasPrefix("["), "\(arguments): \(result)")
                    let line = result.stderrText.split(separator: "\n").first { $0.contains("Control-plane request") }
                    let debug = try #require(line, "\(arguments): no request log: \(result)")
                    #expect(debug.contains(" DBG "), "\(debug)")
                    #expect(debug.contains("method=GET") && debug.contains("path=/runs"), "\(debug)")
                    #expect(debug.contains("status=200"), "\(debug)")
                    #expect(debug.range(of: #"duration=\d+ms"#, options: .regularExpression) != nil, "\(debug)")
                    #expect(debug.range(of: #"requestId=\S+"#, options: .regularExpression) != nil, "\(debug)")
                    let stamped = #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z DBG "#
                    let hasTime = debug.range(of: stamped, options: .regularExpression) != nil
                    #expect(hasTime, "upstream's time format: \(debug)")
                }
                var environment = home.environment
                environment["TYGER_LOG_LEVEL"] = "debug"
                let fromEnvironment = try await runProcess(
                    try TygerBinary.path(),
                    ["run", "list"],
                    environment: environment
                )
                #expect(fromEnvironment.exitCode == 0, "\(fromEnvironment)")
                #expect(fromEnvironment.stderrText.contains("Control-plane request"), "\(fromEnvironment)")
                // The flag wins over the environment.
                let quiet = try await runProcess(
                    try TygerBinary.path(),
                    ["run", "list", "--log-level", "info"],
                    environment: environment
                )
                #expect(!quiet.stderrText.contains("Control-plane request"), "\(quiet)")

                let bad = try await home.run(["run", "list", "--log-level", "loud"])
                #expect(bad.exitCode == 64, "\(bad)")
                #expect(bad.stderrText.contains("--log-level"), "\(bad)")
            }
        }

        @Test func jsonLogLinesCarryTheRequestID() async throws {
            try await withCLIHome { home in
                _ = try await home.output(["api", "status"])
                let result = try await home.run(["--log-format", "json", "--log-level", "debug", "run", "list"])
                #expect(result.exitCode == 0, "\(result)")
                let lines = result.stderrText.split(separator: "\n")
                #expect(!lines.isEmpty, "\(result)")
                var requestIDs: [String] = []
                for line in lines {
                    let object = try #require(
                        try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                        "not JSON: \(line)"
                    )
                    #expect(object["level"] as? String == "debug", "\(line)")
                    #expect((object["time"] as? String).map(isRFC3339WithFraction) == true, "\(line)")
                    if object["message"] as? String == "Control-plane request" {
                        #expect(object["path"] as? String == "/runs")
                        if let id = object["requestId"] as? String { requestIDs.append(id) }
                    }
                }
                #expect(!requestIDs.isEmpty && requestIDs.allSatisfy { !$0.isEmpty }, "\(result)")
            }
        }
    }
}
