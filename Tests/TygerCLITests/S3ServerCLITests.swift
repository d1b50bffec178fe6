import Foundation
import Testing
import TygerClient
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `tyger-server run --blob-store s3://…`: buffers by ID whose blobs live in an S3 store. The run-engine CLI tests
/// run on it too (`TestExecutor.s3`); these cover the access URLs, which lead to the server's presigning route while
/// the bytes go straight between the CLI and the store.
@Suite(.timeLimit(.minutes(3)), .enabled(if: S3TestStore.settings != nil))
struct S3ServerCLITests {
    let settings = S3TestStore.settings!

    /// SeaweedFS, and rclone's `serve s3` (which ignores `If-None-Match`) where it runs.
    static var stores: [String] {
        guard let settings = S3TestStore.settings else { return [] }
        return ["seaweedfs"] + (settings.secondEndpoint == nil ? [] : ["rclone"])
    }

    /// Runs `body` with a server keeping its buffers in a new bucket of `store`, and a home logged in to it.
    ///
    /// Its writer leases last 60 s (`TYGER_TEST_WRITER_LEASE`), not 8: a write in a full test run's busy first
    /// minute once lost its lease between two renewals. The tests of the lease's expiry pass `"0"` (the 8 s default).
    func withS3Server(
        _ store: String,
        environment: [String: String] = [:],
        _ body: (ServerProcess, CLIHome, S3Client) async throws -> Void
    ) async throws {
        let (bucket, endpoint) = try await settings.makeBucket("srv", second: store == "rclone")
        try await withTemporaryDirectory(prefix: "tyger-s3srv") { dir in
            try await withServer(
                dataDirectory: dir + "/data",
                arguments: ["--blob-store", "s3://\(bucket)/team/buffers?endpoint=\(endpoint)"],
                environment: settings.credentialsEnvironment.merging(["TYGER_TEST_WRITER_LEASE": "60"]) { $1 }
                    .merging(environment) { $1 }
            ) { server in
                try await withCLIHome { home in
                    let login = try await home.run(["login", "unix://" + server.socketPath])
                    try #require(login.exitCode == 0, "\(login)")
                    try await HTTPTransport.withTransport { transport in
                        let client = S3Client(
                            location: S3Location(endpoint: endpoint, bucket: bucket, prefix: "team/buffers"),
                            credentials: S3Credentials(
                                accessKeyId: settings.accessKey,
                                secretAccessKey: settings.secretKey
                            ),
                            transport: transport
                        )
                        try await body(server, home, client)
                    }
                }
            }
        }
    }

    @Test(arguments: stores, [["--format", "native"], ["--compress", "fast"], ["--format", "0.3.0"]])
    func buffersByIDAreWrittenAndReadStraightFromTheStore(store: String, options: [String]) async throws {
        try await withS3Server(store) { server, home, client in
            let id = try await home.output(["buffer", "create"])
            let written = try await home.shell(
                "$TYGER buffer gen 20M | $TYGER buffer write \(id) --block-size 2M \(options.joined(separator: " "))"
            )
            #expect(written.exitCode == 0, "\(written)")
            let read = try await home.shell("$TYGER buffer read \(id) | sha256sum")
            let expected = try await home.shell("$TYGER buffer gen 20M | sha256sum")
            #expect(read.exitCode == 0, "\(read)")
            #expect(shaOf(read) == shaOf(expected))

            // The blobs are objects of the bucket, under the buffer's prefix; none went through the server's data
            // plane, which only presigned.
            let keys = try await client.keys(under: "team/buffers/\(id)/")
            #expect(keys.contains("team/buffers/\(id)/:buffer"), "\(keys)")
            #expect(keys.filter { $0.hasSuffix("/00/009") }.count == 1, "\(keys)")
            #expect(!server.log.contains("http.path=/containers/"))
            #expect(server.log.contains("http.method=POST http.path=/s3/\(id) http.status=200"))

            // Write-once, through the CLI's check and the store's.
            let again = try await home.shell("$TYGER buffer gen 1M | $TYGER buffer write \(id)")
            #expect(again.exitCode == 1, "\(again)")
            #expect(again.stderrText.contains("write-once"), "\(again)")
        }
    }

    @Test func accessURLsGrantWhatTheySayAndNoMore() async throws {
        try await withS3Server("seaweedfs") { _, home, client in
            let id = try await home.output(["buffer", "create"])
            let readURL = try await home.output(["buffer", "access", id])
            #expect(readURL.contains("/s3/\(id)?"), "\(readURL)")
            let refused = try await home.run(["buffer", "write", readURL], input: .bytes(Array("hi\n".utf8)))
            #expect(refused.exitCode == 1, "\(refused)")
            #expect(refused.stderrText.contains("read-only"), "\(refused)")
            #expect(try await client.keys(under: "team/buffers/\(id)/") == ["team/buffers/\(id)/:buffer"])

            let writeURL = try await home.output(["buffer", "access", id, "-w"])
            let written = try await home.run(["buffer", "write", writeURL], input: .bytes(Array("hi\n".utf8)))
            #expect(written.exitCode == 0, "\(written)")
            let back = try await home.run(["buffer", "read", readURL])
            #expect(back.stdoutText == "hi\n", "\(back)")

            // A URL whose signature is not the server's gets nothing.
            let signature = try #require(readURL.range(of: "&sig="))
            let forged = String(readURL[..<signature.upperBound]) + "MEUCIQ" + readURL[signature.upperBound...]
            let denied = try await home.run(["buffer", "read", forged])
            #expect(denied.exitCode == 1, "\(denied)")
            #expect(denied.stderrText.contains("AuthenticationFailed"), "\(denied)")
            #expect(denied.stdoutText.isEmpty)
        }
    }

    /// A reader following a slow writer for several times the life of a presigned URL (2 s here, through the
    /// test-only setting): both keep getting new URLs as the old ones expire, and every line arrives.
    @Test func transfersOutliveTheirPresignedURLs() async throws {
        try await withS3Server("seaweedfs", environment: ["TYGER_TEST_PRESIGNED_LIFETIME": "2"]) { server, home, _ in
            let id = try await home.output(["buffer", "create"])
            let reader = try home.start(["buffer", "read", id])
            let written = try await home.shell(
                "for i in $(seq 1 16); do echo line $i; sleep 0.5; done | $TYGER buffer write \(id) --flush-interval 100ms"
            )
            #expect(written.exitCode == 0, "\(written)")
            let read = try await reader.wait(timeout: .seconds(60))
            #expect(read.exitCode == 0, "\(read)")
            #expect(read.stdoutText == (1...16).map { "line \($0)\n" }.joined(), "\(read)")
            // Both sides asked again and again: far more presign requests than the two an hour-long URL needs.
            let presigns = server.log.components(separatedBy: "http.method=POST http.path=/s3/\(id) ").count - 1
            #expect(presigns > 16, "\(presigns) presign requests")
        }
    }

    /// Starts `tyger buffer write ID` with an open stdin pipe and waits until blob `00/000` is in the bucket.
    func startWriter(_ home: CLIHome, _ client: S3Client, _ id: String, first: String) async throws -> ChildProcess {
        let writer = try home.start(
            ["buffer", "write", id, "--flush-interval", "50ms", "--block-size", "16K"],
            input: .pipe
        )
        try writer.writeStdin(Array(first.utf8))
        var stored = false
        let deadline = ContinuousClock.now + .seconds(30)
        while !stored && ContinuousClock.now < deadline {
            stored = try await client.keys(under: "team/buffers/\(id)/").contains("team/buffers/\(id)/00/000")
            if !stored { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(stored, "the writer never stored its first blob: \(writer.stderrSoFar)")
        return writer
    }

    /// Before: the writer lease was an object in the bucket, which a killed writer left there, and its readers
    /// waited for ever. Now it is a record in the server's database that runs out.
    @Test func aKilledWriterIsReportedAsAbandonedAndASecondWriterIsRefused() async throws {
        try await withS3Server("seaweedfs", environment: ["TYGER_TEST_WRITER_LEASE": "0"]) { _, home, client in
            let id = try await home.output(["buffer", "create"])
            let writer = try await startWriter(home, client, id, first: "first line\n")
            let second = try await home.run(["buffer", "write", id], input: .bytes(Array("second\n".utf8)))
            #expect(second.exitCode == 1, "\(second)")
            #expect(second.stderrText.contains("another writer"), "\(second)")
            // No lease object in the bucket: the lease is the server's.
            let keys = try await client.keys(under: "team/buffers/\(id)/")
            #expect(!keys.contains { $0.hasSuffix("/:writer") }, "\(keys)")

            writer.signal(SIGKILL)
            _ = try await writer.wait(timeout: .seconds(10))
            let read = try await home.run(["buffer", "read", id], timeout: .seconds(60))
            #expect(read.exitCode == 1, "\(read)")
            #expect(read.stderrText.contains("writer stopped without finishing"), "\(read)")
            #expect(read.elapsed < .seconds(30), "the reader took \(read.elapsed)")
            #expect(read.stdoutText == "first line\n")

            // An abandoned buffer stays what it is: no new writer takes it over.
            let late = try await home.run(["buffer", "write", id], input: .bytes(Array("late\n".utf8)))
            #expect(late.exitCode == 1, "\(late)")
            #expect(late.stderrText.contains("write-once"), "\(late)")

            // A resumed write (the server's `resume` of the lease) checks the stored line against its input and
            // finishes the buffer; the bytes go straight to the store.
            let resumed = try await home.run(
                ["buffer", "write", "--resume", id],
                input: .bytes(Array("first line\nand the rest\n".utf8))
            )
            #expect(resumed.exitCode == 0, "\(resumed)")
            let whole = try await home.run(["buffer", "read", id], timeout: .seconds(60))
            #expect(whole.exitCode == 0, "\(whole)")
            #expect(whole.stdoutText == "first line\nand the rest\n", "\(whole)")
        }
    }

    /// A writer that stops renewing its lease (stopped for longer than the lease) finds it lost when it goes on: its
    /// next write is refused instead of presigned, and readers were told the buffer was abandoned meanwhile.
    @Test func aWriterWhoseLeaseRanOutCannotWriteOn() async throws {
        try await withS3Server("seaweedfs", environment: ["TYGER_TEST_WRITER_LEASE": "0"]) { _, home, client in
            let id = try await home.output(["buffer", "create"])
            let writer = try await startWriter(home, client, id, first: "before the pause\n")
            writer.signal(SIGSTOP)
            let read = try await home.run(["buffer", "read", id], timeout: .seconds(60))
            #expect(read.exitCode == 1, "\(read)")
            #expect(read.stderrText.contains("writer stopped without finishing"), "\(read)")
            #expect(read.stdoutText == "before the pause\n")
            writer.signal(SIGCONT)
            try writer.writeStdin(Array("after the pause\n".utf8))
            writer.closeStdin()
            let wrote = try await writer.wait(timeout: .seconds(60))
            #expect(wrote.exitCode == 1, "\(wrote)")
            #expect(wrote.stderrText.contains("lease on the buffer ran out"), "\(wrote)")
            let keys = try await client.keys(under: "team/buffers/\(id)/")
            #expect(!keys.contains { $0.hasSuffix("/00/001") }, "\(keys)")
        }
    }

    /// A missing bucket, missing credentials or wrong ones: one line, and no server.
    @Test func aServerWithoutItsBucketOrItsCredentialsDoesNotStart() async throws {
        try await withTemporaryDirectory(prefix: "tyger-s3srv") { dir in
            let store = "s3://no-such-bucket-\(UInt32.random(in: 0...UInt32.max))?endpoint=\(settings.endpoint)"
            for (environment, code, message) in [
                (settings.credentialsEnvironment, Int32(1), "the bucket 'no-such-bucket-"),
                (
                    ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""], 64,
                    "--blob-store needs credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                ),
                (
                    ["AWS_ACCESS_KEY_ID": settings.accessKey, "AWS_SECRET_ACCESS_KEY": "wrong"], 1,
                    "refused the credentials"
                ),
            ] {
                let result = try await runProcess(
                    try TygerServerBinary.path(),
                    ["run", "--data-dir", dir + "/data", "--blob-store", store],
                    environment: environment,
                    timeout: .seconds(60)
                )
                #expect(result.exitCode == code, "\(result)")
                #expect(result.stderrText.contains(message), "\(result)")
            }
        }
    }
}
