import Testing
import TygerClient
import TygerCore
import TygerTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `buffer write/read s3://BUCKET/PREFIX/BUFFER?endpoint=…` against a real S3 store (SeaweedFS, which checks
/// signatures), as `file://` works against a local directory. Skipped where `tools/test` started no store.
@Suite(.timeLimit(.minutes(2)), .enabled(if: S3TestStore.settings != nil))
struct S3BufferCLITests {
    let settings = S3TestStore.settings!

    var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": settings.accessKey, "AWS_SECRET_ACCESS_KEY": settings.secretKey]
    }

    /// The stores: SeaweedFS, and rclone's `serve s3` (which ignores `If-None-Match`) where it runs.
    static var stores: [String] {
        guard let settings = S3TestStore.settings else { return [] }
        return ["seaweedfs"] + (settings.secondEndpoint == nil ? [] : ["rclone"])
    }

    func endpoint(_ store: String) -> String {
        store == "rclone" ? settings.secondEndpoint! : settings.endpoint
    }

    /// A bucket made for the test.
    func makeBucket(_ store: String = "seaweedfs") async throws -> String {
        let bucket = S3TestStore.uniqueName("cli")
        try await HTTPTransport.withTransport { transport in
            let client = S3Client(
                location: S3Location(endpoint: endpoint(store), bucket: bucket),
                credentials: S3Credentials(accessKeyId: settings.accessKey, secretAccessKey: settings.secretKey),
                transport: transport
            )
            try await client.createBucket()
        }
        return bucket
    }

    func url(_ bucket: String, _ buffer: String, store: String = "seaweedfs") -> String {
        "s3://\(bucket)/team/runs/\(buffer)?endpoint=\(endpoint(store))"
    }

    func tyger(_ arguments: [String], environment: [String: String]? = nil) async throws -> ProcessResult {
        try await runProcess(TygerBinary.path(), arguments, environment: environment ?? self.environment)
    }

    @Test(arguments: stores, [["--format", "native"], ["--compress", "fast"], ["--format", "0.3.0"]])
    func aBufferWrittenToS3ReadsBackAndIsWriteOnce(store: String, options: [String]) async throws {
        let bucket = try await makeBucket(store)
        let size = (3 << 20) + 4567
        let buffer = url(bucket, "b1", store: store)
        let write = try await runShell(
            #""$TYGER" buffer gen \#(size) | "$TYGER" buffer write '\#(buffer)' --block-size 1M \#(options.joined(separator: " "))"#,
            environment: environment
        )
        #expect(write.exitCode == 0, "\(write)")
        let read = try await tyger(["buffer", "read", buffer, "--dop", "3"])
        #expect(read.exitCode == 0, "\(read)")
        #expect(read.stdout.count == size)
        #expect(mismatch(read.stdout, Payload.generated(count: size)) == nil)

        let again = try await runShell(
            #""$TYGER" buffer gen 10 | "$TYGER" buffer write '\#(buffer)'"#,
            environment: environment
        )
        #expect(again.exitCode == 1, "\(again)")
        #expect(again.stderrText.contains("write-once"), "\(again)")
        let unchanged = try await tyger(["buffer", "read", buffer])
        #expect(unchanged.stdout.count == size, "the second write changed the buffer")
    }

    /// A write interrupted by a signal lets go of its lease object (a killed one would keep it): `--resume` takes it
    /// again and continues after the stored blobs, from a file positioned past them.
    @Test(arguments: stores)
    func anInterruptedWriteToS3IsResumed(store: String) async throws {
        let bucket = try await makeBucket(store)
        let buffer = url(bucket, "r1", store: store)
        let input = Payload.random(count: 3 << 20, seed: 31)
        try await withTemporaryDirectory { dir in
            let file = dir + "/input"
            try TestFiles.write(input, to: file)
            let writer = try ChildProcess(
                TygerBinary.path(),
                ["buffer", "write", buffer, "--block-size", "64K", "--flush-interval", "20ms"],
                input: .pipe,
                environment: environment
            )
            _ = try? await onThread { try writer.writeStdin(Array(input.prefix(1 << 20))) }
            let stored = await eventually(timeout: .seconds(30)) {
                let keys = try? await HTTPTransport.withTransport { transport in
                    try await S3Client(
                        location: S3Location(endpoint: endpoint(store), bucket: bucket),
                        credentials: S3Credentials(
                            accessKeyId: settings.accessKey,
                            secretAccessKey: settings.secretKey
                        ),
                        transport: transport
                    ).keys(under: "team/runs/r1/")
                }
                return keys?.contains("team/runs/r1/" + BlobPath.name(for: 10)) ?? false
            }
            #expect(stored, "the writer did not store its blobs")
            writer.signal(SIGINT)
            let interrupted = try await writer.wait(timeout: .seconds(30))
            #expect(interrupted.exitCode != 0, "\(interrupted)")
            let resumed = try await tyger(["buffer", "write", "--resume", buffer, "-i", file])
            #expect(resumed.exitCode == 0, "\(resumed)")
            #expect(resumed.stderrText.contains("resumedAt="), "\(resumed)")
            let read = try await tyger(["buffer", "read", buffer])
            #expect(read.exitCode == 0, "\(read)")
            #expect(mismatch(read.stdout, input) == nil)
        }
    }

    @Test func badCredentialsMissingBucketsAndMissingBuffersGiveOneClearLine() async throws {
        let bucket = try await makeBucket()
        let buffer = url(bucket, "b2")
        let written = try await runShell(
            #""$TYGER" buffer gen 1000 | "$TYGER" buffer write '\#(buffer)'"#,
            environment: environment
        )
        #expect(written.exitCode == 0, "\(written)")

        var wrongSecret = environment
        wrongSecret["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let refused = try await tyger(["buffer", "read", buffer], environment: wrongSecret)
        #expect(refused.exitCode == 1, "\(refused)")
        #expect(refused.stderrText.contains("refused the credentials"), "\(refused)")

        let noBucket = try await tyger(["buffer", "read", url(S3TestStore.uniqueName("missing"), "b2")])
        #expect(noBucket.exitCode == 1, "\(noBucket)")
        #expect(noBucket.stderrText.contains("does not exist"), "\(noBucket)")
        #expect(noBucket.stderrText.contains("bucket"), "\(noBucket)")

        let noBuffer = try await tyger(["buffer", "read", url(bucket, "never-written")])
        #expect(noBuffer.exitCode == 1, "\(noBuffer)")
        #expect(noBuffer.stderrText.contains("the buffer does not exist"), "\(noBuffer)")

        let noCredentials = try await tyger(["buffer", "read", buffer], environment: ["AWS_ACCESS_KEY_ID": ""])
        #expect(noCredentials.exitCode == 64, "\(noCredentials)")
        #expect(noCredentials.stderrText.contains("AWS_ACCESS_KEY_ID"), "\(noCredentials)")

        let noName = try await tyger(["buffer", "read", "s3://\(bucket)?endpoint=\(settings.endpoint)"])
        #expect(noName.exitCode == 64, "\(noName)")
        #expect(noName.stderrText.contains("names no buffer"), "\(noName)")
    }
}
