import Testing
import TygerClient
import TygerTestSupport

/// Fuzzing of access and server URLs as the CLI reads them (`buffer read URL`, `login URL`, access files):
/// `FaultSettings.fuzzIterations` generated inputs near the grammar. No crash; an accepted URL keeps its parts
/// (a path starting with `/`, the query verbatim, a socket path that is absolute) and prints back to a URL that parses
/// to the same value; a rejected one is `.invalidURL` with a message that hides the signature.
@Suite(.timeLimit(.minutes(5))) struct AccessURLFuzzTests {
    static let pieces = [
        "http", "https", "http+unix", "unix", "ftp", "://", ":", "/", "//", "127.0.0.1", "[::1]", "localhost",
        ":8080", ":0", ":99999", "/tmp/api.sock", ":/", "containers", "/abc", "?", "sv=2021-08-06", "&", "sig=",
        "c2lnbmF0dXJl%3D", "#", "@", "user:pass@", "%", "%zz", " ", "é", "..", "\n",
    ]

    @Test func accessURLs() async {
        let count = FaultSettings.fuzzIterations
        let base = FaultSettings.seed &* 1_000_003 &+ 400
        for i in 0..<count {
            let seed = base &+ UInt64(i)
            var g = FuzzGenerator(seed: seed)
            let text = g.near(Self.pieces, count: 10)
            do {
                let url = try ServiceURL(text)
                #expect(url.path.hasPrefix("/"), "seed \(seed): '\(text)' -> path \(url.path)")
                if case .unix(let socket) = url.transport { #expect(socket.hasPrefix("/"), "seed \(seed)") }
                let again = try? ServiceURL(url.description)
                #expect(again == url, "seed \(seed): '\(text)' prints as '\(url.description)'")
                _ = url.isPrivateChannel
                _ = url.redacted
            } catch let error as TygerClientError {
                #expect(error.code == .invalidURL, "seed \(seed)")
                if let q = text.firstIndex(of: "?"), text[q...].contains("&sig=c2ln") {
                    #expect(!error.message.contains("c2lnbmF0dXJl"), "seed \(seed): signature shown")
                }
            } catch {
                Issue.record("seed \(seed): '\(text)' threw \(error)")
            }
            if i % 100 == 99 { await Task.yield() }  // CPU-bound: leave the concurrency pool to other suites
        }
        FaultSettings.report("fuzz access URLs: \(count) inputs, 0 crashes, 0 hangs")
    }
}
