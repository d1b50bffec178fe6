import Logging
import TygerCore
import TygerStorage

extension DataPlaneController {
    /// After an upload failed because the disk is full, marks the buffer failed: `.bufferend` `{"status":"failed"}`,
    /// so readers stop with a clear error instead of waiting for blobs that will never come. The partial blob is
    /// already dropped, which frees the few bytes this needs. Best effort: a buffer that already ended keeps its
    /// end, and a failure here is logged.
    ///
    /// - Parameters:
    ///   - error: The upload's error; anything but a full disk is ignored.
    ///   - store: The buffer's store.
    ///   - logger: Where a failure to mark the buffer is logged.
    static func markFailedIfDiskFull(_ error: any Error, store: FileBlobStore, logger: Logger) {
        guard let error = error as? BlobStoreError, error.code == .noSpace else { return }
        let bytes = BufferEndMetadata.encoded(.failed)
        do {
            let upload = try store.beginUpload(BufferBlobNames.end)
            try bytes.withUnsafeBytes { try upload.append($0) }
            try upload.commit(metadata: BlobMetadata(contentMD5: Checksums.md5Base64(bytes)))
            logger.warning("disk full: the buffer is marked failed", metadata: ["error": "\(error.message)"])
        } catch let other as BlobStoreError where other.code == .alreadyExists {
            return
        } catch {
            logger.error("disk full: cannot mark the buffer failed", metadata: ["error": "\(error)"])
        }
    }
}
