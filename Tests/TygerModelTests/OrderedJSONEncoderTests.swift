import Foundation
import Testing
import TygerModel

@Suite struct OrderedJSONEncoderTests {
    private struct Sample: Encodable {
        var zebra = 1
        var apple = "a \"quoted\" \\ line\nnext/slash"
        var map = ["b": 2, "a": 1, "c": 3]
        var empty: [Int] = []
        var emptyObject: [String: Int] = [:]
        var nested = [[1, 2], []]
        var when = Date(timeIntervalSince1970: 1.5)
        var missing: String? = nil
        var flag = true
        var ratio = 0.25
    }

    private func text(_ value: some Encodable, pretty: Bool = true) throws -> String {
        String(decoding: try OrderedJSONEncoder(prettyPrinted: pretty).encode(value), as: UTF8.self)
    }

    @Test func prettyKeepsDeclarationOrderAndSortsMaps() throws {
        let expected = #"""
            {
              "zebra": 1,
              "apple": "a \"quoted\" \\ line\nnext/slash",
              "map": {
                "a": 1,
                "b": 2,
                "c": 3
              },
              "empty": [],
              "emptyObject": {},
              "nested": [
                [
                  1,
                  2
                ],
                []
              ],
              "when": "1970-01-01T00:00:01.5Z",
              "flag": true,
              "ratio": 0.25
            }
            """#
        #expect(try text(Sample()) == expected)
    }

    @Test func compactHasNoSpaces() throws {
        #expect(try text(["k": [1, 2]], pretty: false) == #"{"k":[1,2]}"#)
        #expect(try text("\u{01}", pretty: false) == #""\u0001""#)
    }

    @Test func theSameValueAlwaysEncodesTheSame() throws {
        let job = JobRunCodeTarget(codespec: .named("c"), buffers: ["z": "1", "a": "2"])
        let run = Run(job: job, tags: ["y": "1", "b": "2"])
        let first = try text(run)
        for _ in 0..<20 { #expect(try text(run) == first) }
        let jobKey = try #require(first.range(of: "\"job\""))
        let tags = try #require(first.range(of: "\"tags\": {\n    \"b\""))
        #expect(jobKey.lowerBound < tags.lowerBound, "upstream's order puts tags after job: \(first)")
    }

    @Test func nonFiniteNumbersAreRefused() {
        #expect(throws: EncodingError.self) { try OrderedJSONEncoder().encode([Double.nan]) }
    }
}
