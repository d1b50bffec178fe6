#!/usr/bin/env python3
"""Drives tyger-server's data plane with the real azure-storage-blob client.

Run by TygerServerTests/AzureClientEndToEndTests.swift, which starts `tyger-server run` on a loopback TCP port,
issues signed URLs and writes a buffer with `tyger buffer write`. Every check raises on failure; the last line
printed is "azure e2e: N checks passed" when all pass.

Usage: azure_e2e.py CONFIG.json   (keys: see main())
"""
import base64
import hashlib
import json
import random
import sys

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

checks = 0


def check(condition, what):
    global checks
    if not condition:
        raise AssertionError(what)
    checks += 1


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def client(url):
    # retry_total=0: a failure must show at once, not after the SDK's exponential back-off.
    return ContainerClient.from_container_url(url, retry_total=0)


def blob_paths():
    """Upstream's MakeBlobPath for small buffers: 00/000 ... 00/FFF, then 01/000 ..."""
    n = 0
    while True:
        file = n & 0xFFF
        m = n >> 12
        root = m.bit_length()
        path = "%02X" % root
        if root > 1:
            m &= ~(1 << (root - 1))
            sub = (root - 2) // 8 + 1
            for i in range(sub - 1, -1, -1):
                path += "/%02X" % ((m >> (i * 8)) & 0xFF)
        yield path + "/%03X" % file
        n += 1


def read_buffer(container, verify_upstream_chain):
    """Reads a Tyger buffer through the Azure client: .bufferstart, data blobs up to the empty one, .bufferend."""
    start = json.loads(container.download_blob(".bufferstart").readall())
    chain = "MDAwMDAwMDAwMDAwMDAwMA=="
    data = bytearray()
    for path in blob_paths():
        downloader = container.download_blob(path)
        blob = downloader.readall()
        props = downloader.properties
        if len(blob) == 0:
            # After the 416 on the empty blob's ranged GET, the SDK retries without a range and does not carry that
            # response's Content-MD5 into the download's properties: ask with HEAD.
            props = container.get_blob_client(path).get_blob_properties()
        md5 = props.content_settings.content_md5
        if verify_upstream_chain:
            check(md5 is not None and base64.b64encode(bytes(md5)).decode() == md5_b64(blob), "Content-MD5 of " + path)
            link = props.metadata.get("cumulative_hash_chain")
            check(link is not None, "hash chain metadata on " + path)
            if len(blob) > 0:
                chain = base64.b64encode(hashlib.sha256((chain + md5_b64(blob)).encode()).digest()).decode()
                check(link == chain, "hash chain of " + path)
        else:
            check("crc32c" in props.metadata, "crc32c metadata on " + path)
        if len(blob) == 0:
            break
        data += blob
    end = json.loads(container.download_blob(".bufferend").readall())
    return start, bytes(data), end


def main():
    config = json.load(open(sys.argv[1]))
    # config: createURL (sp=C), writeURL (sp=cr), readURL (sp=r) for one new container;
    # otherURL: a write URL for another container; upstreamBufferURL/nativeBufferURL: read URLs of buffers written by
    # `tyger buffer write`, with upstreamSha256/nativeSha256 of their input; pyBufferURL: a write URL for a buffer
    # this script writes in the upstream format (the Swift test then reads it with `tyger buffer read`).

    # Create the container with a container-level signed URL (PUT ?restype=container).
    client(config["createURL"]).create_container()
    try:
        client(config["createURL"]).create_container()
        check(False, "second create_container must fail")
    except ResourceExistsError as e:
        check(e.error_code == "ContainerAlreadyExists", "ContainerAlreadyExists, got %s" % e.error_code)

    writer = client(config["writeURL"])
    reader = client(config["readURL"])

    # Upload with metadata and a stored Content-MD5 (x-ms-blob-content-md5), overwrite=False (If-None-Match: *).
    payload = bytes((i * 7 + 3) % 251 for i in range(100_000))
    md5 = hashlib.md5(payload).digest()
    writer.upload_blob(
        "00/000", payload, overwrite=False, metadata={"cumulative_md5_chain": "abc", "Encoding": "none"},
        content_settings=ContentSettings(content_md5=bytearray(md5)))
    props = reader.get_blob_client("00/000").get_blob_properties()
    check(props.size == len(payload), "size %d" % props.size)
    check(bytes(props.content_settings.content_md5) == md5, "stored MD5 round-trips")
    check(props.metadata == {"cumulative_md5_chain": "abc", "encoding": "none"}, "metadata %r" % props.metadata)
    check(props.etag is not None and props.last_modified is not None, "ETag and Last-Modified")
    check(props.blob_type == "BlockBlob", "blob type %r" % props.blob_type)

    # Whole download (the client asks for a 32 MiB range first and needs 206 + Content-Range).
    downloaded = reader.download_blob("00/000")
    check(downloaded.readall() == payload, "whole download")
    check(downloaded.properties.metadata["cumulative_md5_chain"] == "abc", "metadata on download")
    # Ranged download.
    check(reader.download_blob("00/000", offset=1000, length=500).readall() == payload[1000:1500], "ranged download")
    check(reader.download_blob("00/000", offset=99_990).readall() == payload[99_990:], "open-ended range")
    # Ranged download with a per-range MD5 (x-ms-range-get-content-md5).
    check(reader.download_blob("00/000", validate_content=True).readall() == payload, "validate_content download")

    # Write-once: a second upload of the same name fails with BlobAlreadyExists.
    try:
        writer.upload_blob("00/000", b"other", overwrite=False)
        check(False, "second upload must fail")
    except ResourceExistsError as e:
        check(e.error_code == "BlobAlreadyExists", "BlobAlreadyExists, got %s" % e.error_code)
    try:
        writer.upload_blob("00/000", b"other", overwrite=True)
        check(False, "overwrite=True must fail too")
    except ResourceExistsError as e:
        check(e.error_code == "BlobAlreadyExists", "BlobAlreadyExists on overwrite=True")
    check(reader.download_blob("00/000").readall() == payload, "first blob untouched")

    # Transactional Content-MD5 (validate_content=True on upload).
    writer.upload_blob("00/001", b"hello tyger", validate_content=True)
    check(reader.download_blob("00/001").readall() == b"hello tyger", "validate_content upload")

    # A wrong stored MD5 is refused.
    try:
        writer.upload_blob("00/002", b"abc", content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(b"xyz").digest())))
        check(False, "MD5 mismatch must fail")
    except HttpResponseError as e:
        check(e.status_code == 400 and e.error_code == "Md5Mismatch", "Md5Mismatch, got %s %s" % (e.status_code, e.error_code))
    check(not reader.get_blob_client("00/002").exists(), "refused blob not stored")

    # Empty blob: upload, properties, download (416 on the ranged GET, then a plain GET).
    writer.upload_blob("00/003", b"")
    check(reader.get_blob_client("00/003").get_blob_properties().size == 0, "empty blob size")
    check(reader.download_blob("00/003").readall() == b"", "empty download")

    # A 5 MiB blob: streamed in and out in chunks.
    big = bytes(range(256)) * (5 * 4096)
    writer.upload_blob("00/004", big)
    check(reader.download_blob("00/004").readall() == big, "5 MiB round trip")
    check(reader.download_blob("00/004", offset=4_000_000, length=1_500_000).readall() == big[4_000_000:5_500_000], "5 MiB range")

    # Block uploads (Put Block + Put Block List). Over the SDK's default max_single_put_size (64 MiB) the client
    # stages 4 MiB blocks and commits them; nothing here changes its defaults.
    rng = random.Random(1234)
    large = rng.randbytes(70 * 1024 * 1024)
    check(writer._config.max_single_put_size == 64 * 1024 * 1024, "the SDK's default single-put limit")
    writer.upload_blob("00/010", large, metadata={"cumulative_hash_chain": "big"}, max_concurrency=4)
    downloader = reader.download_blob("00/010", max_concurrency=4)
    check(downloader.readall() == large, "70 MiB block upload round trip")
    check(downloader.properties.size == len(large), "70 MiB size")
    check(downloader.properties.metadata == {"cumulative_hash_chain": "big"}, "metadata of a block upload")
    del large, downloader

    # Small blocks (max_single_put_size and max_block_size lowered), each with its Content-MD5
    # (validate_content=True), and the blob's MD5 given with the commit (x-ms-blob-content-md5).
    small_blocks = ContainerClient.from_container_url(
        config["writeURL"], retry_total=0, max_single_put_size=1024 * 1024, max_block_size=512 * 1024)
    mid = rng.randbytes(5 * 1024 * 1024 + 12345)
    small_blocks.upload_blob("00/011", mid, validate_content=True, metadata={"encoding": "none"},
                             content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(mid).digest())))
    props = reader.get_blob_client("00/011").get_blob_properties()
    check(bytes(props.content_settings.content_md5) == hashlib.md5(mid).digest(), "MD5 of a block upload")
    check(props.metadata == {"encoding": "none"}, "metadata of a small-block upload")
    check(reader.download_blob("00/011").readall() == mid, "small-block upload round trip")
    # A wrong blob MD5 with the commit is refused, and nothing is stored.
    try:
        small_blocks.upload_blob("00/012", mid, content_settings=ContentSettings(content_md5=bytearray(16)))
        check(False, "a block upload with a wrong MD5 must fail")
    except HttpResponseError as e:
        check(e.status_code == 400 and e.error_code == "Md5Mismatch", "Md5Mismatch on commit, got %s" % e.error_code)
    check(not reader.get_blob_client("00/012").exists(), "refused block upload not stored")

    # Stage and commit by hand: a second commit over the committed blob is refused (write-once), as is a block
    # upload over it; a list naming a block that was never staged is a 400; a block over the server's limit a 413.
    blob = writer.get_blob_client("00/013")
    ids = [base64.b64encode(b"block-%03d" % i).decode() for i in range(3)]
    for i, block_id in enumerate(ids):
        blob.stage_block(block_id, bytes([i]) * 1000)
    blob.commit_block_list([BlobBlock(block_id) for block_id in ids])
    check(reader.download_blob("00/013").readall() == b"".join(bytes([i]) * 1000 for i in range(3)), "manual blocks")
    try:
        blob.commit_block_list([BlobBlock(block_id) for block_id in ids])
        check(False, "a second commit must fail")
    except ResourceExistsError as e:
        check(e.error_code == "BlobAlreadyExists", "BlobAlreadyExists on a second commit, got %s" % e.error_code)
    try:
        small_blocks.upload_blob("00/013", mid, overwrite=True)
        check(False, "a block upload over a committed blob must fail")
    except ResourceExistsError as e:
        check(e.error_code == "BlobAlreadyExists", "BlobAlreadyExists on a block upload, got %s" % e.error_code)
    unknown = writer.get_blob_client("00/014")
    unknown.stage_block(ids[0], b"x")
    try:
        unknown.commit_block_list([BlobBlock(ids[0]), BlobBlock(base64.b64encode(b"never-sta").decode())])
        check(False, "an unknown block must fail")
    except HttpResponseError as e:
        check(e.status_code == 400 and e.error_code == "InvalidBlockList", "InvalidBlockList, got %s" % e.error_code)
    check(not reader.get_blob_client("00/014").exists(), "refused block list not stored")
    try:
        unknown.stage_block(ids[1], bytes(100 * 1024 * 1024 + 1))
        check(False, "a block over 100 MiB must fail")
    except HttpResponseError as e:
        check(e.status_code == 413 and e.error_code == "RequestBodyTooLarge", "413, got %s %s" % (e.status_code, e.error_code))

    # Missing blob.
    try:
        reader.download_blob("00/FFF").readall()
        check(False, "missing blob must fail")
    except ResourceNotFoundError as e:
        check(e.error_code == "BlobNotFound", "BlobNotFound, got %s" % e.error_code)

    # A read URL cannot write.
    try:
        reader.upload_blob("00/005", b"x")
        check(False, "read URL must not write")
    except HttpResponseError as e:
        check(e.status_code == 403 and e.error_code == "AuthorizationPermissionMismatch", "permission mismatch, got %s" % e.error_code)

    # A URL for another container does not open this one (the signature covers the container ID).
    other = config["otherURL"]
    forged = other.replace("/containers/" + config["otherId"] + "?", "/containers/" + config["containerId"] + "?")
    try:
        client(forged).upload_blob("00/006", b"x")
        check(False, "URL of another container must fail")
    except HttpResponseError as e:
        check(e.status_code == 403 and e.error_code == "AuthenticationFailed", "AuthenticationFailed, got %s" % e.error_code)

    # Buffers written by `tyger buffer write`, read through the Azure client.
    start, data, end = read_buffer(client(config["upstreamBufferURL"]), verify_upstream_chain=True)
    check(start == {"version": "0.3.0"}, "upstream .bufferstart %r" % start)
    check(hashlib.sha256(data).hexdigest() == config["upstreamSha256"], "upstream buffer content")
    check(end == {"status": "complete"}, "upstream .bufferend")
    start, data, end = read_buffer(client(config["nativeBufferURL"]), verify_upstream_chain=False)
    check(start["version"] == "native-1", "native .bufferstart %r" % start)
    check(hashlib.sha256(data).hexdigest() == config["nativeSha256"], "native buffer content")

    # A buffer written by the Azure client in the upstream format, for `tyger buffer read` to check.
    out = client(config["pyBufferURL"])
    out.upload_blob(".bufferstart", b'{"version":"0.3.0"}', content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(b'{"version":"0.3.0"}').digest())))
    chain = "MDAwMDAwMDAwMDAwMDAwMA=="
    paths = blob_paths()
    blocks = [bytes([65 + i]) * (3000 + i) for i in range(5)] + [b""]
    for block in blocks:
        m = md5_b64(block)
        # As upstream's writer: the empty end marker's chain link uses the MD5 of nothing.
        chain = base64.b64encode(hashlib.sha256((chain + m).encode()).digest()).decode()
        out.upload_blob(next(paths), block, metadata={"cumulative_hash_chain": chain},
                        content_settings=ContentSettings(content_md5=bytearray(base64.b64decode(m))))
    out.upload_blob(".bufferend", b'{"status":"complete"}')
    print("pyBufferSha256=" + hashlib.sha256(b"".join(blocks)).hexdigest())

    print("azure e2e: %d checks passed" % checks)


if __name__ == "__main__":
    main()
