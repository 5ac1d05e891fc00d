"""Blobs in an S3-compatible bucket, one object per blob, holding exactly the
bytes of the blob's file in a local store (objects/ab/cdef... under the
prefix), so the two are interchangeable byte for byte. Writes are write-once:
HEAD first, then PUT with If-None-Match: * (a server without conditional
writes gets a plain PUT; the content is addressed by its digest, so a racing
writer can only write the same bytes)."""

from __future__ import annotations

import os
from typing import Any

from .config import S3Config, S3ConfigError

# Above this a blob goes up in parts (boto3's managed transfer); below, one
# PUT, which is the faster path on every server measured (docs/ray.md).
SINGLE_PUT_MAX = 256 * 1024 * 1024
_CHUNK = 8 * 1024 * 1024
# Above this a blob is fetched in parallel ranges; below, one GET.
PARALLEL_GET_MIN = 32 * 1024 * 1024


def _transfer_config() -> Any:
    import boto3.s3.transfer

    return boto3.s3.transfer.TransferConfig(multipart_threshold=PARALLEL_GET_MIN,
                                            multipart_chunksize=16 * 1024 * 1024, max_concurrency=10)


def _boto3() -> Any:
    try:
        import boto3
        import botocore.config
    except ImportError:
        raise S3ConfigError(
            "the S3 datastore needs boto3: pip install 'cairn[s3]'") from None
    return boto3, botocore.config


class S3Blobs:
    """The remote half of a CachedStore. Safe across fork (a child makes its
    own client) and across threads (one client per thread)."""

    def __init__(self, config: S3Config):
        import threading  # here, not at import: its at-fork hook costs each forked task
        self.config = config
        self._local = threading.local()
        self._pid = os.getpid()
        self._session: Any = None  # shared across fork: it holds no connections, only loaded models
        self._conditional = True   # until the server says it lacks If-None-Match
        self.uploaded = 0          # PUTs that wrote an object (for tests and figures)

    # --- client --------------------------------------------------------------
    def client(self) -> Any:
        import threading  # here, not at import: its at-fork hook costs each forked task
        if self._pid != os.getpid():  # forked: never share the parent's connections
            self._local = threading.local()
            self._pid = os.getpid()
        c = getattr(self._local, "client", None)
        if c is None:
            boto3, botocore_config = _boto3()
            if self._session is None:
                self._session = boto3.session.Session()
            c = self._local.client = self._session.client(
                "s3", endpoint_url=self.config.endpoint_url,
                config=botocore_config.Config(retries={"max_attempts": 5, "mode": "standard"},
                                              max_pool_connections=16))
        return c

    def warm(self) -> None:
        """Loads boto3 and the S3 model before a process forks, so that each
        child makes its own client in milliseconds."""
        import threading  # here, not at import: its at-fork hook costs each forked task
        self.client()
        self._local = threading.local()  # the parent's client is not for the children

    def key_of(self, digest: str) -> str:
        return self.config.key(f"objects/{digest[:2]}/{digest[2:]}")

    # --- operations ----------------------------------------------------------
    def exists(self, digest: str) -> bool:
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
        if self.exists(digest):
            return False
        size = os.path.getsize(path)
        try:
            if size > SINGLE_PUT_MAX:
                self.client().upload_file(path, self.config.bucket, self.key_of(digest),
                                          Config=_transfer_config())
            else:
                self._put_once(digest, path)
        except _AlreadyThere:
            return False
        except Exception as e:  # noqa: BLE001
            raise self._error("PUT", digest, e) from None
        self.uploaded += 1
        return True

    def _put_once(self, digest: str, path: str) -> None:
        with open(path, "rb") as f:
            body = f.read()
        args = {"Bucket": self.config.bucket, "Key": self.key_of(digest), "Body": body}
        if self._conditional:
            try:
                self.client().put_object(IfNoneMatch="*", **args)
                return
            except Exception as e:  # noqa: BLE001
                status = _status(e)
                if status in (409, 412):  # someone wrote it first: the same bytes
                    raise _AlreadyThere from None
                if status not in (400, 501):
                    raise
                self._conditional = False  # the server lacks conditional writes
        self.client().put_object(**args)

    def download(self, digest: str, dest: str) -> bool:
        """Writes the blob's bytes to `dest` (a new file); False if absent.
        Large blobs come in parallel ranges (boto3's managed transfer)."""
        try:
            if self._size(digest) > PARALLEL_GET_MIN:
                self.client().download_file(self.config.bucket, self.key_of(digest), dest,
                                            Config=_transfer_config())
                return True
            response = self.client().get_object(Bucket=self.config.bucket, Key=self.key_of(digest))
        except Exception as e:  # noqa: BLE001
            if _status(e) == 404:
                return False
            raise self._error("GET", digest, e) from None
        body = response["Body"]
        try:
            with open(dest, "wb") as f:
                while True:
                    chunk = body.read(_CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
        finally:
            body.close()
        return True

    def _size(self, digest: str) -> int:
        head = self.client().head_object(Bucket=self.config.bucket, Key=self.key_of(digest))
        return int(head["ContentLength"])

    def _error(self, op: str, digest: str, e: Exception) -> S3ConfigError:
        return S3ConfigError(f"{op} of blob {digest} at {self.config.url}: {e}")


class _AlreadyThere(Exception):
    pass


def _status(e: Exception) -> int:
    response = getattr(e, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status is None:
        code = response.get("Error", {}).get("Code", "")
        status = {"NoSuchKey": 404, "404": 404, "NotFound": 404}.get(code, 0)
    return int(status)
