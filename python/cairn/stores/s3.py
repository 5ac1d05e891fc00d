"""Blobs in an S3-compatible bucket, one object per blob, holding exactly the
bytes of the blob's file in a local store (objects/ab/cdef... under the
prefix), so the two are interchangeable byte for byte. Writes are write-once:
PUT with If-None-Match: *, after a HEAD for blobs above HEAD_MIN (a server
without conditional writes gets a HEAD and a plain PUT; the content is
addressed by its digest, so a racing writer can only write the same bytes).

Transfers are tuned by measurement (docs/performance.md, "The Ray backend"):
a blob goes up in one streamed PUT, from the caller's buffers, the cache
file written from each piece as it goes (CachedStore.put), and comes down in
one GET per part (256 MB by default) streamed into the cache file, the first
answer saying the size (no HEAD); a small blob's PUT needs no HEAD either
(If-None-Match answers it).
A PUT is sent with an unsigned payload and a CRC32 header that cairn
computes itself: botocore would otherwise read the whole body once more
before sending it, to sign its SHA-256 (over http, or over https without a
checksum header), and its own CRC32 streams the body in chunks with a
trailer, which cost as much as the transfer. The server still checks every
byte against the CRC32, and a reader checks them against the digest."""

from __future__ import annotations

import base64
import io
import os
import zlib
from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Any

from .config import S3Config, S3ConfigError

# Above this a blob goes up in parts (boto3's managed transfer); below, one
# streamed PUT, the faster path on every server measured.
SINGLE_PUT_MAX = 256 * 1024 * 1024
# Up to this size a blob's PUT goes without a HEAD first: If-None-Match: *
# answers whether the bucket has it in the same round trip, and resending
# so few bytes costs less than a HEAD. Above, the HEAD saves resending them.
HEAD_MIN = 1024 * 1024
# Downloads: ranges of part bytes (CAIRN_S3_PART_MB, default GET_PART_MB),
# GET_CONCURRENCY at once, each streamed into its place in the file in
# GET_READ pieces. On the local test server one GET per blob is fastest (each
# ranged GET costs it the whole object: 100 MB took 0.15 s in one GET, 0.28 s
# in 64 MB ranges, 0.65 s in 16 MB ranges); on AWS, where one connection tops
# out near 100 MB/s, 16 MB ranges are faster.
PART_VAR = "CAIRN_S3_PART_MB"
GET_PART_MB = 256
GET_CONCURRENCY = 4
GET_READ = 1024 * 1024


def part_size() -> int:
    value = os.environ.get(PART_VAR, "")
    if not value:
        return GET_PART_MB << 20
    if not value.isdigit() or not 5 <= int(value) <= 5120:
        raise S3ConfigError(f"{PART_VAR}={value!r}: expected a whole number of MB from 5 to 5120")
    return int(value) << 20


def _transfer_config() -> Any:
    import boto3.s3.transfer

    return boto3.s3.transfer.TransferConfig(multipart_threshold=SINGLE_PUT_MAX,
                                            multipart_chunksize=part_size(), max_concurrency=GET_CONCURRENCY)


def _boto3() -> Any:
    try:
        import boto3
        import botocore.config
    except ImportError:
        raise S3ConfigError(
            "the S3 datastore needs boto3: pip install 'cairn[s3]'") from None
    return boto3, botocore.config


def client_config(botocore_config: Any, **kw: Any) -> Any:
    """botocore's Config for blob transfers: retries, a connection per
    transfer thread, unsigned payloads (_put_once sends its own CRC32), and no
    CRC32 of bodies where botocore can skip it (botocore < 1.36 has no such
    option and computes none)."""
    base = {"retries": {"max_attempts": 5, "mode": "standard"}, "max_pool_connections": 16,
            "s3": {"payload_signing_enabled": False}, **kw}
    try:
        return botocore_config.Config(request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required", **base)
    except TypeError:
        return botocore_config.Config(**base)


class S3Blobs:
    """The remote half of a CachedStore. Safe across fork (a child makes its
    own client) and across threads: they share one client, as boto3's
    clients allow, so a thread that serves one task's request (a blob proxy)
    does not make one of its own (5-13 ms each, 95 ms the first)."""

    single_put_max = SINGLE_PUT_MAX

    def __init__(self, config: S3Config):
        import threading  # here, not at import: its at-fork hook costs each forked task
        self.config = config
        self._client: Any = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._session: Any = None  # shared across fork: it holds no connections, only loaded models
        self._conditional = True   # until the server says it lacks If-None-Match
        self.uploaded = 0          # PUTs that wrote an object (for tests and figures)
        self.heads = 0             # HEADs sent (for tests)

    # --- client --------------------------------------------------------------
    def client(self) -> Any:
        if self._pid != os.getpid():  # forked: never share the parent's connections
            import threading  # here, not at import: its at-fork hook costs each forked task

            self._client, self._lock, self._pid = None, threading.Lock(), os.getpid()
        c = self._client
        if c is None:
            with self._lock:  # a boto3 Session is not thread-safe; the client it makes is
                if self._client is None:
                    boto3, botocore_config = _boto3()
                    if self._session is None:
                        self._session = boto3.session.Session()
                    self._client = self._session.client(
                        "s3", endpoint_url=self.config.endpoint_url, config=client_config(botocore_config))
                c = self._client
        return c

    def key_of(self, digest: str) -> str:
        return self.config.key(f"objects/{digest[:2]}/{digest[2:]}")

    # --- operations ----------------------------------------------------------
    def exists(self, digest: str) -> bool:
        self.heads += 1
        try:
            self.client().head_object(Bucket=self.config.bucket, Key=self.key_of(digest))
            return True
        except Exception as e:  # noqa: BLE001 - botocore's errors are per-client classes
            if _status(e) == 404:
                return False
            raise self._error("HEAD", digest, e) from None

    def upload(self, digest: str, path: str) -> bool:
        """Puts the file at `path` as blob `digest` unless the bucket has it;
        True if this call wrote it."""
        size = os.path.getsize(path)
        if self._head_first(size) and self.exists(digest):
            return False
        if size > SINGLE_PUT_MAX:
            try:
                self.client().upload_file(path, self.config.bucket, self.key_of(digest),
                                          Config=_transfer_config())
            except Exception as e:  # noqa: BLE001
                raise self._error("PUT", digest, e) from None
            self.uploaded += 1
            return True

        def body() -> Any:
            return open(path, "rb")  # streamed by botocore, never read whole
        with open(path, "rb") as f:
            crc = 0
            while chunk := f.read(GET_READ):
                crc = zlib.crc32(chunk, crc)
        return self._put(digest, body, crc)

    def upload_views(self, digest: str, views: Sequence[memoryview],
                     tee: Callable[[int, bytes], None] | None = None) -> bool:
        """Puts blob `digest` whose file's bytes are `views` back to back
        (at most single_put_max of them) unless the bucket has it; True if
        this call wrote it. Nothing is copied into one buffer: the PUT streams
        from the views, and hands each piece it sends to `tee(offset, bytes)`."""
        if not self._head_first(sum(len(v) for v in views)):
            return self._put(digest, lambda: _ViewsBody(views, tee), _crc32(views))
        # The CRC32 (zlib lets go of the GIL) while the HEAD waits for its answer.
        import threading

        crc: list[int] = []
        summing = threading.Thread(target=lambda: crc.append(_crc32(views)), daemon=True)
        summing.start()
        try:
            there = self.exists(digest)
        finally:
            summing.join()
        if there:
            return False
        return self._put(digest, lambda: _ViewsBody(views, tee), crc[0])

    def _head_first(self, size: int) -> bool:
        """Whether to ask the bucket before sending `size` bytes; without
        conditional writes, always (a plain PUT would rewrite the object)."""
        return size > HEAD_MIN or not self._conditional

    def _put(self, digest: str, body: Callable[[], Any], crc: int) -> bool:
        """PUTs the bytes `body()` reads, whose CRC32 is `crc` (the server
        refuses the object if a byte differs)."""
        try:
            self._put_once(digest, body, base64.b64encode(crc.to_bytes(4, "big")).decode())
        except _AlreadyThere:
            return False
        except Exception as e:  # noqa: BLE001
            raise self._error("PUT", digest, e) from None
        self.uploaded += 1
        return True

    def _put_once(self, digest: str, body: Callable[[], Any], crc: str) -> None:
        args = {"Bucket": self.config.bucket, "Key": self.key_of(digest), "ChecksumCRC32": crc}
        if self._conditional:
            with closing(body()) as b:
                try:
                    self.client().put_object(IfNoneMatch="*", Body=b, **args)
                    return
                except Exception as e:  # noqa: BLE001
                    status = _status(e)
                    if status in (409, 412):  # someone wrote it first: the same bytes
                        raise _AlreadyThere from None
                    if status not in (400, 501):
                        raise
                    self._conditional = False  # the server lacks conditional writes
        with closing(body()) as b:
            self.client().put_object(Body=b, **args)

    def download(self, digest: str, dest: str) -> bool:
        """Writes the blob's bytes to `dest` (a new file); False if absent.
        The first range's answer gives the size; the other ranges come in
        parallel, each streamed to its place in the file."""
        try:
            first = self._get_range(digest, 0, part_size())
        except Exception as e:  # noqa: BLE001
            if _status(e) == 404:
                return False
            raise self._error("GET", digest, e) from None
        total = _total_size(first)
        part = part_size()
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            rest = list(range(part, total, part))
            if not rest:
                _drain(first["Body"], fd, 0)
                return True
            from concurrent.futures import ThreadPoolExecutor

            def fetch(offset: int) -> None:
                _drain(self._get_range(digest, offset, part)["Body"], fd, offset)

            with ThreadPoolExecutor(max_workers=GET_CONCURRENCY - 1) as pool:
                futures = [pool.submit(fetch, offset) for offset in rest]
                _drain(first["Body"], fd, 0)
                for f in futures:
                    f.result()
        except Exception as e:  # noqa: BLE001
            raise self._error("GET", digest, e) from None
        finally:
            os.close(fd)
        return True

    def _get_range(self, digest: str, offset: int, size: int) -> Any:
        return self.client().get_object(Bucket=self.config.bucket, Key=self.key_of(digest),
                                        Range=f"bytes={offset}-{offset + size - 1}")

    def _error(self, op: str, digest: str, e: Exception) -> S3ConfigError:
        return S3ConfigError(f"{op} of blob {digest} at {self.config.url}: {e}")


class _ViewsBody(io.RawIOBase):
    """A PUT body reading through buffers back to back, without joining them."""

    def __init__(self, views: Sequence[memoryview], tee: Callable[[int, bytes], None] | None = None):
        super().__init__()
        self._tee = tee
        self._views = [memoryview(v).cast("B") for v in views]
        self._size = sum(len(v) for v in self._views)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, min(self._size, base + offset))
        return self._pos

    def __len__(self) -> int:
        return self._size - self._pos

    def read(self, size: int | None = -1) -> bytes:
        left = self._size - self._pos if size is None or size < 0 else size
        pieces, skip = [], self._pos
        for v in self._views:
            if left <= 0:
                break
            if skip >= len(v):
                skip -= len(v)
                continue
            n = min(left, len(v) - skip)
            pieces.append(v[skip:skip + n])
            skip, left = 0, left - n
        # A copy even of one piece: handing the socket views of the caller's
        # buffer measured slower (0.86 s against 0.76 s for 100 MB).
        data = pieces[0].tobytes() if len(pieces) == 1 else b"".join(pieces)
        if self._tee is not None and data:
            self._tee(self._pos, data)
        self._pos += len(data)
        return data


def _crc32(views: Sequence[memoryview]) -> int:
    crc = 0
    for v in views:
        crc = zlib.crc32(v, crc)
    return crc


def _drain(body: Any, fd: int, offset: int) -> None:
    try:
        while True:
            chunk = body.read(GET_READ)
            if not chunk:
                return
            view = memoryview(chunk)
            while view:
                n = os.pwrite(fd, view, offset)
                view, offset = view[n:], offset + n
    finally:
        body.close()


def _total_size(response: dict[str, Any]) -> int:
    """The object's size from a ranged GET's answer: Content-Range's total,
    or the length of a whole-object answer from a server that ignores Range."""
    content_range = response.get("ContentRange") or ""
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else int(response["ContentLength"])


class _AlreadyThere(Exception):
    pass


def _status(e: Exception) -> int:
    response = getattr(e, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status is None:
        code = response.get("Error", {}).get("Code", "")
        status = {"NoSuchKey": 404, "404": 404, "NotFound": 404}.get(code, 0)
    return int(status)
