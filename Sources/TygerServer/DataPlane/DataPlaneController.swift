import HTTPTypes
public import Hummingbird
import Logging
public import TygerControlPlane
import TygerModel
import TygerStorage

/// The data plane: the subset of the Azure Blob REST protocol that buffers use, over a `BufferStorage`.
///
/// | Method | Path | Permission | Answer |
/// |---|---|---|---|
/// | PUT | `/containers/{id}` | `C` | 201; 409 `ContainerAlreadyExists` |
/// | HEAD | `/containers/{id}` | `R` | 200; 404 `ContainerNotFound` |
/// | DELETE | `/containers/{id}` | `D` | 202; 404 `ContainerNotFound` |
/// | PUT | `/containers/{id}/{blob…}` | `c` | 201 (streamed, MD5/CRC32C verified, write-once: 409 `BlobAlreadyExists`) |
/// | PUT | `/containers/{id}/{blob…}?comp=block&blockid={base64}` | `c` | 201: stages a block (≤ ``maxBlockSize``, `Content-MD5` verified); 400 `InvalidQueryParameterValue` (ID not base64 of 1-64 bytes), 400 `InvalidBlobOrBlock` (ID length differs from the blob's other blocks), 409 `BlobAlreadyExists`, 413 `RequestBodyTooLarge` |
/// | PUT | `/containers/{id}/{blob…}?comp=blocklist` | `c` | 201: assembles the staged blocks of the XML `<BlockList>` into the blob, as Put Blob stores one (same metadata headers, checks, write-once commit); 400 `InvalidBlockList` (a block not staged), 400 `BlockListTooLong` (> ``maxBlocksPerBlob``), 400 `InvalidXmlDocument`, 409 `BlobAlreadyExists`, 413 (body > ``maxBlockListBodySize``, or blocks > the blob limit) |
/// | PUT | `/containers/{id}/.bufferstart?comp=lease` | `c` | 200: renews (`x-tyger-lease-action: renew`) or releases (`release`) the writer lease `x-tyger-lease-id`, or takes the lease of an abandoned write to continue it (`resume`; 409 `LeaseAlreadyPresent`, `BufferAlreadyWritten`); 412 `LeaseLost` |
/// | GET, HEAD | `/containers/{id}/{blob…}` | `r` | 200, or 206 for a range; 404 `BlobNotFound` (with `x-tyger-buffer-state` when a writer took a lease); 416 `InvalidRange` |
///
/// Every request needs `api-version=1.0` and a valid signed URL query for the container (see `SignedURLValidator`).
/// Writer leases (`DataPlaneWriterLeases`) are kept when the server has a buffers control plane; Put Blob, Put Block
/// and Put Block List are held to the same writer rules (`admitWrite`). Staged blocks that are never committed go
/// with the buffer's directory, or at the next server start (`FileBlobStore.removeStaleTemporaryFiles`).
public struct DataPlaneController: Sendable {
    let buffers: BufferStorage
    let validator: SignedURLValidator
    let maxBlobSize: Int
    let leases: DataPlaneWriterLeases?

    /// Blobs up to this size are read into one buffer; bigger ones are streamed in chunks of this size.
    static let chunkSize = 4 << 20
    /// The largest range whose MD5 `x-ms-range-get-content-md5` may ask for (as Azure).
    static let maxRangeMD5 = 4 << 20
    /// The largest block one Put Block may stage: 100 MiB (Azure allows 4000 MiB; the Azure SDKs send 4 MiB
    /// blocks, and `tyger buffer write` at most 256 MiB blobs), or the blob limit if that is smaller.
    static let blockSizeLimit = 100 << 20
    /// The most blocks one block list may name (as Azure).
    static let maxBlocksPerBlob = 50_000
    /// The largest Put Block List body: 50,000 entries of the longest ID (`<Uncommitted>` + 88 base64 characters
    /// + `</Uncommitted>`, 115 bytes) are 5.75 MB.
    static let maxBlockListBodySize = 8 << 20

    /// The largest block one Put Block may stage here.
    var maxBlockSize: Int { min(Self.blockSizeLimit, maxBlobSize) }

    /// A data plane over `buffers`.
    ///
    /// - Parameters:
    ///   - buffers: Where the buffers are.
    ///   - validator: Checks the signed URLs.
    ///   - maxBlobSize: The largest blob a PUT may upload.
    ///   - writerLeases: The control plane that keeps writer leases; `nil` ignores lease IDs (upstream's behaviour).
    public init(
        buffers: BufferStorage,
        validator: SignedURLValidator,
        maxBlobSize: Int,
        writerLeases: BufferManager? = nil
    ) {
        self.buffers = buffers
        self.validator = validator
        self.maxBlobSize = maxBlobSize
        self.leases = writerLeases.map { DataPlaneWriterLeases(manager: $0, buffers: buffers) }
    }

    /// Adds the data-plane routes.
    public func addRoutes(to router: Router<AppRequestContext>) {
        router.put("/containers/{containerId}") { request, context in try self.createContainer(request, context) }
        router.head("/containers/{containerId}") { request, context in try self.containerProperties(request, context) }
        router.delete("/containers/{containerId}") { request, context in try self.deleteContainer(request, context) }
        router.put("/containers/{containerId}/**") { request, context in try await self.putBlob(request, context) }
        router.get("/containers/{containerId}/**") { request, context in
            try await self.getBlob(request, context, includeBody: true)
        }
        router.head("/containers/{containerId}/**") { request, context in
            try await self.getBlob(request, context, includeBody: false)
        }
    }

    // MARK: Authorization

    /// Checks the API version, parses the path and validates the signed URL for `permission`.
    ///
    /// `api-version=1.0` comes with the signed URL's query. Azure Storage SDKs keep only the SAS parameters they
    /// know (`sv`, `sp`, `st`, `se`, `sig`, ...) and drop `api-version`, but they always send `x-ms-version`: a
    /// request with that header and no `api-version` is taken as version 1.0. An explicit other version is refused.
    func authorize(
        _ request: Request,
        _ context: AppRequestContext,
        permission: SignedURLPermission,
        blob: Bool
    ) throws -> (DataPlanePath, [String: String]) {
        let query = try QueryParameters(request.uri.query).signedURLParameters()
        if let version = query["api-version"], !version.isEmpty {
            guard version == APIVersion.v1_0 else { throw APIError.unsupportedApiVersion }
        } else if request.headers[.xMsVersion] == nil {
            throw APIError.apiVersionUnspecified
        }
        let path = try DataPlanePath.parse(request.uri.path)
        guard (path.blobName != nil) == blob else { throw APIError.invalidRoute }
        _ = try validator.validate(query: query, containerId: path.containerId, required: permission)
        context.caller = .signedURL(containerId: path.containerId)
        return (path, query)
    }

    // MARK: Containers

    func createContainer(_ request: Request, _ context: AppRequestContext) throws -> Response {
        let (path, _) = try authorize(request, context, permission: .createContainer, blob: false)
        try buffers.create(path.containerId)
        context.logger.debug("container created", metadata: ["buffer.id": "\(path.containerId)"])
        var headers = HTTPFields()
        headers[.lastModified] = HTTPDate.format(WallClock.system.seconds())
        headers[.contentLength] = "0"
        return Response(status: .created, headers: headers)
    }

    func containerProperties(_ request: Request, _ context: AppRequestContext) throws -> Response {
        let (path, _) = try authorize(request, context, permission: .readContainer, blob: false)
        guard buffers.exists(path.containerId) else { throw APIError.containerNotFound }
        return Response(status: .ok, headers: [.contentLength: "0"])
    }

    func deleteContainer(_ request: Request, _ context: AppRequestContext) throws -> Response {
        let (path, _) = try authorize(request, context, permission: .deleteContainer, blob: false)
        try buffers.delete(path.containerId)
        context.logger.debug("container deleted", metadata: ["buffer.id": "\(path.containerId)"])
        return Response(status: .accepted, headers: [.contentLength: "0"])
    }
}

extension HTTPField.Name {
    static let xMsRange = HTTPField.Name("x-ms-range")!  // valid token
    static let xMsVersion = HTTPField.Name("x-ms-version")!  // valid token
    static let xMsBlobType = HTTPField.Name("x-ms-blob-type")!  // valid token
    static let xMsBlobContentMD5 = HTTPField.Name("x-ms-blob-content-md5")!  // valid token
    static let xMsRangeGetContentMD5 = HTTPField.Name("x-ms-range-get-content-md5")!  // valid token
    static let contentMD5 = HTTPField.Name("Content-MD5")!  // valid token
    static let xMsCreationTime = HTTPField.Name("x-ms-creation-time")!  // valid token
    static let xMsRequestServerEncrypted = HTTPField.Name("x-ms-request-server-encrypted")!  // valid token
    static let xMsRequestID = HTTPField.Name("x-ms-request-id")!  // valid token
    static let xMsContentCRC64 = HTTPField.Name("x-ms-content-crc64")!  // valid token
    static let xMsStructuredBody = HTTPField.Name("x-ms-structured-body")!  // valid token
    static let xTygerLeaseID = HTTPField.Name("x-tyger-lease-id")!  // valid token
    static let xTygerLeaseAction = HTTPField.Name("x-tyger-lease-action")!  // valid token
    static let xTygerBufferState = HTTPField.Name("x-tyger-buffer-state")!  // valid token
    /// On a GET: wait up to this many milliseconds for a blob that is not there yet (a long poll).
    static let xTygerWaitMs = HTTPField.Name("x-tyger-wait-ms")!  // valid token
    /// On a 404 that answers `x-tyger-wait-ms`: how long the server waited.
    static let xTygerWaited = HTTPField.Name("x-tyger-waited-ms")!  // valid token
}
