import Foundation
import Testing

@testable import TygerModel

struct CodespecTests {
    @Test func yamlCodespecLoads() throws {
        let spec = try YAMLSpecs.codespec(
            fromYAML: """
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
                """,
            name: "hello"
        )
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
        } catch let error as TygerModelError {
            #expect(error.code == .invalidInput)
            #expect(error.message.contains(message), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test(arguments: ["Hello", "a b", "a/b", ""])
    func invalidNames(name: String) {
        #expect(throws: TygerModelError.self) { try Codespec.validateName(name) }
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

    @Test func jsonRoundTripOmitsAbsentFieldsAndRejectsUnknown() throws {
        var spec = Codespec(image: "x", command: ["a"])
        spec.resources = CodespecResources(requests: ResourceQuantities(cpu: "1"))
        let json = String(decoding: try TygerJSON.makeEncoder().encode(spec), as: UTF8.self)
        #expect(!json.contains("null"))
        #expect(json.contains("\"cpu\":\"1\""))
        let decoded = try TygerJSON.makeDecoder().decode(
            Codespec.self,
            from: Data(#"{"kind":"job","image":"x","resources":{"requests":{"cpu":2}}}"#.utf8)
        )
        #expect(decoded.resources?.requests?.cpu?.text == "2")
        #expect(throws: TygerModelError.self) {
            try TygerJSON.makeDecoder(requireCodespecKind: true).decode(
                Codespec.self,
                from: Data(#"{"image":"x"}"#.utf8)
            )
        }
    }

    @Test func envEntriesWithoutAValueAreEmpty() throws {
        let spec = try YAMLSpecs.codespec(fromYAML: "name: e\nimage: x\nenv:\n  EMPTY:\n  SET: v\n")
        #expect(spec.env == ["EMPTY": "", "SET": "v"])
        let json = try TygerJSON.makeDecoder().decode(
            Codespec.self,
            from: Data(#"{"kind":"job","image":"x","env":{"A":null}}"#.utf8)
        )
        #expect(json.env == ["A": ""])
    }
}
