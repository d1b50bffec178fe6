import Foundation
import Testing
import TygerTestSupport

/// `tyger run list --tag` and `tyger run counts --tag` against the embedded server: only the runs tagged `k=v`.
///
/// The CLI sends `tag%5Bk%5D=v` (brackets percent-encoded, as Go's `url.Values.Encode`); the runs routes used to
/// read only undecoded keys and returned every run.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RunTagFilterCLITests {
    /// A run spec with `tags`, so the test does not depend on the run-tag flag's name.
    private static func spec(tags: [String: String]) -> String {
        var yaml = "job:\n  codespec:\n    image: ubuntu\n    command: [\"true\"]\n"
        if !tags.isEmpty {
            yaml += "tags:\n" + tags.sorted { $0.key < $1.key }.map { "  \($0.key): \"\($0.value)\"\n" }.joined()
        }
        return yaml
    }

    /// The sum of a `run counts` map.
    private static func total(_ counts: [String: Any]) -> Int {
        counts.values.reduce(0) { $0 + (($1 as? NSNumber)?.intValue ?? 0) }
    }

    @Test(arguments: TestExecutor.available) func runListAndCountsFilterByTag(_ executor: TestExecutor) async throws {
        try await withCLIHome(environment: try await executor.environment()) { home in
            var tagged: Set<String> = []
            for (i, tags) in [["k": "v"], ["k": "other"], ["k": "v", "x": "1"], [:]].enumerated() {
                let path = home.path + "/run\(i).yml"
                try TestFiles.write(Array(Self.spec(tags: tags).utf8), to: path)
                let id = try await home.output(["run", "create", "-f", path])
                #expect(!id.isEmpty && !id.contains("\n"), "\(id)")
                if tags["k"] == "v" { tagged.insert(id) }
            }

            let all = try #require(try await home.json(["run", "list"]) as? [[String: Any]])
            #expect(all.count == 4)

            let listed = try #require(try await home.json(["run", "list", "--tag", "k=v"]) as? [[String: Any]])
            #expect(Set(listed.map { "\($0["id"] ?? "")" }) == tagged, "\(listed)")
            for run in listed {
                #expect((run["tags"] as? [String: String])?["k"] == "v", "\(run)")
            }
            let both = try #require(
                try await home.json(["run", "list", "--tag", "k=v", "--tag", "x=1"]) as? [[String: Any]]
            )
            #expect(both.count == 1, "\(both)")
            let none = try #require(try await home.json(["run", "list", "--tag", "k=nothing"]) as? [[String: Any]])
            #expect(none.isEmpty, "\(none)")

            let counts = try #require(try await home.json(["run", "counts", "--tag", "k=v"]) as? [String: Any])
            #expect(Self.total(counts) == 2, "\(counts)")
            let allCounts = try #require(try await home.json(["run", "counts"]) as? [String: Any])
            #expect(Self.total(allCounts) == 4, "\(allCounts)")
        }
    }

    @Test(arguments: TestExecutor.available)
    func runSetChangesTagsWithAnETagPrecondition(_ executor: TestExecutor) async throws {
        try await withCLIHome(environment: try await executor.environment()) { home in
            let path = home.path + "/run.yml"
            try TestFiles.write(Array(Self.spec(tags: ["a": "1"]).utf8), to: path)
            let id = try await home.output(["run", "create", "-f", path])
            // Ended first: every state change of the run changes its ETag too (a container's start takes long
            // enough for that to happen between the steps below).
            _ = try await home.run(["run", "watch", id])
            let created = try #require(try await home.json(["run", "show", id]) as? [String: Any])
            let etag = try #require(created["eTag"] as? String)

            // A stale ETag is refused and changes nothing.
            let stale = try await home.run(["run", "set", id, "--tag", "k=v", "--etag", "12345"])
            #expect(stale.exitCode == 1, "\(stale)")
            #expect(stale.stderrText.contains("ETag"), "\(stale)")

            // Merging (the default) keeps the other tags; the answer carries a new ETag.
            let merged = try #require(try await home.json(["run", "set", id, "--tag", "k=v"]) as? [String: Any])
            #expect(merged["tags"] as? [String: String] == ["a": "1", "k": "v"], "\(merged)")
            let mergedETag = try #require(merged["eTag"] as? String)
            #expect(mergedETag != etag)
            let listed = try #require(try await home.json(["run", "list", "--tag", "k=v"]) as? [[String: Any]])
            #expect(listed.map { "\($0["id"] ?? "")" } == [id], "\(listed)")

            // With the current ETag, --clear-tags replaces the tags.
            let replaced = try #require(
                try await home.json(["run", "set", id, "--clear-tags", "--tag", "z=0", "--etag", mergedETag])
                    as? [String: Any]
            )
            #expect(replaced["tags"] as? [String: String] == ["z": "0"], "\(replaced)")
        }
    }
}
