import Foundation
import Testing
import TygerModel

struct RFC3339Tests {
    @Test(arguments: [
        ("2024-01-25T18:20:49.951262Z", 1_706_206_849.951262),
        ("2024-01-25T18:20:49Z", 1_706_206_849.0),
        ("2024-01-25T19:20:49+01:00", 1_706_206_849.0),
        ("2024-01-25T13:20:49.5-05:00", 1_706_206_849.5),
        ("2024-01-25t18:20:49.9512620z", 1_706_206_849.951262),
        ("2024-01-25 18:20:49", 1_706_206_849.0),
        ("1970-01-01T00:00:00Z", 0),
        ("0001-01-01T00:00:00Z", -62_135_596_800),
    ])
    func parses(text: String, seconds: Double) throws {
        let date = try #require(RFC3339.parse(text))
        #expect(abs(date.timeIntervalSince1970 - seconds) < 1e-6)
    }

    @Test(arguments: [
        "", "2024-01-25", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-25T24:00:00Z",
        "2024-01-25T18:20:49.Z", "2024-01-25T18:20:49+0100", "2024-01-25T18:20:49Zjunk",
    ])
    func rejects(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func formats() {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_706_206_849.951262)) == "2024-01-25T18:20:49.951262Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -62_135_596_800)) == "0001-01-01T00:00:00Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00Z")
    }

    @Test func roundTripsMicroseconds() throws {
        for micros: Int64 in [0, 1, 999_999, 1_706_206_849_951_262, -1] {
            let date = Date(timeIntervalSince1970: Double(micros) / 1e6)
            let back = try #require(RFC3339.parse(RFC3339.format(date)))
            #expect(Int64((back.timeIntervalSince1970 * 1e6).rounded()) == micros)
        }
    }

    @Test func lastInstantOfYear9999StaysInYear9999() throws {
        let last = try #require(RFC3339.parse("9999-12-31T23:59:59.9999999Z"))
        #expect(RFC3339.format(last) == "9999-12-31T23:59:59.999999Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 253_402_300_799.9999999)).hasPrefix("9999-12-31T23:59:59"))
        #expect(
            RFC3339.format(seconds: 253_402_300_799, nanoseconds: 999_999_999, fractionDigits: 9)
                == "9999-12-31T23:59:59.999999999Z"
        )
    }

    @Test func keepsNanosecondsForLogs() throws {
        let text = RFC3339.format(seconds: 1_706_206_849, nanoseconds: 5, fractionDigits: 9)
        #expect(text == "2024-01-25T18:20:49.000000005Z")
        let parsed = try #require(RFC3339.parseComponents(text))
        #expect(parsed.seconds == 1_706_206_849 && parsed.nanoseconds == 5)
        #expect(RFC3339.format(seconds: -1, nanoseconds: 0, fractionDigits: 0) == "1969-12-31T23:59:59Z")
    }

    @Test func secondsFormOfSignedURLs() {
        #expect(RFC3339.formatSeconds(0) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.parseSeconds("2026-11-26T07:05:09Z") == 1_795_676_709)
        for bad in [
            "2026-11-26T07:05:09.5Z", "2026-02-31T00:00:00Z", "2026-11-26T07:05:09+00:00", "2026-11-26 07:05:09Z",
        ] {
            #expect(RFC3339.parseSeconds(bad) == nil, "\(bad)")
        }
    }
}

struct TimeSpanTests {
    @Test(arguments: [
        ("0", 0.0), ("1", 86_400), ("00:05", 300), ("0.00:05", 300), ("01:00:00", 3600), ("1.02:03:04", 93_784),
        ("00:00:30.5", 30.5), (" 00:01:00 ", 60), ("10.23:59:59.9999999", 950_399.9999999), ("0.00:00:00", 0),
    ])
    func parses(text: String, seconds: Double) throws {
        let duration = try #require(TimeSpan.parse(text))
        let (s, atto) = duration.components
        #expect(abs(Double(s) + Double(atto) / 1e18 - seconds) < 1e-7)
    }

    @Test(arguments: [
        "", "-1", "-00:01:00", "24:00:00", "00:60", "00:00:60", "1.2", "abc", "1:2:3:4", "00:00.5",
        "00:00:00.12345678", "1.", ":",
    ])
    func rejects(text: String) {
        #expect(TimeSpan.parse(text) == nil)
    }

    @Test func formatsLikeDotNet() {
        #expect(TimeSpan.format(.seconds(60)) == "00:01:00")
        #expect(TimeSpan.format(.seconds(90_061)) == "1.01:01:01")
        #expect(TimeSpan.format(.milliseconds(1500)) == "00:00:01.5000000")
        #expect(TimeSpan.format(.zero) == "00:00:00")
    }
}

struct TagValidationTests {
    @Test func acceptsValidTags() throws {
        try TagValidation.validate(nil)
        try TagValidation.validate([:])
        try TagValidation.validate([
            "a-b_c.D9": "", String(repeating: "k", count: 128): String(repeating: "v", count: 256),
        ])
        try TagValidation.validate(Dictionary(uniqueKeysWithValues: (0..<100).map { ("k\($0)", "v") }))
    }

    @Test(arguments: [
        ["": "v"], ["a b": "v"], ["k": "a/b"], [String(repeating: "k", count: 129): "v"],
        ["k": String(repeating: "v", count: 257)], ["ké": "v"],
    ])
    func rejectsInvalidTags(tags: [String: String]) {
        let error = #expect(throws: TygerModelError.self) { try TagValidation.validate(tags) }
        #expect(error?.code == .invalidTags)
    }

    @Test func rejectsTooManyTags() {
        let tags = Dictionary(uniqueKeysWithValues: (0..<101).map { ("k\($0)", "v") })
        let error = #expect(throws: TygerModelError.self) { try TagValidation.validate(tags) }
        #expect(error?.message.contains("maximum of 100 tags") == true)
    }
}

struct BufferIDAndETagTests {
    @Test func idsAre26LowercaseBase32Characters() {
        var seen = Set<String>()
        for _ in 0..<200 {
            let id = BufferID.generate()
            #expect(id.count == 26)
            #expect(id.allSatisfy { "abcdefghijklmnopqrstuvwxyz234567".contains($0) })
            seen.insert(id)
        }
        #expect(seen.count == 200)
    }

    @Test func base32MatchesRFC4648() {
        #expect(BufferID.encode(Array("foobar".utf8)) == "mzxw6ytboi")
        #expect(BufferID.encode([UInt8](repeating: 0, count: 16)) == String(repeating: "a", count: 26))
    }

    @Test func eTagIsStableAndCoversMutableFields() {
        let expires = Date(timeIntervalSince1970: 1_700_000_000)
        let base = BufferETag.compute(id: "abc", isSoftDeleted: false, expiresAt: expires, tags: ["a": "1"])
        #expect(base == BufferETag.compute(id: "abc", isSoftDeleted: false, expiresAt: expires, tags: ["a": "1"]))
        #expect(UInt64(base) != nil)
        let variants = [
            BufferETag.compute(id: "abd", isSoftDeleted: false, expiresAt: expires, tags: ["a": "1"]),
            BufferETag.compute(id: "abc", isSoftDeleted: true, expiresAt: expires, tags: ["a": "1"]),
            BufferETag.compute(id: "abc", isSoftDeleted: false, expiresAt: nil, tags: ["a": "1"]),
            BufferETag.compute(id: "abc", isSoftDeleted: false, expiresAt: expires + 1, tags: ["a": "1"]),
            BufferETag.compute(id: "abc", isSoftDeleted: false, expiresAt: expires, tags: ["a": "2"]),
            BufferETag.compute(id: "abc", isSoftDeleted: false, expiresAt: expires, tags: [:]),
            BufferETag.compute(id: "abc", isSoftDeleted: false, expiresAt: expires, tags: ["a": "1", "b": ""]),
        ]
        #expect(Set(variants + [base]).count == variants.count + 1)
    }

    @Test func eTagDoesNotDependOnDictionaryOrder() {
        var a: [String: String] = [:]
        var b: [String: String] = [:]
        for i in 0..<50 { a["k\(i)"] = "\(i)" }
        for i in (0..<50).reversed() { b["k\(i)"] = "\(i)" }
        #expect(
            BufferETag.compute(id: "x", isSoftDeleted: false, expiresAt: nil, tags: a)
                == BufferETag.compute(id: "x", isSoftDeleted: false, expiresAt: nil, tags: b)
        )
    }

    @Test func eTagValueIsPinned() {
        // Pins the hash so an accidental change (which would invalidate every stored client ETag) fails a test.
        let etag = BufferETag.compute(id: "abc", isSoftDeleted: false, expiresAt: nil, tags: [:])
        #expect(etag == BufferETag.compute(id: "abc", isSoftDeleted: false, expiresAt: nil, tags: [:]))
        #expect(etag == Self.pinned)
    }

    static let pinned = "16752388262724621821"
}
