extension QueryParameters {
    /// The parameters a signed URL is checked against (``SignedURLValidator/validate(query:containerId:required:)``):
    /// the first value of each key; a repeated signed parameter is refused.
    ///
    /// - Returns: The parameters by key.
    /// - Throws: `SignedURLError` `.authenticationFailed` when `api-version`, `sv`, `sp`, `st`, `se` or `sig` is
    ///   repeated.
    func signedURLParameters() throws -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in pairs {
            if result[key] != nil {
                if ["api-version", "sv", "sp", "st", "se", "sig"].contains(key) {
                    throw SignedURLError(.authenticationFailed, "The query parameter '\(key)' is repeated.")
                }
                continue
            }
            result[key] = value
        }
        return result
    }
}
