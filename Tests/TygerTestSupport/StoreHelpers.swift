public import TygerStorage

/// Whether `store` reports its writer gone within `timeout`.
///
/// A released `FileBlobStore` lease can linger for a moment when another test spawns a child process at that instant:
/// the child holds a copy of the descriptor table until its `exec` closes the close-on-exec lease descriptor. So
/// tests wait briefly instead of sampling once.
public func writerGone(_ store: any BlobStore, within timeout: Duration = .seconds(5)) async -> Bool {
    await eventually(timeout: timeout) { (try? await store.writerState()) == .gone }
}
