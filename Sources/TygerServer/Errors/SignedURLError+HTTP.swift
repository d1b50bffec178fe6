extension SignedURLError: HTTPErrorConvertible {
    /// 403 `AuthenticationFailed` or 403 `AuthorizationPermissionMismatch`, as upstream's local data plane answers.
    public var apiError: APIError {
        code == .permissionMismatch ? .authorizationPermissionMismatch(message) : .authenticationFailed(message)
    }
}
