/// The tag rules of upstream's `Model/Tags.cs`, applied to buffer tags.
///
/// At most ``maxTags`` tags; keys match `^[a-zA-Z0-9-_.]{1,128}$`; values match `^[a-zA-Z0-9-_.]{0,256}$`.
public enum TagValidation {
    /// The maximum number of tags on one entity.
    public static let maxTags = 100
    /// The maximum length of a key.
    public static let maxKeyLength = 128
    /// The maximum length of a value.
    public static let maxValueLength = 256

    /// Checks a tag set against the rules.
    ///
    /// - Parameter tags: The tags to check; `nil` is valid.
    /// - Throws: ``TygerModelError`` with code ``TygerModelError/Code/invalidTags`` when there are more than
    ///   ``maxTags`` tags or a key or value has a bad length or character.
    public static func validate(_ tags: [String: String]?) throws(TygerModelError) {
        guard let tags else { return }
        if tags.count > maxTags {
            throw TygerModelError(
                code: .invalidTags,
                message: "A maximum of \(maxTags) tags is allowed; \(tags.count) were given."
            )
        }
        for (key, value) in tags.sorted(by: { $0.key < $1.key }) {
            if !isValid(key, minLength: 1, maxLength: maxKeyLength) {
                throw TygerModelError(
                    code: .invalidTags,
                    message: "Tag key '\(key.prefix(200))' is invalid. Tag keys must be 1 to \(maxKeyLength) "
                        + "characters long and contain only letters, digits, '-', '_' or '.'."
                )
            }
            if !isValid(value, minLength: 0, maxLength: maxValueLength) {
                throw TygerModelError(
                    code: .invalidTags,
                    message: "The value of tag '\(key)' is invalid. Tag values must be at most \(maxValueLength) "
                        + "characters long and contain only letters, digits, '-', '_' or '.'."
                )
            }
        }
    }

    /// Whether a single key or value has only allowed characters and an allowed length.
    static func isValid(_ s: String, minLength: Int, maxLength: Int) -> Bool {
        let utf8 = s.utf8
        guard utf8.count >= minLength, utf8.count <= maxLength else { return false }
        return utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D
                || b == 0x5F || b == 0x2E
        }
    }
}
