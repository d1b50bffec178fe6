import Foundation
import Testing
import TygerTestSupport

extension LiveServerCLITests {
    /// `tyger buffer create/show/list/set/delete/restore/purge/storage-account` against the embedded server.
    @Suite(.timeLimit(.minutes(3))) struct BufferResourceCLITests {
        @Test func createPrintsAnIDOrTheFullResource() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                #expect(isBufferID(id), "\(id)")

                let before = Date()
                let full = try object(
                    try await home.json([
                        "buffer", "create", "--tag", "a=1", "--tag", "b=2,c=3", "--ttl", "0.01:00:00",
                        "--full-resource",
                    ])
                )
                let fullID = try #require(full["id"] as? String)
                #expect(isBufferID(fullID))
                #expect(fullID != id)
                let createdAt = try #require(full["createdAt"] as? String)
                #expect(isRFC3339WithFraction(createdAt), "\(createdAt)")
                #expect(full["location"] as? String == "local")
                #expect(tags(full) == ["a": "1", "b": "2", "c": "3"])
                let eTag = try #require(full["eTag"] as? String)
                #expect(!eTag.isEmpty)
                #expect(full["isSoftDeleted"] == nil, "false is omitted")
                let expiresAt = try #require((full["expiresAt"] as? String).flatMap(parseRFC3339))
                #expect(abs(expiresAt.timeIntervalSince(before) - 3600) < 60, "\(expiresAt)")

                let shown = try object(try await home.json(["buffer", "show", fullID]))
                #expect(shown["id"] as? String == fullID)
                #expect(shown["eTag"] as? String == eTag)
                #expect(tags(shown) == ["a": "1", "b": "2", "c": "3"])
                #expect(shown["createdAt"] as? String == createdAt)

                let plain = try object(try await home.json(["buffer", "show", id]))
                #expect(plain["tags"] == nil)
                #expect(plain["expiresAt"] == nil)

                let located = try await home.output(["buffer", "create", "--location", "local"])
                #expect(isBufferID(located))
                let elsewhere = try await home.run(["buffer", "create", "--location", "eastus"])
                #expect(elsewhere.exitCode == 1, "\(elsewhere)")
                #expect(elsewhere.stderrText.contains("Buffer location can only be 'local'"), "\(elsewhere)")

                let missing = try await home.run(["buffer", "show", "aaaaaaaaaaaaaaaaaaaaaaaaaa"])
                #expect(missing.exitCode == 1, "\(missing)")
                #expect(missing.stderrText.contains("NotFound"), "\(missing)")
            }
        }

        @Test func listFiltersByTagsAndLimitsNewestFirst() async throws {
            try await withCLIHome { home in
                let a = try await home.output(["buffer", "create", "--tag", "x=1"])
                let b = try await home.output(["buffer", "create", "--tag", "x=2"])
                let c = try await home.output(["buffer", "create", "--tag", "x=1,y=1"])

                let all = try await home.run(["buffer", "list"])
                #expect(all.exitCode == 0, "\(all)")
                #expect(!all.stderrText.contains("truncated"))
                let allIDs = ids(try objects(try JSONSerialization.jsonObject(with: Data(all.stdout))))
                #expect(allIDs == [c, b, a], "newest first")

                #expect(ids(try objects(try await home.json(["buffer", "list", "--tag", "x=1"]))) == [c, a])
                #expect(
                    ids(try objects(try await home.json(["buffer", "list", "--tag", "x=1", "--tag", "y=1"]))) == [c]
                )
                #expect(ids(try objects(try await home.json(["buffer", "list", "--tag", "x=1,y=1"]))) == [c])
                #expect(ids(try objects(try await home.json(["buffer", "list", "--exclude-tag", "y=1"]))) == [b, a])
                #expect(
                    ids(try objects(try await home.json(["buffer", "list", "--tag", "x=1", "--exclude-tag", "y=1"])))
                        == [a]
                )
                #expect(ids(try objects(try await home.json(["buffer", "list", "--tag", "x=3"]))).isEmpty)

                // With --limit the output is cut silently, as upstream does (the warning is for the default limit only).
                let limited = try await home.run(["buffer", "list", "--limit", "2"])
                #expect(limited.exitCode == 0, "\(limited)")
                #expect(ids(try objects(try JSONSerialization.jsonObject(with: Data(limited.stdout)))) == [c, b])
                #expect(!limited.stderrText.contains("truncated"), "\(limited)")
                #expect(ids(try objects(try await home.json(["buffer", "list", "-l", "0"]))).isEmpty)

                // Soft-deleted buffers are listed only with --soft-deleted.
                _ = try await home.output(["buffer", "delete", b])
                #expect(ids(try objects(try await home.json(["buffer", "list"]))) == [c, a])
                let deleted = try objects(try await home.json(["buffer", "list", "--soft-deleted"]))
                #expect(ids(deleted) == [b])
                #expect(deleted.first?["isSoftDeleted"] as? Bool == true)
                #expect(
                    ids(try objects(try await home.json(["buffer", "list", "--soft-deleted", "--tag", "x=1"]))).isEmpty
                )
                let notShown = try await home.run(["buffer", "show", b])
                #expect(notShown.exitCode == 1)
                #expect(notShown.stderrText.contains("NotFound"), "\(notShown)")
                #expect(try object(try await home.json(["buffer", "show", b, "--soft-deleted"]))["id"] as? String == b)
            }
        }

        @Test func listWarnsWhenTheDefaultLimitTruncates() async throws {
            try await withCLIHome { home in
                _ = try await home.output(["buffer", "create"])  // starts the server
                // 1001 buffers: more than the default limit of 1000. Created over the socket in one curl process
                // (one CLI per buffer would take minutes).
                let socket = home.serverDirectory + "/api.sock"
                let created = try await home.shell(
                    """
                    urls=$(for i in $(seq 1000); do printf 'http://localhost/buffers?api-version=1.0 '; done)
                    curl -sSf --unix-socket '\(socket)' -H 'Content-Type: application/json' -d '{}' $urls > /dev/null
                    """,
                    timeout: .seconds(120)
                )
                #expect(created.exitCode == 0, "\(created)")
                let list = try await home.run(["buffer", "list"], timeout: .seconds(60))
                #expect(list.exitCode == 0, "\(list)")
                #expect(try objects(try JSONSerialization.jsonObject(with: Data(list.stdout))).count == 1000)
                #expect(
                    list.stderrText.contains(
                        "Warning: the output was truncated. Specify the --limit parameter to increase the number of elements."
                    ),
                    "\(list)"
                )
                let larger = try await home.run(["buffer", "list", "--limit", "1500"], timeout: .seconds(60))
                #expect(larger.exitCode == 0, "\(larger)")
                #expect(try objects(try JSONSerialization.jsonObject(with: Data(larger.stdout))).count == 1001)
                #expect(!larger.stderrText.contains("truncated"))
            }
        }

        @Test func setMergesClearsAndChecksETags() async throws {
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create", "--tag", "a=1"])

                let merged = try object(try await home.json(["buffer", "set", id, "--tag", "b=2"]))
                #expect(tags(merged) == ["a": "1", "b": "2"])
                let overwritten = try object(try await home.json(["buffer", "set", id, "--tag", "a=9,c=3"]))
                #expect(tags(overwritten) == ["a": "9", "b": "2", "c": "3"])
                #expect(overwritten["eTag"] as? String != merged["eTag"] as? String)

                let replaced = try object(try await home.json(["buffer", "set", id, "--clear-tags", "--tag", "z=0"]))
                #expect(tags(replaced) == ["z": "0"])
                let cleared = try object(try await home.json(["buffer", "set", id, "--clear-tags"]))
                #expect(cleared["tags"] == nil, "\(cleared)")

                // A stale ETag is refused, with or without a read first (--clear-tags sends it straight as If-Match).
                let current = try #require(cleared["eTag"] as? String)
                let stale = try await home.run(["buffer", "set", id, "--etag", "12345", "--tag", "k=v"])
                #expect(stale.exitCode == 1, "\(stale)")
                #expect(stale.stderrText.contains("ETag"), "\(stale)")
                let staleClear = try await home.run(["buffer", "set", id, "--etag", "12345", "--clear-tags"])
                #expect(staleClear.exitCode == 1, "\(staleClear)")
                #expect(staleClear.stderrText.contains("ETag"), "\(staleClear)")
                #expect(
                    try object(try await home.json(["buffer", "show", id]))["eTag"] as? String == current,
                    "nothing changed"
                )

                let matched = try object(try await home.json(["buffer", "set", id, "--etag", current, "--tag", "k=v"]))
                #expect(tags(matched) == ["k": "v"])

                // --ttl sets the expiry and keeps the tags.
                let before = Date()
                let expiring = try object(try await home.json(["buffer", "set", id, "--ttl", "0.02:00:00"]))
                #expect(tags(expiring) == ["k": "v"])
                let expiresAt = try #require((expiring["expiresAt"] as? String).flatMap(parseRFC3339), "\(expiring)")
                #expect(abs(expiresAt.timeIntervalSince(before) - 7200) < 60, "\(expiresAt)")
                // A tag change keeps the expiry.
                let retagged = try object(try await home.json(["buffer", "set", id, "--tag", "m=n"]))
                #expect(retagged["expiresAt"] as? String == expiring["expiresAt"] as? String)
            }
        }

        @Test func deleteRestoreAndPurgeByIDTagAndAll() async throws {
            try await withCLIHome { home in
                let a = try await home.output(["buffer", "create", "--tag", "t=del"])
                let b = try await home.output(["buffer", "create", "--tag", "t=del"])
                let c = try await home.output(["buffer", "create", "--tag", "t=keep"])

                for command in ["delete", "restore", "purge"] {
                    let none = try await home.run(["buffer", command])
                    #expect(none.exitCode == 64, "\(none)")
                    #expect(none.stderrText.contains("One of ID, --tag, or --all must be specified"), "\(none)")
                    let two = try await home.run(["buffer", command, a, "--all", "--force"])
                    #expect(two.exitCode == 64, "\(two)")
                    #expect(two.stderrText.contains("One of ID, --tag, or --all must be specified"), "\(two)")
                }

                // Bulk without --force and without a terminal: refused, nothing changed.
                let unconfirmed = try await home.run(["buffer", "delete", "--tag", "t=del"])
                #expect(unconfirmed.exitCode == 1, "\(unconfirmed)")
                #expect(
                    unconfirmed.stderrText.contains("refusing to delete 2 buffers without confirmation: use --force"),
                    "\(unconfirmed)"
                )
                let nothing = try await home.run(["buffer", "delete", "--tag", "t=none"])
                #expect(nothing.exitCode == 0, "\(nothing)")
                #expect(nothing.stderrText.contains("No buffers found."), "\(nothing)")

                #expect(
                    try await home.output(["buffer", "delete", "--tag", "t=del", "--force"]) == "Deleted 2 buffers."
                )
                #expect(Set(ids(try objects(try await home.json(["buffer", "list", "--soft-deleted"])))) == [a, b])
                #expect(ids(try objects(try await home.json(["buffer", "list"]))) == [c])
                #expect(
                    try await home.output(["buffer", "delete", "--tag", "t=del", "--force"]) == "Deleted 0 buffers."
                )
                #expect(
                    try await home.output(["buffer", "restore", "--tag", "t=del", "--force"]) == "Restored 2 buffers."
                )

                // By ID: the buffer as JSON (one object, or an array for several).
                let deleted = try object(try await home.json(["buffer", "delete", a]))
                #expect(deleted["id"] as? String == a)
                #expect(deleted["isSoftDeleted"] as? Bool == true)
                let again = try await home.run(["buffer", "delete", a])
                #expect(again.exitCode == 1, "\(again)")
                #expect(again.stderrText.contains("already soft-deleted"), "\(again)")
                let restored = try object(try await home.json(["buffer", "restore", a]))
                #expect(restored["id"] as? String == a)
                #expect(restored["isSoftDeleted"] == nil)
                let both = try objects(try await home.json(["buffer", "delete", a, b]))
                #expect(ids(both) == [a, b])
                #expect(try objects(try await home.json(["buffer", "restore", a, b])).count == 2)

                #expect(try await home.output(["buffer", "delete", "--all", "--force"]) == "Deleted 3 buffers.")
                #expect(
                    try await home.output(["buffer", "restore", "--all", "--force", "--exclude-tag", "t=keep"])
                        == "Restored 2 buffers."
                )
                #expect(ids(try objects(try await home.json(["buffer", "list", "--soft-deleted"]))) == [c])

                // Purge: soft-deleted buffers only.
                let active = try await home.run(["buffer", "purge", a])
                #expect(active.exitCode == 1, "\(active)")
                #expect(active.stderrText.contains("not soft-deleted"), "\(active)")
                _ = try await home.output(["buffer", "delete", a])
                let purged = try object(try await home.json(["buffer", "purge", a]))
                #expect(purged["id"] as? String == a)
                let unconfirmedPurge = try await home.run(["buffer", "purge", "--all"])
                #expect(
                    unconfirmedPurge.stderrText.contains("refusing to purge 1 buffers"),
                    "a purged buffer no longer counts: \(unconfirmedPurge)"
                )
                #expect(try await home.output(["buffer", "purge", "--all", "--force"]) == "Purged 1 buffers.")
                #expect(try await home.output(["buffer", "purge", "--all", "--force"]) == "Purged 0 buffers.")
                #expect(ids(try objects(try await home.json(["buffer", "list"]))) == [b])
            }
        }

        @Test func purgeRemovesTheBufferAndItsDataAfterTheExpiryPass() async throws {
            try await withTemporaryDirectory(prefix: "tyger-purge") { dir in
                let data = dir + "/server"
                try await withServer(dataDirectory: data, arguments: ["--expiry-interval", "1s"]) { server in
                    try await withCLIHome { home in
                        let login = try await home.run(["login", "unix://" + server.socketPath])
                        #expect(login.exitCode == 0, "\(login)")
                        let id = try await home.output(["buffer", "create"])
                        let written = try await home.shell("$TYGER buffer gen 100K | $TYGER buffer write \(id)")
                        #expect(written.exitCode == 0, "\(written)")
                        let directory = data + "/buffers/" + id
                        #expect(TestFiles.regularFiles(under: directory).contains(".bufferend"))

                        _ = try await home.output(["buffer", "delete", id])
                        #expect(try object(try await home.json(["buffer", "purge", id]))["id"] as? String == id)
                        #expect(
                            await eventually(timeout: .seconds(60), every: .milliseconds(100)) {
                                !TestFiles.exists(directory)
                            }
                        )
                        let gone = try await home.run(["buffer", "show", id, "--soft-deleted"])
                        #expect(gone.exitCode == 1, "\(gone)")
                        #expect(gone.stderrText.contains("NotFound"), "\(gone)")

                        // A buffer whose TTL runs out is soft-deleted by the same pass.
                        let shortLived = try await home.output(["buffer", "create", "--ttl", "0.00:00:01"])
                        let moved = await eventually(timeout: .seconds(60), every: .milliseconds(200)) {
                            let listed = try? await home.json(["buffer", "list", "--soft-deleted"])
                            return listed.flatMap { try? objects($0) }.map(ids)?.contains(shortLived) == true
                        }
                        #expect(moved)
                        #expect(
                            TestFiles.exists(data + "/buffers/" + shortLived),
                            "soft-deleted data stays until purged"
                        )
                    }
                }
            }
        }

        @Test func storageAccountListShowsTheLocalAccount() async throws {
            try await withCLIHome { home in
                let accounts = try objects(try await home.json(["buffer", "storage-account", "list"]))
                #expect(accounts.count == 1)
                let account = try #require(accounts.first)
                #expect(account["name"] as? String == "local")
                #expect(account["location"] as? String == "local")
                #expect(account["endpoint"] as? String == "http+unix://\(home.serverDirectory)/api.sock:/")
                let alias = try await home.run(["buffer", "storage-accounts", "list"])
                #expect(alias.exitCode == 0, "\(alias)")
            }
        }

    }
}
