import Foundation
import Testing
import TygerCore
import TygerModel
import TygerServer
import TygerTestSupport

/// Fuzzing of the parsers that take outside input, in process: each gets `FaultSettings.fuzzIterations` generated
/// inputs (10,000 in CI), structure-aware (valid documents with extreme numbers, deep nesting, odd types and unknown
/// fields; strings near the grammar). A crash ends the test process; a hang trips the time limit; an error must be
/// the parser's documented one, and an accepted value must be sane.
// Serialized: each test is a CPU-bound loop on a thread of the concurrency pool, which has two threads here. Six at
// once held both between their yields for most of a full run's first minute, and the async work of every other
// suite (PostgreSQL pools opening, servers answering health checks) waited past its bounds.
@Suite(.serialized, .timeLimit(.minutes(10))) struct FuzzParsersTests {
    let count = FaultSettings.fuzzIterations

    /// Runs `body` for each of `count` inputs, with the seed of each printed when it fails. It yields every 10
    /// inputs: the loop is CPU-bound, and without yields it holds a thread of the concurrency pool (two on a 2-core
    /// machine) for seconds, starving the timing bounds of the suites running beside it.
    private func fuzz(
        _ name: String,
        salt: UInt64,
        _ body: (inout FuzzGenerator, UInt64) throws -> Void
    ) async rethrows {
        let base = FaultSettings.seed &* 1_000_003 &+ salt
        for i in 0..<count {
            let seed = base &+ UInt64(i)
            var g = FuzzGenerator(seed: seed)
            try body(&g, seed)
            if i % 10 == 9 { await Task.yield() }
        }
        FaultSettings.report("fuzz \(name): \(count) inputs, 0 crashes, 0 hangs")
    }

    @Test func jsonRequestBodies() async throws {
        let templates: [(String, FuzzValue)] = [
            ("buffer", FuzzTemplates.buffer), ("bufferUpdate", FuzzTemplates.bufferUpdate),
            ("codespec", FuzzTemplates.codespec), ("run", FuzzTemplates.run), ("namedRun", FuzzTemplates.namedRun),
            ("runUpdate", FuzzTemplates.runUpdate),
        ]
        await fuzz("json bodies", salt: 1) { g, seed in
            let (kind, template) = g.pick(templates)
            let text = g.oneIn(30) ? g.randomText(maxLength: 40) : g.mutate(template).json
            let data = Data(text.utf8)
            do {
                switch kind {
                case "buffer": _ = try TygerJSON.decodeBody(Buffer.self, from: data, allowEmptyObject: true)
                case "bufferUpdate": _ = try TygerJSON.decodeBody(BufferUpdate.self, from: data, allowEmpty: true)
                case "codespec":
                    let spec = try TygerJSON.decodeBody(Codespec.self, from: data, requireCodespecKind: true)
                    try? spec.validate()
                case "runUpdate": _ = try TygerJSON.decodeBody(RunUpdate.self, from: data, allowEmpty: true)
                default:
                    let run = try TygerJSON.decodeBody(Run.self, from: data)
                    _ = run.effectiveTimeoutSeconds
                    try? run.resolvedCodespec?.validate()
                }
            } catch let error as TygerModelError {
                #expect(!error.message.isEmpty, "seed \(seed): empty message for \(text.prefix(200))")
                #expect(!error.message.contains("\n"), "seed \(seed): multi-line message: \(error.message.prefix(300))")
            } catch {
                Issue.record("seed \(seed): not a TygerModelError: \(error) for \(text.prefix(300))")
            }
        }
    }

    @Test func yamlSpecs() async {
        await fuzz("yaml specs", salt: 2) { g, seed in
            let isRun = g.oneIn(2)
            let document = g.mutate(isRun ? FuzzTemplates.run : FuzzTemplates.codespec)
            var text = g.oneIn(4) ? document.json : document.yaml
            switch g.below(12) {
            case 0: text = "---\n" + text + "---\n" + text
            case 1: text = text.replacingOccurrences(of: "  ", with: "\t")
            case 2: text = "x: &a [1, 2]\n" + text.replacingOccurrences(of: "\"ubuntu\"", with: "*a")
            case 3: text = text.replacingOccurrences(of: "\"cat\"", with: "!!binary aGVsbG8=")
            case 4: text = String(text.prefix(g.below(text.count + 1)))
            default: break
            }
            do {
                if isRun {
                    _ = try YAMLSpecs.run(fromYAML: text, file: "fuzz.yml")
                } else {
                    _ = try YAMLSpecs.codespec(fromYAML: text, file: "fuzz.yml")
                }
            } catch let error as TygerModelError {
                #expect(!error.message.isEmpty, "seed \(seed)")
            } catch {
                Issue.record("seed \(seed): not a TygerModelError: \(error) for \(text.prefix(300))")
            }
        }
    }

    /// A few hundred bytes whose aliases expand to 10^9 nodes must be refused quickly, not expanded.
    @Test
    func yamlAliasBombIsRefused() async throws {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            yaml += "a\(level): &a\(level) [\(refs)]\n"
        }
        yaml += "name: bomb\nimage: ubuntu\nargs: *a9\n"
        let text = yaml
        // On a thread of its own: an expansion cannot be cancelled, and the test must not wait for it.
        let outcome = Locked<String?>(nil)
        startThread {
            do {
                _ = try YAMLSpecs.codespec(fromYAML: text, file: "bomb.yml")
                outcome.withLock { $0 = "accepted" }
            } catch { outcome.withLock { $0 = "\(error)" } }
        }
        let ended = await eventually(timeout: .seconds(60)) { outcome.value != nil }
        #expect(ended, "an alias bomb was still being expanded after 20 s")
        #expect(outcome.value != "accepted")
    }

    @Test func sizesAndDurations() async {
        await fuzz("sizes", salt: 3) { g, seed in
            let text = g.near(FuzzTemplates.sizePieces)
            do {
                let bytes = try ByteSize.parse(text)
                #expect(bytes >= 0, "seed \(seed): '\(text)' gave \(bytes)")
            } catch let error as TygerCoreError {
                #expect(error.code == .invalidArgument, "seed \(seed)")
            } catch {
                Issue.record("seed \(seed): '\(text)' threw \(error)")
            }
        }
        await fuzz("durations", salt: 4) { g, seed in
            let text = g.near(FuzzTemplates.durationPieces)
            do {
                let duration = try DurationParser.parse(text)
                #expect(duration >= .zero, "seed \(seed): '\(text)' gave \(duration)")
            } catch let error as TygerCoreError {
                #expect(error.code == .invalidArgument, "seed \(seed)")
            } catch {
                Issue.record("seed \(seed): '\(text)' threw \(error)")
            }
        }
        await fuzz("timespans", salt: 5) { g, seed in
            let text = g.near(FuzzTemplates.timeSpanPieces)
            if let duration = TimeSpan.parse(text) {
                #expect(duration >= .zero, "seed \(seed): '\(text)'")
                #expect(TimeSpan.parse(TimeSpan.format(duration)) == duration, "seed \(seed): '\(text)'")
            }
        }
    }

    /// Times with and without a zone. A time without a zone is UTC whatever `TZ` says (tools/test and tools/faults
    /// run with a non-UTC `TZ`; the parser does its own arithmetic and never consults the zone database).
    @Test func times() async {
        await fuzz("times", salt: 6) { g, seed in
            let text = g.near(FuzzTemplates.timePieces, count: 8)
            if let (seconds, nanos) = RFC3339.parseComponents(text) {
                #expect((0..<1_000_000_000).contains(nanos), "seed \(seed): '\(text)'")
                let formatted = RFC3339.format(seconds: seconds, nanoseconds: nanos, fractionDigits: 9)
                #expect(RFC3339.parseComponents(formatted)! == (seconds, nanos), "seed \(seed): '\(text)'")
                if !text.hasSuffix("Z") && !text.hasSuffix("z") && !text.contains("+") && text.count > 19,
                    text.dropFirst(19).allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) })
                {
                    #expect(RFC3339.parseComponents(text + "Z")! == (seconds, nanos), "seed \(seed): no zone is UTC")
                }
            }
            _ = RFC3339.parseSeconds(text)
        }
    }

    @Test func queryStrings() async {
        await fuzz("query strings", salt: 7) { g, seed in
            let query = QueryParameters(g.near(FuzzTemplates.queryPieces, count: 12))
            for name in ["limit", "tail", "softDeleted", "since", "tag", "ttl"] {
                _ = query.string(name)
                _ = query.all(name)
                if let n = try? query.int(name) { _ = n }
                _ = try? query.bool(name)
                _ = try? query.date(name)
            }
            if let limit = try? query.limit() {
                #expect((0...QueryParameters.maxLimit).contains(limit), "seed \(seed): limit \(limit)")
            }
            _ = query.tags("tag")
            _ = query.nextLink(path: "/buffers", token: "t")
        }
    }
}
