import Foundation
import Testing
import TygerTestSupport

extension LiveServerCLITests {
    /// `tyger buffer write/read/access` by buffer ID and by access URL, through the embedded server.
    @Suite(.timeLimit(.minutes(3))) struct ServerDataCLITests {
        /// 64 MiB written with the local fast path and over HTTP, each read back both ways.
        @Test func largeRoundTripsWithTheFastPathAndOverHTTPInEveryCombination() async throws {
            let expected = try await GeneratedDigests.shared.digest(of: "64M")
            try await withCLIHome { home in
                let fast = try await home.output(["buffer", "create"])
                let http = try await home.output(["buffer", "create"])

                let wroteFast = try await home.shell(
                    "$TYGER buffer gen 64M | $TYGER buffer write \(fast) --log-level debug",
                    timeout: .seconds(120)
                )
                #expect(wroteFast.exitCode == 0, "\(wroteFast)")
                #expect(wroteFast.stderrText.contains("Using the local fast path"), "\(wroteFast)")
                let wroteHTTP = try await home.shell(
                    "$TYGER buffer gen 64M | $TYGER buffer write \(http) --transport http --log-level debug",
                    timeout: .seconds(120)
                )
                #expect(wroteHTTP.exitCode == 0, "\(wroteHTTP)")
                #expect(!wroteHTTP.stderrText.contains("Using the local fast path"), "\(wroteHTTP)")

                for id in [fast, http] {
                    for transport in ["auto", "http"] {
                        let read = try await home.shell(
                            "$TYGER buffer read \(id) --transport \(transport) --log-level debug | sha256sum",
                            timeout: .seconds(120)
                        )
                        #expect(read.exitCode == 0, "\(read)")
                        #expect(shaOf(read) == expected, "\(id == fast ? "fast" : "http") write, \(transport) read")
                        #expect(
                            read.stderrText.contains("Using the local fast path") == (transport == "auto"),
                            "\(read)"
                        )
                    }
                }
                // Both ways store the same blobs and leave the directory's lease file.
                let blobs = TestFiles.regularFiles(under: home.serverDirectory + "/buffers/" + fast)
                #expect(blobs == TestFiles.regularFiles(under: home.serverDirectory + "/buffers/" + http))
                #expect(blobs.contains(".writer.lock"))
                #expect(blobs.contains(".bufferend"))

                // Buffers are write-once, whichever way.
                for transport in ["auto", "http"] {
                    let rewrite = try await home.shell(
                        "echo more | $TYGER buffer write \(fast) --transport \(transport)"
                    )
                    #expect(rewrite.exitCode == 1, "\(rewrite)")
                }
            }
        }

        @Test func accessURLsAreSignedHTTPURLsThatCarryTheirPermissions() async throws {
            let expected = try await GeneratedDigests.shared.digest(of: "1M")
            try await withCLIHome { home in
                let id = try await home.output(["buffer", "create"])
                let socket = home.serverDirectory + "/api.sock"
                let readURL = try await home.output(["buffer", "access", id])
                let writeURL = try await home.output(["buffer", "access", id, "-w"])
                for url in [readURL, writeURL] {
                    #expect(url.hasPrefix("http+unix://\(socket):/containers/\(id)?"), "\(url)")
                    #expect(url.contains("sig="), "\(url)")
                    #expect(!url.contains("file://"), "\(url)")
                }
                #expect(readURL.contains("sp=r&"), "\(readURL)")
                #expect(writeURL.contains("sp=cr&"), "\(writeURL)")
                let shortWrite = try await home.output(["buffer", "access", id, "--write", "--ttl", "0.00:30:00"])
                #expect(shortWrite.contains("sp=cr&"), "\(shortWrite)")
                let tooLong = try await home.run(["buffer", "access", id, "--ttl", "0.02:00:00"])
                #expect(tooLong.exitCode == 1, "\(tooLong)")
                #expect(
                    tooLong.stderrText.contains("InvalidInput: ttl must be between 00:00:30 and 01:00:00"),
                    "\(tooLong)"
                )

                // Write with the write URL, read with the read URL.
                let written = try await home.shell("$TYGER buffer gen 1M | $TYGER buffer write '\(writeURL)'")
                #expect(written.exitCode == 0, "\(written)")
                let read = try await home.shell("$TYGER buffer read '\(readURL)' | sha256sum")
                #expect(read.exitCode == 0, "\(read)")
                #expect(shaOf(read) == expected)

                // An access URL saved in a file.
                try await withTemporaryDirectory { dir in
                    let file = dir + "/access.url"
                    let saved = try await home.shell(
                        "echo '\(readURL)' > '\(file)' && $TYGER buffer read '\(file)' | sha256sum"
                    )
                    #expect(saved.exitCode == 0, "\(saved)")
                    #expect(shaOf(saved) == expected)
                }

                // A read URL cannot write.
                let other = try await home.output(["buffer", "create"])
                let otherRead = try await home.output(["buffer", "access", other])
                let refused = try await home.shell("echo data | $TYGER buffer write '\(otherRead)'")
                #expect(refused.exitCode == 1, "\(refused)")
                #expect(refused.stderrText.contains("the access URL does not allow this operation"), "\(refused)")
                #expect(refused.errorLines.count == 1, "one error line: \(refused)")
                #expect(TestFiles.regularFiles(under: home.serverDirectory + "/buffers/" + other).isEmpty)

                // A URL for one buffer does not open another.
                let swapped = readURL.replacingOccurrences(of: "/containers/\(id)?", with: "/containers/\(other)?")
                let mismatched = try await home.run(["buffer", "read", swapped])
                #expect(mismatched.exitCode == 1, "\(mismatched)")
                #expect(mismatched.stderrText.contains("AuthenticationFailed"), "\(mismatched)")
            }
        }

        @Test func unknownBufferIDsFailWithNotFound() async throws {
            try await withCLIHome { home in
                for arguments in [
                    ["buffer", "read", "aaaaaaaaaaaaaaaaaaaaaaaaaa"],
                    ["buffer", "read", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "--transport", "http"],
                    ["buffer", "write", "aaaaaaaaaaaaaaaaaaaaaaaaaa"],
                    ["buffer", "access", "aaaaaaaaaaaaaaaaaaaaaaaaaa"],
                ] {
                    let result = try await home.run(arguments)
                    #expect(result.exitCode == 1, "\(arguments): \(result)")
                    #expect(result.stderrText.contains("NotFound"), "\(arguments): \(result)")
                    #expect(result.errorLines.count == 1, "\(arguments): \(result)")
                    #expect(result.stdout.isEmpty)
                }
            }
        }

        @Test func anEmptyBufferAndASmallOneRoundTripByID() async throws {
            try await withCLIHome { home in
                let empty = try await home.output(["buffer", "create"])
                let wrote = try await home.run(["buffer", "write", empty])
                #expect(wrote.exitCode == 0, "\(wrote)")
                for transport in ["auto", "http"] {
                    let read = try await home.run(["buffer", "read", empty, "--transport", transport])
                    #expect(read.exitCode == 0, "\(read)")
                    #expect(read.stdout.isEmpty)
                }
                let small = try await home.output(["buffer", "create"])
                let input = Payload.random(count: 300_000, seed: 41)
                let wroteSmall = try await home.run(
                    ["buffer", "write", small, "--transport", "http", "--block-size", "64K"],
                    input: .bytes(input)
                )
                #expect(wroteSmall.exitCode == 0, "\(wroteSmall)")
                let readSmall = try await home.run(["buffer", "read", small])
                #expect(mismatch(readSmall.stdout, input) == nil)
            }
        }

    }
}
