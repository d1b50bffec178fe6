import Crypto
import HTTPTypes
import Hummingbird
import Logging
import TygerControlPlane
import TygerCore
import TygerStorage

extension DataPlaneController {
    // MARK: Put Blob

    /// Routes a blob PUT: Put Blob, or by its `comp=`: Put Block, Put Block List, the writer lease's actions.
    func putBlob(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let (path, query) = try authorize(request, context, permission: .createBlob, blob: true)
        let name = path.blobName!  // authorize(blob: true) guarantees a blob name
        if query["comp"] == "lease", name == BufferBlobNames.start, let leases {
            return try await leaseAction(request, context, container: path.containerId, leases: leases)
        }
        switch query["comp"] {
        case nil: return try await putWholeBlob(request, context, container: path.containerId, name: name)
        case "block":
            return try await putBlock(request, context, container: path.containerId, name: name, query: query)
        case "blocklist":
            return try await putBlockList(request, context, container: path.containerId, name: name)
        case let comp?:
            throw APIError.unsupportedOperation(
                "The operation comp=\(comp) is not supported: upload a blob with Put Blob, or with Put Block "
                    + "(comp=block) and Put Block List (comp=blocklist)."
            )
        }
    }

    /// Refuses a request whose declared body (`Content-Length`) is over `limit` bytes with 413 before reading it;
    /// the body readers enforce the same limit on what actually arrives.
    static func refuseDeclaredBody(_ headers: HTTPFields, over limit: Int, of what: String) throws {
        if let length = headers[.contentLength], let n = Int(length), n > limit {
            throw APIError.requestBodyTooLarge(limit: limit, of: what)
        }
    }

    /// Streams a blob to disk while hashing it, verifies the checksums the client sent, and commits it write-once.
    func putWholeBlob(
        _ request: Request,
        _ context: AppRequestContext,
        container: String,
        name: String
    ) async throws -> Response {
        let headers = request.headers
        try Self.refuseDeclaredBody(headers, over: maxBlobSize, of: "one blob")
        let checks = try BlobChecks(headers)
        let write = try await admitWrite(request, container: container, name: name)

        // The native format carries a CRC32C: then MD5 (5x slower) is computed only if the client sent one.
        let computeMD5 = checks.expectedCRC == nil || checks.transactionalMD5 != nil || checks.blobMD5 != nil
        let upload = try write.store.beginUpload(name)
        let received = try await receive(
            request.body,
            into: upload,
            limit: maxBlobSize,
            tooLarge: .requestBodyTooLarge(limit: maxBlobSize),
            md5: computeMD5,
            crc: checks.expectedCRC != nil,
            keepPrefix: name == BufferBlobNames.end,
            store: write.store,
            logger: context.logger
        )
        if let transactionalMD5 = checks.transactionalMD5, transactionalMD5 != received.md5 {
            upload.abort()
            throw APIError.md5Mismatch(header: "Content-MD5")
        }
        var response = try await commit(write, upload: upload, received: received, checks: checks, context)
        if let digest = received.md5 { response[.contentMD5] = digest }
        return Response(status: .created, headers: response)
    }

    /// A blob write (Put Blob, Put Block, Put Block List) that passed the checks every write makes.
    struct AdmittedWrite {
        let container: String
        let name: String
        let store: FileBlobStore
        let leaseId: String?
    }

    /// The checks every blob write makes before it reads its body (after `authorize` checked the signed URL's `c`
    /// permission): the blob type, checksum headers this server cannot verify, `If-Match` (write-once) and the
    /// writer lease (`checkLease`). Put Blob, Put Block and Put Block List all pass here, so a writer is held to the
    /// same rules whichever way it uploads.
    func admitWrite(_ request: Request, container: String, name: String) async throws -> AdmittedWrite {
        let headers = request.headers
        if let type = headers[.xMsBlobType], type != "BlockBlob" {
            throw APIError.invalidHeaderValue("x-ms-blob-type", "only BlockBlob is supported")
        }
        for unverifiable in [HTTPField.Name.xMsContentCRC64, .xMsStructuredBody] where headers[unverifiable] != nil {
            // Accepting a checksum without checking it would let a corrupted upload through unnoticed.
            throw APIError(
                .badRequest,
                code: "UnsupportedHeader",
                message:
                    "The \(unverifiable.rawName) header is not supported by this server: send Content-MD5 instead."
            )
        }
        let store = buffers.store(for: container)
        if headers[.ifMatch] != nil {
            // Write-once: an existing blob cannot be replaced, and a missing one does not match.
            throw try store.openBlob(name) == nil ? APIError.conditionNotMet : APIError.blobAlreadyExists
        }
        let leaseId = headers[.xTygerLeaseID]
        if let leases {
            try await checkLease(leases, container: container, name: name, leaseId: leaseId, store: store)
        }
        return AdmittedWrite(container: container, name: name, store: store, leaseId: leaseId)
    }

    /// The whole blob's checksums and metadata, from the headers of Put Blob or Put Block List.
    struct BlobChecks {
        /// `Content-MD5`: of the request body (the blob for Put Blob, the XML block list for Put Block List).
        var transactionalMD5: String?
        /// `x-ms-blob-content-md5`: of the blob.
        var blobMD5: String?
        /// `x-ms-meta-*`.
        var properties: [String: String]
        /// The native format's `x-ms-meta-crc32c`.
        var expectedCRC: UInt32?

        init(_ headers: HTTPFields) throws {
            transactionalMD5 = try DataPlaneController.md5Header(headers, .contentMD5)
            blobMD5 = try DataPlaneController.md5Header(headers, .xMsBlobContentMD5)
            properties = try DataPlaneController.metadata(from: headers)
            if let text = properties[BlobMetadata.Key.crc32c] {
                guard text.utf8.count == 8, let crc = UInt32(text, radix: 16) else {
                    throw APIError.invalidMetadata("crc32c must be 8 hex digits")
                }
                expectedCRC = crc
            }
        }
    }

    /// What `receive` read: the byte count, the checksums asked for, and the first bytes when asked.
    struct ReceivedBytes {
        var count = 0
        /// Base64 MD5, when computed.
        var md5: String?
        var crc: UInt32 = 0
        /// The first 4 KiB (the bytes of `.bufferend`, a few dozen, for the lease's final state).
        var prefix: [UInt8] = []
    }

    /// Streams a request body into an upload while hashing it. On failure the upload is dropped (and on a full disk
    /// the buffer is marked failed) before the error is thrown.
    ///
    /// - Throws: `tooLarge` past `limit` bytes, `BlobStoreError` when a write fails.
    func receive(
        _ body: RequestBody,
        into upload: FileBlobUpload,
        limit: Int,
        tooLarge: APIError,
        md5 computeMD5: Bool,
        crc computeCRC: Bool,
        keepPrefix: Bool,
        store: FileBlobStore,
        logger: Logger
    ) async throws -> ReceivedBytes {
        var md5 = Insecure.MD5()
        var received = ReceivedBytes()
        do {
            // Pieces of any size (TLS records, reads of up to 1 MiB) are gathered in the upload's page-aligned
            // staging memory and written 1 MiB at a time with direct I/O (`FileBlobUpload.stage`).
            for try await chunk in body {
                received.count += chunk.readableBytes
                guard received.count <= limit else { throw tooLarge }
                chunk.withUnsafeReadableBytes { bytes in
                    if computeMD5 { md5.update(bufferPointer: bytes) }
                    if computeCRC { received.crc = Checksums.crc32c(bytes, seed: received.crc) }
                }
                if keepPrefix && received.prefix.count < 4096 {
                    received.prefix += chunk.readableBytesView.prefix(4096 - received.prefix.count)
                }
                var offset = 0
                while offset < chunk.readableBytes {
                    offset += chunk.withUnsafeReadableBytes {
                        upload.stage(UnsafeRawBufferPointer(rebasing: $0[offset...]))
                    }
                    if upload.stagingIsFull { try await upload.writeStaged() }
                }
            }
            try await upload.writeStaged()
        } catch {
            upload.abort()
            Self.markFailedIfDiskFull(error, store: store, logger: logger)
            throw error
        }
        if computeMD5 { received.md5 = Base64.encode(md5.finalize()) }
        return received
    }

    /// Finishes a blob write: checks the whole blob's MD5 and CRC32C, makes the buffer durable before `.bufferend`,
    /// commits write-once (409 `BlobAlreadyExists` when it lost a race), and ends the writer lease with `.bufferend`.
    ///
    /// - Returns: The 201's headers (`ETag`, `Last-Modified`, request ID); the caller adds its `Content-MD5`.
    func commit(
        _ write: AdmittedWrite,
        upload: FileBlobUpload,
        received: ReceivedBytes,
        checks: BlobChecks,
        _ context: AppRequestContext
    ) async throws -> HTTPFields {
        let (store, name) = (write.store, write.name)
        if let blobMD5 = checks.blobMD5, blobMD5 != received.md5 {
            upload.abort()
            throw APIError.md5Mismatch(header: "x-ms-blob-content-md5")
        }
        if let expectedCRC = checks.expectedCRC, expectedCRC != received.crc {
            upload.abort()
            throw APIError.crc32cMismatch
        }
        if name == BufferBlobNames.end {
            // `.bufferend` says the buffer is complete: make every blob before it durable first, as the local
            // writer does (one syncfs instead of an fsync per blob).
            try await store.sync()
        }
        do {
            try upload.commit(metadata: BlobMetadata(contentMD5: received.md5, properties: checks.properties))
        } catch {
            Self.markFailedIfDiskFull(error, store: store, logger: context.logger)
            throw error
        }
        if name == BufferBlobNames.end, let leases, let leaseId = write.leaseId {
            let state: BufferWriteState = BufferEndMetadata.decode(received.prefix) == .failed ? .failed : .complete
            try await leases.end(write.container, leaseId: leaseId, state: state)
        }
        context.logger.debug(
            "blob stored",
            metadata: ["buffer.id": "\(write.container)", "blob.name": "\(name)", "blob.size": "\(received.count)"]
        )

        var response = HTTPFields()
        if let blob = try store.openBlob(name) {
            response[.eTag] = Self.eTag(blob)
            response[.lastModified] = HTTPDate.format(blob.modifiedNanoseconds / 1_000_000_000)
        }
        response[.xMsRequestServerEncrypted] = "false"
        response[.xMsRequestID] = context.requestID
        response[.contentLength] = "0"
        return response
    }

    /// Applies the writer lease to a blob PUT: `.bufferstart` with a lease ID takes the lease (a retry of the same
    /// writer finds its own lease and gets `BlobAlreadyExists`, which it accepts); any other PUT must carry the live
    /// lease's ID, if there is one. Refused writers never store a blob.
    func checkLease(
        _ leases: DataPlaneWriterLeases,
        container: String,
        name: String,
        leaseId: String?,
        store: FileBlobStore
    ) async throws {
        guard name == BufferBlobNames.start, let leaseId else {
            if name == BufferBlobNames.end, let leaseId, try await leases.ended(container, by: leaseId) { return }
            try await leases.verify(container, leaseId: leaseId)
            return
        }
        guard try store.openBlob(name) != nil else {
            try await leases.acquire(container, leaseId: leaseId)
            return
        }
        switch try await leases.liveLeaseId(container) {
        case leaseId: return  // our own retry: the upload answers BlobAlreadyExists
        case nil: throw APIError.bufferAlreadyWritten
        default: throw APIError.leaseAlreadyPresent
        }
    }

    /// `PUT …/.bufferstart?comp=lease`: `x-tyger-lease-action: renew` extends the lease `x-tyger-lease-id`,
    /// `release` lets go of it (without `.bufferend` the buffer is then abandoned), `resume` takes the lease of an
    /// abandoned write to continue it.
    func leaseAction(
        _ request: Request,
        _ context: AppRequestContext,
        container: String,
        leases: DataPlaneWriterLeases
    ) async throws -> Response {
        guard let leaseId = request.headers[.xTygerLeaseID], !leaseId.isEmpty else {
            throw APIError.invalidHeaderValue("x-tyger-lease-id", "a lease ID is required")
        }
        switch request.headers[.xTygerLeaseAction] {
        case "renew": try await leases.renew(container, leaseId: leaseId)
        case "release": try await leases.end(container, leaseId: leaseId, state: .abandoned)
        case "resume": try await leases.resume(container, leaseId: leaseId)
        default: throw APIError.invalidHeaderValue("x-tyger-lease-action", "expected renew, release or resume")
        }
        return Response(status: .ok, headers: [.contentLength: "0", .xMsRequestID: context.requestID])
    }

    /// A base64 MD5 header, checked to be 16 bytes.
    static func md5Header(_ headers: HTTPFields, _ name: HTTPField.Name) throws -> String? {
        guard let value = headers[name] else { return nil }
        guard let bytes = Base64.decode(value), bytes.count == 16 else {
            throw APIError.invalidMd5(header: name.rawName)
        }
        return value
    }

    /// The `x-ms-meta-*` headers: keys lowercased, without the prefix, C#-identifier-like as Azure requires.
    static func metadata(from headers: HTTPFields) throws -> [String: String] {
        var properties: [String: String] = [:]
        for field in headers {
            let lower = field.name.canonicalName
            guard lower.hasPrefix("x-ms-meta-") else { continue }
            let key = String(lower.dropFirst("x-ms-meta-".count))
            let validKey =
                !key.isEmpty
                && key.utf8.enumerated().allSatisfy { i, c in
                    (c >= 0x61 && c <= 0x7A) || c == 0x5F || (i > 0 && c >= 0x30 && c <= 0x39)
                }
            guard validKey else { throw APIError.invalidMetadata("'\(key)' is not a valid metadata name") }
            guard properties[key] == nil else { throw APIError.invalidMetadata("'\(key)' is given more than once") }
            properties[key] = field.value
        }
        return properties
    }

    static func eTag(_ blob: BlobFile) -> String {
        "\"0x\(String(UInt64(bitPattern: blob.modifiedNanoseconds), radix: 16, uppercase: true))"
            + "\(String(blob.length, radix: 16, uppercase: true))\""
    }

    /// Whether an `If-Match`/`If-None-Match` value matches an ETag (`*` matches any).
    static func matches(_ condition: String, _ eTag: String) -> Bool {
        condition.split(separator: ",").contains { part in
            var candidate = part.trimmingPrefix(while: { $0 == " " })
            while candidate.last == " " { candidate = candidate.dropLast() }
            if candidate.hasPrefix("W/") { candidate = candidate.dropFirst(2) }
            return candidate == "*" || candidate == eTag
        }
    }

    // MARK: Get Blob, Get Blob Properties

    /// The longest long poll of a GET (`x-tyger-wait-ms`).
    static let maxBlobWaitMs = 10_000

    /// Serves a blob or a range of it (GET), or only its properties (HEAD). With `x-tyger-wait-ms`, a GET of a blob
    /// not there yet is a long poll: a reader of a buffer still being written learns of the blob as it is stored.
    func getBlob(_ request: Request, _ context: AppRequestContext, includeBody: Bool) async throws -> Response {
        let (path, _) = try authorize(request, context, permission: .readBlob, blob: true)
        let name = path.blobName!  // authorize(blob: true) guarantees a blob name
        let store = buffers.store(for: path.containerId)
        var opened = try store.openBlob(name)
        var waited: Int?
        if opened == nil, let text = request.headers[.xTygerWaitMs], let asked = Int(text), asked > 0 {
            let start = ContinuousClock.now
            if try await store.waitForBlob(name, upTo: .milliseconds(min(asked, Self.maxBlobWaitMs))) {
                opened = try store.openBlob(name)
            }
            waited = Int((ContinuousClock.now - start) / .milliseconds(1))
        }
        guard let blob = opened else {
            // Tell a waiting reader where the write stands, so it stops waiting on a writer that is gone.
            var error = APIError.blobNotFound
            if let state = try await leases?.state(path.containerId) {
                error.headers[.xTygerBufferState] = state.rawValue
            }
            if let waited { error.headers[.xTygerWaited] = String(waited) }
            throw error
        }
        let eTag = Self.eTag(blob)
        let headers = request.headers
        if let condition = headers[.ifMatch], !Self.matches(condition, eTag) { throw APIError.conditionNotMet }
        if let condition = headers[.ifNoneMatch], Self.matches(condition, eTag) {
            return Response(status: .notModified, headers: [.eTag: eTag])
        }

        var selected: ClosedRange<Int>?
        if includeBody, let value = headers[.xMsRange] ?? headers[.range] {
            guard let range = ByteRange.parse(value) else {
                throw APIError.invalidHeaderValue(
                    headers[.xMsRange] != nil ? "x-ms-range" : "Range",
                    "expected bytes=START-[END]"
                )
            }
            guard let positions = range.resolve(length: blob.length) else {
                throw APIError.invalidRange(blobLength: blob.length)
            }
            selected = positions
        }
        let wantsRangeMD5 = headers[.xMsRangeGetContentMD5]?.lowercased() == "true"
        if wantsRangeMD5 {
            guard let selected, selected.count <= Self.maxRangeMD5 else {
                throw APIError(
                    .badRequest,
                    code: "OutOfRangeInput",
                    message: "x-ms-range-get-content-md5 needs a range of at most \(Self.maxRangeMD5) bytes."
                )
            }
        }

        var fields = HTTPFields()
        let modified = HTTPDate.format(blob.modifiedNanoseconds / 1_000_000_000)
        fields[.contentType] = "application/octet-stream"
        fields[.eTag] = eTag
        fields[.lastModified] = modified
        fields[.xMsCreationTime] = modified
        fields[.acceptRanges] = "bytes"
        fields[.xMsBlobType] = "BlockBlob"
        fields[.xMsRequestID] = context.requestID
        for (key, value) in blob.metadata.properties.sorted(by: { $0.key < $1.key }) {
            if let fieldName = HTTPField.Name("x-ms-meta-" + key) { fields[fieldName] = value }
        }
        let offset = selected?.lowerBound ?? 0
        let count = selected?.count ?? blob.length
        fields[.contentLength] = String(count)
        if let selected {
            fields[.contentRange] = "bytes \(selected.lowerBound)-\(selected.upperBound)/\(blob.length)"
            if let md5 = blob.metadata.contentMD5 { fields[.xMsBlobContentMD5] = md5 }
        } else if let md5 = blob.metadata.contentMD5 {
            fields[.contentMD5] = md5
        }
        let status: HTTPResponse.Status = selected == nil ? .ok : .partialContent
        guard includeBody else { return Response(status: status, headers: fields) }
        blob.willRead(offset: offset, count: count)

        if count <= Self.chunkSize || wantsRangeMD5 {
            let buffer = try Self.read(blob, offset: offset, count: count)
            if wantsRangeMD5 {
                fields[.contentMD5] = buffer.withUnsafeReadableBytes { Checksums.md5Base64($0) }
            }
            return Response(status: status, headers: fields, body: .init(byteBuffer: buffer))
        }
        let body = ResponseBody(contentLength: count) { writer in
            var position = offset
            let end = offset + count
            while position < end {
                let n = min(Self.chunkSize, end - position)
                try await writer.write(try Self.read(blob, offset: position, count: n))
                position += n
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: fields, body: body)
    }

    static func read(_ blob: BlobFile, offset: Int, count: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        guard count > 0 else { return buffer }
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { target in
            try blob.read(into: UnsafeMutableRawBufferPointer(rebasing: target[0..<count]), at: offset)
            return count
        }
        return buffer
    }
}
