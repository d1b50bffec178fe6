import Foundation
import TygerModel

// What the CLI prints, where it differs from the wire form. Upstream's CLI re-serializes server JSON through its Go
// structs (inventory §12.14), so its field order is the structs' order and its maps are sorted by key.

/// A buffer in upstream's CLI order: `id, createdAt, location, tags, eTag, expiresAt`, then `isSoftDeleted` when
/// true (upstream drops it; we keep it, last). Tags sorted by key.
struct BufferOutput: Encodable {
    var buffer: Buffer

    init(_ buffer: Buffer) { self.buffer = buffer }

    enum CodingKeys: String, CodingKey { case id, createdAt, location, tags, eTag, expiresAt, isSoftDeleted }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(buffer.id, forKey: .id)
        try c.encodeIfPresent(buffer.createdAt, forKey: .createdAt)
        try c.encodeIfPresent(buffer.location, forKey: .location)
        if let tags = buffer.tags, !tags.isEmpty { try c.encode(tags, forKey: .tags) }
        try c.encodeIfPresent(buffer.eTag, forKey: .eTag)
        try c.encodeIfPresent(buffer.expiresAt, forKey: .expiresAt)
        if buffer.isSoftDeleted { try c.encode(true, forKey: .isSoftDeleted) }
    }
}

/// The fields `run watch` prints by default (upstream's): `id, status, statusReason, runningCount, createdAt,
/// startedAt, finishedAt, tags`.
struct RunStatusOutput: Encodable {
    var run: Run

    init(_ run: Run) { self.run = run }

    enum CodingKeys: String, CodingKey {
        case id, status, statusReason, runningCount, createdAt, startedAt, finishedAt, tags
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(run.id, forKey: .id)
        try c.encodeIfPresent(run.status, forKey: .status)
        try c.encodeIfPresent(run.statusReason, forKey: .statusReason)
        try c.encodeIfPresent(run.runningCount, forKey: .runningCount)
        try c.encodeIfPresent(run.createdAt, forKey: .createdAt)
        try c.encodeIfPresent(run.startedAt, forKey: .startedAt)
        try c.encodeIfPresent(run.finishedAt, forKey: .finishedAt)
        if let tags = run.tags, !tags.isEmpty { try c.encode(tags, forKey: .tags) }
    }
}

/// `tyger api status`: the server this CLI uses and its metadata.
struct APIStatusOutput: Encodable {
    var controlPlaneEndpoint: String
    var mode: String
    var healthy: Bool
    var home: String?
    var dataDirectory: String?
    var pid: Int32?
    var cliVersion: String
    var metadata: ServiceMetadata
}
