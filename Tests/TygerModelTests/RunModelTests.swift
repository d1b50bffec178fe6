import Foundation
import Testing

@testable import TygerModel

struct RunSpecTests {
    @Test func namedCodespecRunSpec() throws {
        let run = try YAMLSpecs.run(
            fromYAML: """
                job:
                  codespec: hello/versions/2
                  buffers: {input: abc, output: _}
                  tags: {k: v}
                  nodePool: cpu
                  replicas: 2
                timeoutSeconds: 60
                cluster: local
                tags: {run: "1"}
                """
        )
        #expect(run.job.codespec == .named("hello/versions/2"))
        #expect(run.job.buffers == ["input": "abc", "output": "_"])
        #expect(run.job.replicas == 2)
        #expect(run.job.nodePool == "cpu")
        #expect(run.timeoutSeconds == 60)
        #expect(run.tags == ["run": "1"])
        #expect(try CodespecReference.parse("hello/versions/2") == ("hello", 2))
    }

    @Test func inlineCodespecGetsJobKind() throws {
        let run = try YAMLSpecs.run(
            fromYAML: """
                job:
                  codespec:
                    image: ubuntu
                    command: [echo, hi]
                    buffers: {outputs: [out]}
                """
        )
        guard case .inline(let spec) = run.job.codespec else {
            Issue.record("not inline")
            return
        }
        #expect(spec.kind == .job)
        #expect(spec.buffers?.outputs == ["out"])
        #expect(run.job.replicas == 1)
        #expect(run.effectiveTimeoutSeconds == 43200)
    }

    @Test(arguments: [
        ("job: {codespec: a}\nbogus: 1", "unknown field 'bogus' in run"),
        ("job: {codespec: a, extra: 1}", "unknown field 'extra' in job"),
        ("job: {codespec: 'a/v/1'}", "The codespec reference 'a/v/1' is invalid"),
        ("job: {codespec: {image: x, buffers: {inputs: [a, a]}}}", "'a' is duplicated"),
        ("timeoutSeconds: 5", "missing required properties including: 'job'"),
    ])
    func invalidRunSpecs(yaml: String, message: String) {
        do {
            _ = try YAMLSpecs.run(fromYAML: yaml)
            Issue.record("expected \(message)")
        } catch let error as TygerModelError {
            #expect(error.message.contains(message), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func runJSONMatchesUpstreamShape() throws {
        var run = Run(job: JobRunCodeTarget(codespec: .named("hello"), buffers: ["input": "x"]))
        run.id = 7
        run.status = .succeeded
        run.createdAt = Date(timeIntervalSince1970: 1_700_000_000.25)
        let json = String(decoding: try TygerJSON.makeEncoder().encode(run), as: UTF8.self)
        #expect(json.contains("\"status\":\"Succeeded\""))
        #expect(json.contains("\"createdAt\":\"2023-11-14T22:13:20.25Z\""))
        #expect(json.contains("\"replicas\":1"))
        #expect(!json.contains("null"))
        let back = try TygerJSON.makeDecoder().decode(Run.self, from: Data(json.utf8))
        #expect(back == run)
        let offset = try TygerJSON.makeDecoder().decode(
            Run.self,
            from: Data(#"{"job":{"codespec":"a"},"createdAt":"2023-11-14T23:13:20+01:00"}"#.utf8)
        )
        #expect(offset.createdAt == Date(timeIntervalSince1970: 1_700_000_000))
    }

}
