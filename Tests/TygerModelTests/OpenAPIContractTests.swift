import Foundation
import Testing
import Yams

@testable import TygerModel

/// The wire types are written by hand (docs/architecture.md): these tests keep them and `docs/openapi.yaml` in step.
/// A field added to a type but not to the document, or the other way round, fails here.
struct OpenAPIContractTests {
    /// `docs/openapi.yaml`'s component schemas: name → (property names, additionalProperties == false).
    static let schemas: [String: (properties: Set<String>, strict: Bool)] = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml").path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let document = try? Yams.load(yaml: text) as? [String: Any],
            let components = document["components"] as? [String: Any],
            let schemas = components["schemas"] as? [String: Any]
        else { return [:] }
        var out: [String: (Set<String>, Bool)] = [:]
        for (name, value) in schemas {
            guard let schema = value as? [String: Any] else { continue }
            let properties = Set((schema["properties"] as? [String: Any] ?? [:]).keys)
            out[name] = (properties, schema["additionalProperties"] as? Bool == false)
        }
        return out
    }()

    /// The keys of the JSON object `value` encodes to.
    static func keys(of value: some Encodable) throws -> Set<String> {
        let data = try TygerJSON.makeEncoder().encode(value)
        return try TygerJSON.makeDecoder().decode(KeySet.self, from: data).keys
    }

    struct KeySet: Decodable {
        var keys: Set<String>
        init(from decoder: any Decoder) throws {
            keys = Set(try decoder.container(keyedBy: AnyCodingKey.self).allKeys.map(\.stringValue))
        }
    }

    static let date = Date(timeIntervalSince1970: 1_800_000_000.25)
    static let codespec: Codespec = {
        var spec = Codespec(
            image: "img",
            command: ["cmd"],
            args: ["a"],
            workingDir: "/w",
            env: ["A": "1"],
            resources: CodespecResources(
                requests: ResourceQuantities(cpu: "1", memory: "1Gi"),
                limits: ResourceQuantities(cpu: "2"),
                gpu: "1",
                shm: "64Mi"
            ),
            maxReplicas: 2,
            buffers: BufferParameters(inputs: ["in"], outputs: ["out"])
        )
        spec.name = "c"
        spec.version = 3
        spec.createdAt = date
        spec.identity = "id"
        spec.sockets = [CodespecSocket(port: 80, inputBuffer: "in", outputBuffer: "out")]
        return spec
    }()
    static let executedImage = ExecutedImage(reference: "ubuntu", imageId: "sha256:1", repoDigest: "u@sha256:2")

    static let run: Run = {
        var job = JobRunCodeTarget(
            codespec: .named("c"),
            buffers: ["in": "b1"],
            tags: ["k": "v"],
            replicas: 2,
            nodePool: "np"
        )
        job.bufferTtl = "01:00:00"
        var run = Run(job: job, timeoutSeconds: 60, tags: ["t": "1"], cluster: "c1")
        run.kind = "user"
        run.id = 7
        run.executedImage = executedImage
        run.eTag = "1"
        run.status = .failed
        run.statusReason = "r"
        run.runningCount = 1
        run.createdAt = date
        run.startedAt = date
        run.finishedAt = date
        run.worker = RunCodeTarget(codespec: .named("w"), nodePool: "np", replicas: 1)
        run.bufferAccessTtl = "00:10:00"
        return run
    }()
    static let buffer = Buffer(
        id: "b",
        location: "local",
        createdAt: date,
        isSoftDeleted: true,
        expiresAt: date,
        tags: ["k": "v"],
        eTag: "1"
    )

    /// `Codespec` is either kind's schema: every field of both (a job's buffers, a worker's endpoints).
    static let anyKindCodespec: Codespec = {
        var spec = codespec
        spec.endpoints = ["http": 80]
        return spec
    }()

    /// Every schema our types answer with or accept, a value of the type with every field set, and for the request
    /// bodies the server decodes strictly, the type to decode them with.
    nonisolated(unsafe) static let cases:
        [(schema: String, value: any Encodable, strictDecoder: (any Decodable.Type)?)] = [
            ("Buffer", buffer, Buffer.self),
            ("BufferAccess", BufferAccess(uri: "http://x", localPath: "/p"), nil),
            ("BufferPage", Page(items: [buffer], nextLink: "/buffers?_ct=x"), nil),
            ("BufferUpdate", BufferUpdate(id: "b", expiresAt: date, tags: ["k": "v"]), nil),
            ("StorageAccount", StorageAccount(name: "n", location: "l", endpoint: "e"), nil),
            ("Codespec", anyKindCodespec, Codespec.self),
            ("JobCodespec", codespec, Codespec.self),
            ("CodespecResources", codespec.resources!, CodespecResources.self),
            ("OvercommittableResources", ResourceQuantities(cpu: "1", memory: "2"), ResourceQuantities.self),
            ("BufferParameters", BufferParameters(inputs: ["a"], outputs: ["b"]), BufferParameters.self),
            ("Socket", CodespecSocket(port: 1, inputBuffer: "a", outputBuffer: "b"), nil),
            ("CodespecPage", Page(items: [codespec], nextLink: "/codespecs?_ct=x"), nil),
            ("Run", run, Run.self),
            ("JobRunCodeTarget", run.job, JobRunCodeTarget.self),
            ("RunCodeTarget", run.worker!, nil),
            ("RunPage", Page(items: [run], nextLink: "/runs?_ct=x"), nil),
            ("RunUpdate", RunUpdate(id: 7, tags: ["k": "v"]), nil),
            ("ErrorBody", ErrorResponse(code: .invalidInput, message: "m", apiVersions: ["1.0"]), nil),
            ("ErrorInfo", ErrorInfo(code: "c", message: "m", apiVersions: ["1.0"]), nil),
            ("ExecutedImage", executedImage, nil),
            (
                "ServiceMetadata",
                {
                    var metadata = ServiceMetadata(
                        rbacEnabled: true,
                        authority: "a",
                        audience: "a",
                        apiAppUri: "u",
                        apiAppId: "i",
                        cliAppUri: "u",
                        cliAppId: "i",
                        capabilities: ["LocalBuffers"],
                        apiVersions: ["1.0"],
                        storageEndpoints: ["e"],
                        dataPlaneEndpoint: "d",
                        controlPlaneEndpoint: "c"
                    )
                    metadata.executor = ExecutorMetadata(kind: "docker", engine: "e")
                    return metadata
                }(), nil
            ),
        ]

    @Test func documentIsFound() {
        #expect(Self.schemas.count >= 20)
    }

    @Test(arguments: 0..<cases.count)
    func typeEncodesExactlyTheSchemaProperties(index: Int) throws {
        let (name, value, _) = Self.cases[index]
        let schema = try #require(Self.schemas[name], "docs/openapi.yaml has no schema \(name)")
        let encoded = try Self.keys(of: value)
        #expect(
            encoded == schema.properties,
            "\(name): the type writes \(encoded.subtracting(schema.properties).sorted()) beyond the document; the document has \(schema.properties.subtracting(encoded).sorted()) the type does not write"
        )
    }

    @Test(arguments: 0..<cases.count)
    func strictSchemasAreDecodedStrictly(index: Int) throws {
        let (name, value, strictDecoder) = Self.cases[index]
        guard let strictDecoder, let schema = Self.schemas[name], schema.strict else { return }
        var object = String(decoding: try TygerJSON.makeEncoder().encode(value), as: UTF8.self)
        object.removeLast()
        let withUnknown = Data((object + #","zzUnknown":1}"#).utf8)
        #expect(throws: (any Error).self, "\(name) accepted an unknown property") {
            _ = try TygerJSON.makeDecoder().decode(strictDecoder, from: withUnknown)
        }
    }
}
