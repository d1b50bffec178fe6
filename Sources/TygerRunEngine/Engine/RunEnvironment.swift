import TygerModel

/// Environment variables and `$(VAR)` expansion for run processes.
public enum RunEnvironment {
    /// The variable naming a buffer parameter's pipe, as upstream: the name uppercased plus `_PIPE`, dashes kept
    /// (`my-input` → `MY-INPUT_PIPE`).
    public static func pipeVariable(_ parameter: String) -> String { parameter.uppercased() + "_PIPE" }

    /// The shell-friendly form: dashes become underscores (`my-input` → `MY_INPUT_PIPE`).
    public static func underscoredPipeVariable(_ parameter: String) -> String {
        pipeVariable(parameter).replacingDashes()
    }

    /// Expands `$(VAR)` references with `variables`; unknown references stay as written; `$$(VAR)` gives the
    /// literal text `$(VAR)` (upstream's Docker mode turns it into `$)`, a bug we do not reproduce).
    public static func expand(_ text: String, with variables: [String: String]) -> String {
        let b = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if b[i] == 0x24, i + 2 < b.count, b[i + 1] == 0x24, b[i + 2] == 0x28,
                let close = b[(i + 3)...].firstIndex(of: 0x29)
            {
                out.append(contentsOf: b[(i + 1)...close])  // `$$(X)` → `$(X)`
                i = close + 1
            } else if b[i] == 0x24, i + 1 < b.count, b[i + 1] == 0x28, let close = b[(i + 2)...].firstIndex(of: 0x29) {
                let name = String(decoding: b[(i + 2)..<close], as: UTF8.self)
                if let value = variables[name] {
                    out.append(contentsOf: value.utf8)
                } else {
                    out.append(contentsOf: b[i...close])
                }
                i = close + 1
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Variables passed through from the server's environment (when set); everything else starts empty, as in a
    /// container.
    public static let inherited = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SHELL"]

    /// The complete environment of one replica.
    ///
    /// - Parameters:
    ///   - codespec: Its `env` values are expanded against the raw `env` map plus the pipe variables.
    ///   - pipes: Parameter name → FIFO path (for replicas other than 0: `/dev/null`).
    ///   - base: The inherited variables.
    static func make(
        codespec: Codespec,
        runId: Int64,
        replica: Int,
        replicas: Int,
        pipes: [String: String],
        base: [String: String]
    ) -> [String: String] {
        var pipeVariables: [String: String] = [:]
        for (parameter, path) in pipes {
            pipeVariables[pipeVariable(parameter)] = path
            pipeVariables[underscoredPipeVariable(parameter)] = path
        }
        let raw = codespec.env ?? [:]
        let lookup = raw.merging(pipeVariables) { _, pipe in pipe }
        var env = base
        for (key, value) in raw { env[key] = expand(value, with: lookup) }
        env.merge(pipeVariables) { _, pipe in pipe }
        env["TYGER_RUN_ID"] = String(runId)
        env["TYGER_REPLICA_INDEX"] = String(replica)
        env["TYGER_REPLICA_COUNT"] = String(replicas)
        return env
    }
}

extension String {
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
