import Crypto
import HTTPTypes
import Hummingbird
import Logging
import TygerCore
import TygerIO
import TygerStorage

extension DataPlaneController {
    // MARK: Put Block

    /// `PUT …?comp=block&blockid=ID`: stages one block of a blob for a later Put Block List.
    ///
    /// The write is admitted as a Put Blob is (`admitWrite`: signed URL, writer lease, `If-Match`), and a blob that
    /// is already committed is refused at once (409 `BlobAlreadyExists`: blobs are write-once, so its blocks could
    /// never be committed). The body is at most ``maxBlockSize`` bytes; a `Content-MD5` is verified.
    func putBlock(
        _ request: Request,
        _ context: AppRequestContext,
        container: String,
        name: String,
        query: [String: String]
    ) async throws -> Response {
        let blockId = try Self.blockId(query["blockid"])
        let limit = maxBlockSize
        try Self.refuseDeclaredBody(request.headers, over: limit, of: "one block")
        let transactionalMD5 = try Self.md5Header(request.headers, .contentMD5)
        let write = try await admitWrite(request, container: container, name: name)
        let store = write.store
        if try store.openBlob(name) != nil { throw APIError.blobAlreadyExists }
        if let length = store.stagedBlockIdLength(name), length != blockId.count {
            throw APIError(
                .badRequest,
                code: "InvalidBlobOrBlock",
                message:
                    "The specified blob or block content is invalid: the blocks of a blob must all have block IDs of "
                    + "the same length (\(length) bytes before base64 for this blob)."
            )
        }

        let upload = try store.beginBlockUpload(name, blockId: blockId)
        let received = try await receive(
            request.body,
            into: upload,
            limit: limit,
            tooLarge: .requestBodyTooLarge(limit: limit, of: "one block"),
            md5: transactionalMD5 != nil,
            crc: false,
            keepPrefix: false,
            store: store,
            logger: context.logger
        )
        if let transactionalMD5, transactionalMD5 != received.md5 {
            upload.abort()
            throw APIError.md5Mismatch(header: "Content-MD5")
        }
        do {
            try upload.commitBlock()
        } catch {
            Self.markFailedIfDiskFull(error, store: store, logger: context.logger)
            throw error
        }
        context.logger.debug(
            "block staged",
            metadata: ["buffer.id": "\(container)", "blob.name": "\(name)", "block.size": "\(received.count)"]
        )
        var response = HTTPFields()
        if let digest = received.md5 { response[.contentMD5] = digest }
        response[.xMsRequestServerEncrypted] = "false"
        response[.xMsRequestID] = context.requestID
        if let version = request.headers[.xMsVersion] { response[.xMsVersion] = version }
        response[.contentLength] = "0"
        return Response(status: .created, headers: response)
    }

    /// The `blockid` query parameter: base64 of 1 to 64 bytes.
    ///
    /// - Throws: `APIError` 400 `InvalidQueryParameterValue` when it is missing or invalid.
    static func blockId(_ value: String?) throws -> [UInt8] {
        guard let value, let bytes = Base64.decode(value), !bytes.isEmpty,
            bytes.count <= FileBlobStore.maxBlockIdLength
        else {
            throw APIError(
                .badRequest,
                code: "InvalidQueryParameterValue",
                message:
                    "Value for one of the query parameters specified in the request URI is invalid: blockid must be "
                    + "the base64 of 1 to \(FileBlobStore.maxBlockIdLength) bytes."
            )
        }
        return bytes
    }

    // MARK: Put Block List

    /// `PUT …?comp=blocklist`: assembles staged blocks, in the order the XML list gives, into the blob.
    ///
    /// Everything else is as Put Blob: the same admission (`admitWrite`), the same metadata headers
    /// (`x-ms-blob-content-md5`, `x-ms-meta-*` with the native format's CRC32C) verified over the assembled bytes,
    /// the same write-once commit (`commit`). The blob's staged blocks are removed once it is committed.
    ///
    /// A blob that exists is 409 `BlobAlreadyExists` before its block list is looked at, also when a concurrent
    /// attempt committed it (and so took its blocks) while this request was under way: a client's retry of a
    /// commit that landed gets the answer it accepts, not 400 `InvalidBlockList`.
    func putBlockList(
        _ request: Request,
        _ context: AppRequestContext,
        container: String,
        name: String
    ) async throws -> Response {
        let headers = request.headers
        try Self.refuseDeclaredBody(headers, over: Self.maxBlockListBodySize, of: "a block list")
        let checks = try BlobChecks(headers)
        let write = try await admitWrite(request, container: container, name: name)
        let store = write.store
        if try store.openBlob(name) != nil { throw APIError.blobAlreadyExists }

        var body: [UInt8] = []
        for try await chunk in request.body {
            guard body.count + chunk.readableBytes <= Self.maxBlockListBodySize else {
                throw APIError.requestBodyTooLarge(limit: Self.maxBlockListBodySize, of: "a block list")
            }
            body += chunk.readableBytesView
        }
        let bodyMD5 = Checksums.md5Base64(body)
        if let transactionalMD5 = checks.transactionalMD5, transactionalMD5 != bodyMD5 {
            throw APIError.md5Mismatch(header: "Content-MD5")
        }
        // Checked again now that the body is in, before the list is: a client's retry of this request may have
        // been admitted while its first attempt was still assembling the blob, and that commit took the blocks.
        if try store.openBlob(name) != nil { throw APIError.blobAlreadyExists }
        let list = try BlockList.parse(body, maxEntries: Self.maxBlocksPerBlob)
        let blockIds: [[UInt8]]
        do {
            blockIds = try resolve(list, of: name, in: store)
        } catch {
            throw Self.committedMeanwhile(error, name: name, store: store) ? APIError.blobAlreadyExists : error
        }

        // Hashing and copying a blob of up to maxBlobSize takes seconds: off the cooperative threads.
        let computeMD5 = checks.expectedCRC == nil || checks.blobMD5 != nil
        let upload = try store.beginUpload(name)
        let box = UploadBox(upload)
        let limit = maxBlobSize
        let received: ReceivedBytes
        do {
            received = try await BlockingPool.shared.run {
                var md5 = Insecure.MD5()
                var received = ReceivedBytes()
                try store.appendStagedBlocks(of: name, blockIds: blockIds, to: box.upload) { bytes in
                    received.count += bytes.count
                    guard received.count <= limit else { throw APIError.requestBodyTooLarge(limit: limit) }
                    if computeMD5 { md5.update(bufferPointer: bytes) }
                    if checks.expectedCRC != nil { received.crc = Checksums.crc32c(bytes, seed: received.crc) }
                    if name == BufferBlobNames.end && received.prefix.count < 4096 {
                        received.prefix += bytes.prefix(4096 - received.prefix.count)
                    }
                }
                if computeMD5 { received.md5 = Base64.encode(md5.finalize()) }
                return received
            }
        } catch {
            upload.abort()
            Self.markFailedIfDiskFull(error, store: store, logger: context.logger)
            throw Self.committedMeanwhile(error, name: name, store: store) ? APIError.blobAlreadyExists : error
        }
        var response = try await commit(write, upload: upload, received: received, checks: checks, context)
        store.removeStagedBlocks(name)
        // As Azure: this Content-MD5 is of the request's body (the block list), not of the blob.
        response[.contentMD5] = bodyMD5
        if let version = headers[.xMsVersion] { response[.xMsVersion] = version }
        return Response(status: .created, headers: response)
    }

    /// Whether `error`, a block found missing, comes from a concurrent attempt of the same Put Block List (a
    /// client's retry whose first attempt was slow) that committed the blob, which removes its staged blocks: then
    /// the answer is 409 `BlobAlreadyExists`, which the client accepts after comparing the blob's checksum and chain,
    /// not 400 `InvalidBlockList`.
    static func committedMeanwhile(_ error: any Error, name: String, store: FileBlobStore) -> Bool {
        let missingBlock =
            (error as? APIError)?.code == "InvalidBlockList" || (error as? BlobStoreError)?.code == .blockNotFound
        return missingBlock && (try? store.openBlob(name)) != nil
    }

    /// The staged blocks a list names, in order, checked to exist and to fit in one blob before a byte is copied.
    ///
    /// - Throws: `APIError` 400 `InvalidBlockList` for an ID that is not valid base64 or is not staged (a
    ///   `Committed` entry never matches: blobs are write-once, so the blob has no committed blocks), 413
    ///   `RequestBodyTooLarge` when the blocks add up to more than ``maxBlobSize``.
    func resolve(_ list: BlockList, of name: String, in store: FileBlobStore) throws -> [[UInt8]] {
        var lengths: [[UInt8]: Int] = [:]
        var total = 0
        var ids: [[UInt8]] = []
        ids.reserveCapacity(list.entries.count)
        for entry in list.entries {
            guard entry.source != .committed, let id = Base64.decode(entry.id), !id.isEmpty,
                id.count <= FileBlobStore.maxBlockIdLength
            else { throw APIError.invalidBlockList(entry.id) }
            let length: Int
            if let known = lengths[id] {
                length = known
            } else {
                guard let staged = store.stagedBlockLength(name, blockId: id) else {
                    throw APIError.invalidBlockList(entry.id)
                }
                lengths[id] = staged
                length = staged
            }
            total += length
            guard total <= maxBlobSize else { throw APIError.requestBodyTooLarge(limit: maxBlobSize) }
            ids.append(id)
        }
        return ids
    }
}

/// Hands an upload to the blocking pool for one awaited call.
private struct UploadBox: @unchecked Sendable {
    // @unchecked: the upload is used by one thread at a time: the pool's while the request awaits it.
    let upload: FileBlobUpload
    init(_ upload: FileBlobUpload) { self.upload = upload }
}
