/// A storage account, as listed by `GET /buffers/storage-accounts`: `{"name","location","endpoint"}`.
///
/// Local installations return one account: `local`, `local`, `http+unix://<install>/data-plane/tyger.data.sock:/`.
public struct StorageAccount: Codable, Sendable, Hashable {
    /// The account name.
    public var name: String
    /// The account's location.
    public var location: String
    /// The account's endpoint URL.
    public var endpoint: String

    /// Creates an account value.
    ///
    /// - Parameters:
    ///   - name: The account name.
    ///   - location: The account's location.
    ///   - endpoint: The account's endpoint URL.
    public init(name: String, location: String, endpoint: String) {
        self.name = name
        self.location = location
        self.endpoint = endpoint
    }
}
