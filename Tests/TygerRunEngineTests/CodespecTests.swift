import Foundation
import Testing
@testable import TygerRunEngine

struct CodespecTests {
    @Test func yamlCodespecLoads() throws {
        let spec = try YAMLSpecs.codespec(fromYAML: """
            kind: job
            image: ubuntu
            command: [bash, -c]
            args: ['echo hi']
            env: {A: "1"}
            buffers:
              inputs: [input]
              outputs: [output]
            resources:
              requests: {cpu: 500m, memory: 1Gi}
              gpu: 0
            maxReplicas: 1
            """, name: "hello")
        #expect(spec.name == "hello")
        #expect(spec.kind == .job)
        #expect(spec.buffers?.inputs == ["input"])
        #expect(spec.resources?.requests?.cpu?.value == 0.5)
        #expect(spec.resources?.requests?.memory?.value == 1_073_741_824)
        #expect(spec.resources?.gpu?.text == "0")
    }

    @Test func kindDefaultsToJobInYAML() throws {
        #expect(try YAMLSpecs.codespec(fromYAML: "image: x\ncommand: [true]").kind == .job)
    }

    @Test(arguments: [
        ("image: x\nfoo: 1", "unknown field 'foo' in codespec"),
        ("image: x\nresources: {requests: {cpus: 1}}", "unknown field 'cpus' in resources requests/limits"),
        ("image: x\nbuffers: {input: [a]}", "unknown field 'input' in buffers"),
        ("image: x\nresources: {requests: {cpu: abc}}", "invalid resources.requests.cpu 'abc': quantities must match"),
        ("image: x\nresources: {limits: {memory: 1Qi}}", "invalid resources.limits.memory '1Qi'"),
        ("image: x\nbuffers: {inputs: [a], outputs: [A]}", "Buffer names are case-insensitive. 'A' is duplicated"),
        ("image: x\nbuffers: {inputs: [My_In]}", "The name of buffer 'My_In' is invalid"),
        ("image: x\nbuffers: {inputs: [-a]}", "must start and end with an alphanumeric character"),
        ("kind: worker\nimage: x\nbuffers: {inputs: [a]}", "worker codespecs cannot have use buffers"),
        ("image: x\nendpoints: {a: 80}", "job codespecs cannot have endpoints"),
        ("kind: batch\nimage: x", "It can be either 'job' or 'worker'"),
        ("command: [a]", "missing required properties including: 'image'"),
        ("image: ''", "minimum length of '1'"),
        ("image: x\ncommand: 5", "'command' must be of type"),
    ])
    func invalidCodespecsFailClearly(yaml: String, message: String) {
        do {
            _ = try YAMLSpecs.codespec(fromYAML: yaml)
            Issue.record("expected an error containing \(message)")
        } catch let error as TygerRunEngineError {
            #expect(error.code == .invalidInput)
            #expect(error.message.contains(message), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test(arguments: ["Hello", "a b", "a/b", ""])
    func invalidNames(name: String) {
        #expect(throws: TygerRunEngineError.self) { try Codespec.validateName(name) }
    }

    @Test func namesAllowLowercaseDigitsDashUnderscoreDot() throws {
        try Codespec.validateName("a-b_c.1")
    }

    @Test(arguments: [("500m", 0.5), ("2", 2.0), ("1Ki", 1024.0), ("1.5", 1.5), ("1e3", 1000.0), ("+1k", 1000.0)])
    func quantities(text: String, value: Double) {
        #expect(Quantity(text).value == value)
    }

    @Test(arguments: ["abc", "1.2.3", "", "1Qi", "m", "1e"])
    func badQuantities(text: String) { #expect(Quantity(text).value == nil) }

    @Test func versionsAreIdempotentAndOrderInsensitive() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/tyger-cs-\(UUID().uuidString)"
        for repo in [InMemoryCodespecRepository() as any CodespecRepository, try SQLiteRunEngineStore(directory: dir).codespecs] {
            var a = job(["echo"], inputs: ["x", "y"], outputs: ["z"], env: ["A": "1", "B": "2"])
            let v1 = try await repo.upsert(name: "c", spec: a, now: Date())
            #expect(v1.version == 1)
            a.buffers = BufferParameters(inputs: ["y", "x"], outputs: ["z"])
            let same = try await repo.upsert(name: "c", spec: a, now: Date())
            #expect(same.version == 1)
            #expect(same.createdAt == v1.createdAt)
            a.command = ["echo", "changed"]
            let v2 = try await repo.upsert(name: "c", spec: a, now: Date())
            #expect(v2.version == 2)
            #expect(try await repo.get(name: "c", version: 1)?.command == ["echo"])
            #expect(try await repo.latest(name: "c")?.version == 2)
            a.command = ["changed", "echo"]
            #expect(try await repo.upsert(name: "c", spec: a, now: Date()).version == 3)
            _ = try await repo.upsert(name: "b", spec: a, now: Date())
            _ = try await repo.upsert(name: "ca", spec: a, now: Date())
            let listed = try await repo.list(prefix: "c", limit: 10, after: nil)
            #expect(listed.map(\.name) == ["c", "ca"])
            #expect(listed.first?.version == 3)
            #expect(try await repo.list(prefix: nil, limit: 10, after: "b").map(\.name) == ["c", "ca"])
            #expect(try await repo.list(prefix: nil, limit: 1, after: nil).map(\.name) == ["b"])
        }
    }

    @Test func jsonRoundTripOmitsAbsentFieldsAndRejectsUnknown() throws {
        var spec = job(["a"])
        spec.resources = CodespecResources(requests: ResourceQuantities(cpu: "1"))
        let json = String(decoding: try RunEngineJSON.makeEncoder().encode(spec), as: UTF8.self)
        #expect(!json.contains("null"))
        #expect(json.contains("\"cpu\":\"1\""))
        let decoded = try RunEngineJSON.makeDecoder().decode(Codespec.self, from: Data(#"{"kind":"job","image":"x","resources":{"requests":{"cpu":2}}}"#.utf8))
        #expect(decoded.resources?.requests?.cpu?.text == "2")
        #expect(throws: TygerRunEngineError.self) {
            try RunEngineJSON.makeDecoder(requireCodespecKind: true).decode(Codespec.self, from: Data(#"{"image":"x"}"#.utf8))
        }
    }

    @Test func expansion() {
        let vars = ["INPUT_PIPE": "/p/in", "A": "1"]
        #expect(RunEnvironment.expand("cat $(INPUT_PIPE)", with: vars) == "cat /p/in")
        #expect(RunEnvironment.expand("$$(INPUT_PIPE) and $(UNKNOWN)", with: vars) == "$(INPUT_PIPE) and $(UNKNOWN)")
        #expect(RunEnvironment.expand("$A $(A)$(A) $", with: vars) == "$A 11 $")
        #expect(RunEnvironment.pipeVariable("my-input") == "MY-INPUT_PIPE")
        #expect(RunEnvironment.underscoredPipeVariable("my-input") == "MY_INPUT_PIPE")
    }
}
