extension Codespec {
    /// Upstream's message for a codespec name outside `^[a-z0-9\-._]*$`.
    public static let invalidNameMessage =
        "codespec names must contain only lower case letters (a-z), numbers (0-9), dashes (-), underscores (_), and dots (.)"

    /// Checks a codespec name against upstream's rule (`^[a-z0-9\-._]*$`, and not empty).
    ///
    /// - Throws: ``TygerModelError`` `.invalidInput` with upstream's message.
    public static func validateName(_ name: String) throws {
        guard !name.isEmpty,
            name.utf8.allSatisfy({
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F
            })
        else { throw TygerModelError.invalid(invalidNameMessage) }
    }

    /// Whether `name` is a valid buffer parameter name (`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).
    static func isValidBufferName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, let last = bytes.last else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        return alnum(first) && alnum(last) && bytes.allSatisfy { alnum($0) || $0 == 0x2D }
    }

    /// Checks the codespec as upstream does on create (and on run creation for inline codespecs).
    ///
    /// - Throws: ``TygerModelError`` `.invalidInput` with the first problem found: empty image, endpoints on a job,
    ///   buffers on a worker, invalid or duplicated buffer names (case-insensitive), malformed quantities, negative
    ///   replicas.
    public func validate() throws {
        if let name { try Self.validateName(name) }
        if image.isEmpty {
            throw TygerModelError.invalid(
                "The field Image must be a string or array type with a minimum length of '1'."
            )
        }
        switch kind {
        case .job:
            if let endpoints, !endpoints.isEmpty {
                throw TygerModelError.invalid("job codespecs cannot have endpoints")
            }
        case .worker:
            if buffers != nil && !bufferParameters.isEmpty {
                throw TygerModelError.invalid("worker codespecs cannot have use buffers")
            }
            if let sockets, !sockets.isEmpty {
                throw TygerModelError.invalid("worker codespecs cannot have sockets")
            }
        }
        var seen = Set<String>()
        for (name, _) in bufferParameters {
            guard !name.isEmpty else { throw TygerModelError.invalid("Buffer names cannot be empty.") }
            guard seen.insert(name.lowercased()).inserted else {
                throw TygerModelError.invalid(
                    "All buffer names must be unique across inputs and outputs. Buffer names are case-insensitive. '\(name)' is duplicated"
                )
            }
            guard Self.isValidBufferName(name) else {
                throw TygerModelError.invalid(
                    "The name of buffer '\(name)' is invalid. Buffer names must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character."
                )
            }
        }
        for (port, _) in endpoints ?? [:] where port.isEmpty {
            throw TygerModelError.invalid("endpoint names cannot be empty")
        }
        for (name, port) in endpoints ?? [:] where !(1...65535).contains(port) {
            throw TygerModelError.invalid("endpoint '\(name)' has an invalid port \(port)")
        }
        if let maxReplicas, maxReplicas < 0 {
            throw TygerModelError.invalid("maxReplicas must be a non-negative integer")
        }
        try resources?.validate()
    }
}

extension CodespecResources {
    /// Checks every quantity.
    ///
    /// - Throws: ``TygerModelError`` `.invalidInput` naming the field and the bad value, e.g.
    ///   `invalid resources.requests.cpu 'abc': quantities must match the regular expression ...`; also for
    ///   negative quantities and those over ``Quantity/maxValue``.
    public func validate() throws {
        let fields: [(String, Quantity?)] = [
            ("resources.requests.cpu", requests?.cpu), ("resources.requests.memory", requests?.memory),
            ("resources.limits.cpu", limits?.cpu), ("resources.limits.memory", limits?.memory),
            ("resources.gpu", gpu), ("resources.shm", shm),
        ]
        for (field, quantity) in fields {
            guard let quantity else { continue }
            guard let value = quantity.value else {
                throw TygerModelError.invalid("invalid \(field) '\(quantity.text)': \(Quantity.formatMessage)")
            }
            if value < 0 {
                throw TygerModelError.invalid("invalid \(field) '\(quantity.text)': quantities must not be negative")
            }
            if value > Quantity.maxValue {
                throw TygerModelError.invalid(
                    "invalid \(field) '\(quantity.text)': quantities must be at most 2^63-1 (9.2e18)"
                )
            }
        }
    }
}
