import Testing

@testable import TygerModel

/// Spec files are bounded before decoding: size, and node count and depth with aliases expanded.
struct YAMLBoundsTests {
    /// A billion-laughs document: ten levels of ten aliases each, about 10^10 nodes once expanded, in 600 bytes.
    static let aliasBomb: String = {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            yaml += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            yaml += "]\n"
        }
        return yaml + "image: x\nargs: *a9\n"
    }()

    @Test func anAliasBombIsRefusedNamingTheFile() {
        #expect(Self.aliasBomb.utf8.count < 1000)
        do {
            _ = try YAMLSpecs.codespec(fromYAML: Self.aliasBomb, file: "bomb.yaml")
            Issue.record("an alias bomb was accepted")
        } catch let error as TygerModelError {
            #expect(error.code == .invalidInput)
            #expect(error.message.hasPrefix("bomb.yaml: the codespec file expands to more than 100000 nodes"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
        #expect(throws: TygerModelError.self) { try YAMLSpecs.run(fromYAML: Self.aliasBomb, file: "run.yaml") }
    }

    @Test func aDocumentOverTheSizeLimitIsRefused() {
        let yaml = "image: x\nargs: [" + String(repeating: "aaaaaaa, ", count: 130_000) + "b]\n"
        do {
            _ = try YAMLSpecs.codespec(fromYAML: yaml, file: "big.yaml")
            Issue.record("a document over 1 MiB was accepted")
        } catch let error as TygerModelError {
            #expect(error.message == "big.yaml: the codespec file is larger than 1 MiB")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func deepNestingIsRefused() {
        let yaml = "image: x\nenv: " + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "\n"
        #expect(throws: TygerModelError.self) { try YAMLSpecs.codespec(fromYAML: yaml, file: "deep.yaml") }
    }

    @Test func modestAliasesStillWork() throws {
        let yaml = "image: x\ncommand: &c [run]\nargs: *c\n"
        let spec = try YAMLSpecs.codespec(fromYAML: yaml, file: "ok.yaml")
        #expect(spec.args == ["run"])
    }
}
