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
/// | PUT | `/containers/{id}/.bufferstart?comp=lease` | `c` | 200: renews (`x-tyger-lease-action: renew`) or releases (`release`) the writer lease `x-tyger-lease-id`; 412 `LeaseLost` |
/// | GET, HEAD | `/containers/{id}/{blob…}` | `r` | 200, or 206 for a range; 404 `BlobNotFound` (with `x-tyger-buffer-state` when a writer took a lease); 416 `InvalidRange` |
///
/// Every request needs `api-version=1.0` and a valid signed URL query for the container (see `SignedURLValidator`).
/// Writer leases (`DataPlaneWriterLeases`) are kept when the server has a buffers control plane.
public struct DataPlaneController: Sendable {
    let buffers: BufferStorage
    let validator: SignedURLValidator
    let maxBlobSize: Int
    let leases: DataPlaneWriterLeases?

    /// Blobs up to this size are read into one buffer; bigger ones are streamed in chunks of this size.
    static let chunkSize = 4 << 20
    /// Upload bytes are written to disk in batches of this size.
    static let writeBatch = 1 << 20
    /// The largest range whose MD5 `x-ms-range-get-content-md5` may ask for (as Azure).
    static let maxRangeMD5 = 4 << 20

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
    static let xTygerLeaseID = HTTPField.Name("x-tyger-lease-id")!  // valid token
    static let xTygerLeaseAction = HTTPField.Name("x-tyger-lease-action")!  // valid token
    static let xTygerBufferState = HTTPField.Name("x-tyger-buffer-state")!  // valid token
}
