/// An error raised while decoding or validating a control-plane wire value.
///
/// Every error carries a stable ``Code``, a human-readable ``message`` that is safe to return to API callers, and the
/// source location where it was raised. The HTTP layer maps every code of this type to `400 Bad Request` with the
/// `InvalidInput` error code.
public struct TygerModelError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case invalidJSON
            case invalidTags
            case invalidTimestamp
            case invalidTimeSpan
            case invalidInput
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The request body is not valid JSON, has the wrong shape, or contains unrecognized properties.
        public static let invalidJSON = Code(.invalidJSON)
        /// A tag set breaks the tag rules (count, key or value pattern).
        public static let invalidTags = Code(.invalidTags)
        /// A timestamp is not an RFC 3339 date-time.
        public static let invalidTimestamp = Code(.invalidTimestamp)
        /// A duration is not a .NET `TimeSpan` string.
        public static let invalidTimeSpan = Code(.invalidTimeSpan)
        /// A codespec, run spec or other request value breaks a rule (missing field, bad name, bad quantity...).
        public static let invalidInput = Code(.invalidInput)

        public var description: String { String(describing: wrapped) }
    }

    /// The kind of failure.
    public var code: Code
    /// A message suitable for API callers.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error & Sendable)?
    /// The file in which the error was raised.
    public var file: String
    /// The line on which the error was raised.
    public var line: Int

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: A message suitable for API callers.
    ///   - cause: The underlying error, if any.
    ///   - file: The file in which the error was raised.
    ///   - line: The line on which the error was raised.
    public init(
        code: Code,
        message: String,
        cause: (any Error & Sendable)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = Self.oneLine(message)
        self.cause = cause
        self.file = file
        self.line = line
    }

    public var description: String { "TygerModelError.\(code): \(message) (\(file):\(line))" }

    /// The message with control characters escaped (`\n` as the two characters `\` `n`): messages quote input
    /// (unknown field names, values), and a field named with a line break must not break the one-line error.
    static func oneLine(_ message: String) -> String {
        guard message.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return message }
        var out = ""
        for scalar in message.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// An ``Code/invalidInput`` error with a message for users.
    public static func invalid(
        _ message: String,
        cause: (any Error)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) -> TygerModelError {
        TygerModelError(code: .invalidInput, message: message, cause: cause, file: file, line: line)
    }
}
