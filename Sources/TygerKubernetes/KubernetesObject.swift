private import Yams

/// One Kubernetes object: its type, metadata and the rest of its fields in order.
public struct KubernetesObject: Sendable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var namespace: String
    public var labels: [(String, KubernetesValue)]
    public var annotations: [(String, KubernetesValue)]
    /// `spec`, when the kind has one.
    public var spec: KubernetesValue?
    /// Top-level fields after `spec` (a Secret's `stringData`).
    public var extra: [(String, KubernetesValue)] = []

    /// The object as a value, fields in Kubernetes' usual order.
    public var value: KubernetesValue {
        var metadata: [(String, KubernetesValue)] = [("name", .string(name)), ("namespace", .string(namespace))]
        if !labels.isEmpty { metadata.append(("labels", .map(labels))) }
        if !annotations.isEmpty { metadata.append(("annotations", .map(annotations))) }
        var fields: [(String, KubernetesValue)] = [
            ("apiVersion", .string(apiVersion)), ("kind", .string(kind)), ("metadata", .map(metadata)),
        ]
        if let spec { fields.append(("spec", spec)) }
        return .map(fields + extra)
    }
}

/// A JSON-like value whose maps keep their order, rendered as YAML.
public indirect enum KubernetesValue: Sendable, ExpressibleByStringLiteral {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([KubernetesValue])
    case map([(String, KubernetesValue)])

    public init(stringLiteral value: String) { self = .string(value) }

    /// The field `key` of a map; `nil` for other values or a missing key.
    public subscript(key: String) -> KubernetesValue? {
        guard case .map(let fields) = self else { return nil }
        return fields.first { $0.0 == key }?.1
    }

    /// The text of a string; `nil` for other values.
    public var text: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The items of a list; empty for other values.
    public var items: [KubernetesValue] {
        if case .list(let items) = self { return items }
        return []
    }

    /// One YAML document.
    func yaml() throws -> String {
        try Yams.serialize(node: node, width: -1, allowUnicode: true)
    }

    private var node: Node {
        switch self {
        case .string(let text):
            // Multi-line text as a literal block; text that YAML would read as something else (`true`, `1`, `null`,
            // ``) in double quotes, so that annotation values and env values stay strings.
            if text.contains("\n") { return Node(text, Tag(.str), .literal) }
            let plain = (try? Yams.load(yaml: text)) as? String == text
            return Node(text, Tag(.str), plain ? .any : .doubleQuoted)
        case .int(let value): return Node(String(value), Tag(.int))
        case .bool(let value): return Node(value ? "true" : "false", Tag(.bool))
        case .list(let items): return Node(items.map(\.node))
        case .map(let fields): return .mapping(Node.Mapping(fields.map { (Node($0.0), $0.1.node) }))
        }
    }
}
