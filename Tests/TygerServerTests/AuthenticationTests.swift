import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TygerCore
import TygerModel
import TygerServer
import TygerTestSupport

/// Router tests run without a socket, so their transport is "unknown" and treated like TCP: untrusted.
struct AuthenticationTests {
    @Test func tcpWithoutTokenIs401WithJSONEnvelope() async throws {
        let fixture = try ServerFixture()
        try await fixture.withRouter { client in
            for headers: HTTPFields in [[:], [.authorization: "Bearer nope"], [.authorization: "Basic dXNlcjpwYXNz"]] {
                try await client.execute(uri: "/whoami", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.wwwAuthenticate] == "Bearer")
                    #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                    let body =
                        try JSONSerialization.jsonObject(with: Data(Array(buffer: response.body)))
                        as? [String: [String: String]]
                    #expect(body?["error"]?["code"] == "Unauthorized")
                    #expect(body?["error"]?["message"]?.isEmpty == false)
                    #expect(response.headers[.requestID] != nil)
                }
            }
            // A data-plane request without a signature is not let through without a token either.
            try await client.execute(uri: "/containers/buf1/00/000?api-version=1.0", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func validTokenIsAcceptedAndRevocationTakesEffect() async throws {
        let fixture = try ServerFixture()
        let issued = try await fixture.tokens.create(name: "ci")
        try await fixture.withRouter { client in
            try await client.execute(uri: "/whoami", method: .get, headers: [.authorization: "Bearer \(issued.token)"])
            { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "token:ci(\(issued.record.id))")
            }
            #expect(try await fixture.tokens.revoke(id: issued.record.id))
            try await client.execute(uri: "/whoami", method: .get, headers: [.authorization: "Bearer \(issued.token)"])
            {
                #expect($0.status == .unauthorized)
            }
        }
    }

    @Test func healthcheckAndMetadataAreAnonymous() async throws {
        let fixture = try ServerFixture()
        try await fixture.withRouter { client in
            try await client.execute(uri: "/healthcheck", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "Healthy")
                #expect(response.headers[.requestID]?.isEmpty == false)
            }
            try await client.execute(uri: "/metadata", method: .get) { response in
                #expect(response.status == .ok)
                let metadata = try JSONDecoder().decode(ServiceMetadata.self, from: Data(Array(buffer: response.body)))
                #expect(metadata.apiVersions == ["1.0"])
                #expect(metadata.capabilities == ["LocalBuffers"])
                let socket = "http+unix://\(fixture.app.layout.socketPath):"
                #expect(metadata.storageEndpoints == [socket])
                #expect(metadata.dataPlaneEndpoint == socket)
                #expect(metadata.controlPlaneEndpoint == socket)
            }
        }
    }

    @Test func unknownRouteIsInvalidRoute() async throws {
        let fixture = try ServerFixture()
        let issued = try await fixture.tokens.create(name: "t")
        try await fixture.withRouter { client in
            for (method, path) in [
                (HTTPRequest.Method.get, "/nope"), (.delete, "/healthcheck"), (.get, "/containers/buf1"),
            ] {
                try await client.execute(uri: path, method: method, headers: [.authorization: "Bearer \(issued.token)"])
                { response in
                    #expect(response.status == .badRequest, "\(method) \(path)")
                    let body = String(buffer: response.body)
                    if path.hasPrefix("/containers") {
                        #expect(body.contains("<Code>InvalidRoute</Code>"))
                    } else {
                        #expect(
                            body
                                == #"{"error":{"code":"InvalidRoute","message":"The request path was not recognized."}}"#
                        )
                    }
                    #expect(response.headers[.requestID] != nil)
                }
            }
        }
    }

    @Test func controlPlaneRoutesCanIssueAccessURLs() async throws {
        let fixture = try ServerFixture()
        let issued = try await fixture.tokens.create(name: "t")
        try await fixture.withRouter { client in
            var url = ""
            try await client.execute(
                uri: "/buffers/abc123/access",
                method: .post,
                headers: [.authorization: "Bearer \(issued.token)"]
            ) { response in
                #expect(response.status == .ok)
                url = String(buffer: response.body)
            }
            #expect(
                url.hasPrefix(
                    "http+unix://\(fixture.app.layout.socketPath):/containers/abc123?api-version=1.0&sv=0.1.0&sp=cr&"
                )
            )
            let query = String(url.split(separator: "?")[1])
            try await client.execute(
                uri: "/containers/abc123/00/000?" + query,
                method: .put,
                body: ByteBuffer(string: "hi")
            ) {
                #expect($0.status == .created)
            }
        }
    }

    @Test func jsonFileTokenStorePersistsHashesOnly() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/data/tokens.json"
        let store = JSONFileTokenStore(path: path)
        let issued = try await store.create(name: "alice")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains(issued.token))
        #expect(text.contains(issued.record.sha256))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // Another instance (another process: `tyger-server token create`) sees the same tokens.
        let other = JSONFileTokenStore(path: path)
        #expect(try await other.authenticate(issued.token)?.name == "alice")
        #expect(try await other.authenticate(issued.token + "x") == nil)
        let second = try await other.create(name: "bob")
        #expect(try await store.authenticate(second.token)?.name == "bob")
        #expect(try await store.list().map(\.name) == ["alice", "bob"])
        #expect(try await other.revoke(id: issued.record.id))
        #expect(try await store.authenticate(issued.token) == nil)
        #expect(try await store.revoke(id: "nothing") == false)
    }
}
