/// One permission letter of a local signed URL's `sp` parameter.
///
/// Upper-case letters grant container operations, lower-case letters blob operations, as upstream: container
/// create `C`, read `R`, delete `D`; blob create `c`, read `r`. A read access URL carries `r`, a write access URL
/// `cr`.
public struct SignedURLPermission: Hashable, Sendable, CustomStringConvertible {
    /// The letter as it appears in `sp`.
    public let letter: Character

    private init(_ letter: Character) { self.letter = letter }

    /// `C`: create the container.
    public static let createContainer = SignedURLPermission("C")
    /// `R`: check that the container exists.
    public static let readContainer = SignedURLPermission("R")
    /// `D`: delete the container and all its blobs.
    public static let deleteContainer = SignedURLPermission("D")
    /// `c`: create (upload) blobs.
    public static let createBlob = SignedURLPermission("c")
    /// `r`: read blobs and their properties.
    public static let readBlob = SignedURLPermission("r")

    /// Every known permission, in the order they are written in `sp`.
    public static let all: [SignedURLPermission] = [
        .createContainer, .readContainer, .deleteContainer, .createBlob, .readBlob,
    ]

    /// Writes a set of permissions as an `sp` value, in a canonical order (`C`, `R`, `D`, `c`, `r`).
    public static func spValue(_ permissions: Set<SignedURLPermission>) -> String {
        String(all.filter(permissions.contains).map(\.letter))
    }

    /// Parses an `sp` value.
    ///
    /// - Returns: The permissions, or `nil` when the value is empty, repeats a letter or holds an unknown one.
    public static func parse(_ sp: String) -> Set<SignedURLPermission>? {
        var result = Set<SignedURLPermission>()
        for c in sp {
            guard let p = all.first(where: { $0.letter == c }), result.insert(p).inserted else { return nil }
        }
        return result.isEmpty ? nil : result
    }

    public var description: String { String(letter) }
}
