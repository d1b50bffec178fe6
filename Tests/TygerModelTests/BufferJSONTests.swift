import Foundation
import Testing
import TygerModel

struct BufferJSONTests {
    private func json(_ value: some Encodable) throws -> [String: Any] {
        let data = try TygerJSON.encode(value)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A field name with a line break (found by the fuzzer) made the 400's message, and the CLI's error, two lines.
    @Test func errorsQuotingInputStayOnOneLine() throws {
        let bodies = [#"{"tags":{},"a\nb":1}"#, #"{"tags":{"k\r\n":5}}"#, #"{"x\u0000\u007f\t":true}"#]
        for body in bodies {
            do {
                _ = try TygerJSON.decodeBody(Buffer.self, from: Data(body.utf8))
                Issue.record("\(body) was accepted")
            } catch {
                #expect(!error.message.contains(where: { $0.isNewline }), "\(error.message)")
                #expect(!error.message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
            }
        }
        let one = try? TygerJSON.decodeBody(Buffer.self, from: Data(bodies[0].utf8))
        #expect(one == nil)
    }

    @Test func encodesCamelCaseAndOmitsDefaults() throws {
        let buffer = Buffer(
            id: "yf4sx2aqzitepjhmxjhanomn5e",
            location: "local",
            createdAt: RFC3339.parse("2024-01-25T18:20:49.951262Z"),
            eTag: "42"
        )
        let object = try json(buffer)
        #expect(Set(object.keys) == ["id", "location", "createdAt", "eTag"])
        #expect(object["createdAt"] as? String == "2024-01-25T18:20:49.951262Z")
        #expect(object["isSoftDeleted"] == nil)
        #expect(object["tags"] == nil)
        #expect(object["expiresAt"] == nil)
    }

    @Test func encodesSoftDeletedTagsAndExpiry() throws {
        let buffer = Buffer(
            id: "a",
            isSoftDeleted: true,
            expiresAt: Date(timeIntervalSince1970: 1_700_000_000.5),
            tags: ["k": "v"]
        )
        let object = try json(buffer)
        #expect(object["isSoftDeleted"] as? Bool == true)
        #expect(object["expiresAt"] as? String == "2023-11-14T22:13:20.5Z")
        #expect(object["tags"] as? [String: String] == ["k": "v"])
    }

    @Test func roundTrips() throws {
        let buffer = Buffer(
            id: "abc",
            location: "local",
            createdAt: Date(timeIntervalSince1970: 1_706_206_849.951262),
            isSoftDeleted: true,
            expiresAt: Date(timeIntervalSince1970: 1_706_300_000),
            tags: ["a": "1", "b": ""],
            eTag: "123"
        )
        let decoded = try JSONDecoder().decode(Buffer.self, from: TygerJSON.encode(buffer))
        #expect(decoded.id == buffer.id)
        #expect(decoded.tags == buffer.tags)
        #expect(decoded.isSoftDeleted)
        #expect(decoded.eTag == "123")
        let created = try #require(decoded.createdAt)
        #expect(abs(created.timeIntervalSince1970 - 1_706_206_849.951262) < 1e-6)
        #expect(decoded.expiresAt == buffer.expiresAt)
    }

    @Test func acceptsGoCLIZeroValueBody() throws {
        let body =
            #"{"id":"","createdAt":"0001-01-01T00:00:00Z","tags":{"x":"y"},"expiresAt":"2030-01-02T03:04:05.123456789-07:00"}"#
        let buffer = try TygerJSON.decodeBody(Buffer.self, from: Data(body.utf8))
        #expect(buffer.id == "")
        #expect(buffer.tags == ["x": "y"])
        #expect(buffer.createdAt == RFC3339.parse("0001-01-01T00:00:00Z"))
        #expect(buffer.expiresAt.map { RFC3339.format($0) } == "2030-01-02T10:04:05.123457Z")
    }

    @Test func acceptsGoCLIBodyWithOnlyZeroValues() throws {
        let body = #"{"id":"","createdAt":"0001-01-01T00:00:00Z"}"#
        let buffer = try TygerJSON.decodeBody(Buffer.self, from: Data(body.utf8))
        #expect(buffer.tags == nil)
    }

    @Test func rejectsUnknownBufferProperties() throws {
        let body = #"{"location":"local","x":1,"bogus":true}"#
        let error = #expect(throws: TygerModelError.self) {
            try TygerJSON.decodeBody(Buffer.self, from: Data(body.utf8))
        }
        #expect(error?.code == .invalidJSON)
        #expect(error?.message.contains("Object contains unrecognized properties 'bogus', 'x'.") == true)
    }

    @Test func bufferUpdateIgnoresUnknownPropertiesLikeETag() throws {
        let body = #"{"eTag":"123","tags":null,"expiresAt":null}"#
        let update = try TygerJSON.decodeBody(BufferUpdate.self, from: Data(body.utf8), allowEmpty: true)
        #expect(update == BufferUpdate())
        let withTags = try TygerJSON.decodeBody(
            BufferUpdate.self,
            from: Data(#"{"eTag":"1","tags":{"a":"b"},"id":"q"}"#.utf8),
            allowEmpty: true
        )
        #expect(withTags.tags == ["a": "b"])
        #expect(withTags.id == "q")
    }

    @Test(arguments: [
        ("", "does not contain any JSON tokens"),
        ("null", "null is not a valid input value"),
        (" {} ", "An empty object is not a valid input value"),
        ("{\"location\":", "not valid JSON"),
        ("{\"tags\":{\"a\":1}}", "Path: $.tags.a"),
        ("{\"expiresAt\":\"yesterday\"}", "not a valid RFC 3339 date-time"),
        ("[1]", "could not be converted"),
    ])
    func rejectsBadBodies(body: String, fragment: String) throws {
        let error = #expect(throws: TygerModelError.self) {
            try TygerJSON.decodeBody(Buffer.self, from: Data(body.utf8))
        }
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "no error")")
    }

    @Test func updateBodiesMayBeEmpty() throws {
        #expect(try TygerJSON.decodeBody(BufferUpdate.self, from: Data(), allowEmpty: true) == BufferUpdate())
        #expect(try TygerJSON.decodeBody(BufferUpdate.self, from: Data("{}".utf8), allowEmpty: true) == BufferUpdate())
    }

    @Test func errorEnvelopeShape() throws {
        let plain = try json(ErrorResponse(code: .notFound, message: "The resource was not found"))
        let error = try #require(plain["error"] as? [String: Any])
        #expect(error["code"] as? String == "NotFound")
        #expect(error["apiVersions"] == nil)
        let versioned = try json(
            ErrorResponse(code: .apiVersionUnspecified, message: "Unspecified API version", apiVersions: ["1.0"])
        )
        #expect((versioned["error"] as? [String: Any])?["apiVersions"] as? [String] == ["1.0"])
    }

    @Test func pageAccessAndAccountShapes() throws {
        let page = try json(Page<Buffer>(items: [], nextLink: nil))
        #expect(Set(page.keys) == ["items"])
        let access = String(
            decoding: try TygerJSON.encode(BufferAccess(uri: "http+unix:///a.sock:/c/x?s=1")),
            as: UTF8.self
        )
        #expect(access == #"{"uri":"http+unix:///a.sock:/c/x?s=1"}"#)
        let account = try json(StorageAccount(name: "local", location: "local", endpoint: "e"))
        #expect(Set(account.keys) == ["name", "location", "endpoint"])
    }

    @Test func serviceMetadataOmitsDefaults() throws {
        let object = try json(ServiceMetadata(capabilities: ["Docker", "LocalBuffers"]))
        #expect(Set(object.keys) == ["capabilities", "apiVersions"])
        #expect(try json(ServiceMetadata(rbacEnabled: true))["rbacEnabled"] as? Bool == true)
    }
}
