"""Metaflow's S3 client as `cairn.S3`: get, put and list objects of an
S3-compatible store over boto3, keys scoped by `run=`, `s3root=` or
`bucket=`/`prefix=`, downloads in a temporary directory removed on close.
Design and differences: docs/s3.md.

boto3 is imported when the first request is made, never by `import cairn`."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, NamedTuple, TypeVar

from ..errors import CairnException
from .config import ENDPOINT_VARS, SYSROOT_VARS

DATATOOLS_VARS = ("CAIRN_DATATOOLS_S3ROOT", "METAFLOW_DATATOOLS_S3ROOT")
_WORKERS = 16
T = TypeVar("T")
R = TypeVar("R")


class MetaflowS3Exception(CairnException):
    """Every error of the S3 client (Metaflow's name)."""

    headline = "S3 error"


class MetaflowS3NotFound(MetaflowS3Exception):
    headline = "S3 object not found"


class MetaflowS3URLException(MetaflowS3Exception):
    headline = "Bad S3 URL"


class MetaflowS3AccessDenied(MetaflowS3Exception):
    headline = "S3 access denied"


class MetaflowS3InvalidObject(MetaflowS3Exception):
    headline = "Bad S3 object"


class MetaflowS3InvalidRange(MetaflowS3Exception):
    headline = "Bad S3 range"


class RangeInfo(NamedTuple):
    """What a ranged get asked for, and the object's whole size."""

    total_size: int
    request_offset: int = 0
    request_length: int = -1


@dataclass
class S3GetObject:
    """A key to get, optionally a byte range of it (`offset`, `length`)."""

    key: str
    offset: int | None = None
    length: int | None = None


@dataclass
class S3PutObject:
    """A key to put, from a value (str or bytes) or a local file `path`."""

    key: str
    value: str | bytes | IO[bytes] | None = None
    path: str | None = None
    content_type: str | None = None
    metadata: dict[str, str] | None = None


class S3Object:
    """One object (or a prefix, from `list_paths`) of a get, info or list call."""

    def __init__(self, prefix: str | None, url: str, path: str | None = None, *, exists: bool = True,
                 size: int | None = None, info: dict[str, Any] | None = None,
                 range_info: RangeInfo | None = None) -> None:
        self._prefix, self._url, self._path, self._exists = prefix, url, path, exists
        self._size, self._info, self._range_info = size, info, range_info

    exists = property(lambda self: self._exists, doc="True for an existing object, False for a "
                      "missing one (return_missing=True) or a prefix (list_paths).")
    downloaded = property(lambda self: self._path is not None)
    url = property(lambda self: self._url)
    prefix = property(lambda self: self._prefix)
    path = property(lambda self: self._path, doc="The local file of a downloaded object.")
    size = property(lambda self: self._size)
    has_info = property(lambda self: self._info is not None)
    range_info = property(lambda self: self._range_info)

    @property
    def key(self) -> str:
        """The URL relative to the client's root, or the whole URL without one."""
        if self._prefix and self._url.startswith(self._prefix.rstrip("/") + "/"):
            return self._url[len(self._prefix.rstrip("/")) + 1:]
        return self._url

    @property
    def blob(self) -> bytes | None:
        if self._path is None:
            return None
        with open(self._path, "rb") as f:
            return f.read()

    @property
    def text(self) -> str | None:
        blob = self.blob
        return None if blob is None else blob.decode("utf-8")

    def _info_of(self, name: str) -> Any:
        return (self._info or {}).get(name)

    metadata = property(lambda self: self._info_of("metadata"))
    content_type = property(lambda self: self._info_of("content_type"))
    encryption = property(lambda self: self._info_of("encryption"))
    last_modified = property(lambda self: self._info_of("last_modified"),
                             doc="Seconds since the epoch, as an int.")

    def __str__(self) -> str:
        if not self._exists:
            return f"<S3Object {self._url} (missing)>"
        return f"<S3Object {self._url} ({self._size} bytes{', local' if self.downloaded else ''})>"

    __repr__ = __str__


def _split(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise MetaflowS3URLException(f"expected an s3://bucket/key URL, got {url!r}")
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket:
        raise MetaflowS3URLException(f"no bucket in {url!r}")
    return bucket, key


def datatools_root(environ: dict[str, str] | None = None) -> str | None:
    """Where S3(run=...) keeps data: CAIRN_DATATOOLS_S3ROOT (or Metaflow's
    name), else `<the S3 datastore root>/data`, as Metaflow; None without either."""
    env = os.environ if environ is None else environ
    for var in DATATOOLS_VARS:
        if env.get(var):
            return env[var].rstrip("/")
    for var in SYSROOT_VARS:
        if env.get(var):
            return env[var].rstrip("/") + "/data"
    return None


def _run_path(run: Any) -> str:
    """`<flow>/<run id>` of a running step's flow (self) or a client Run."""
    from ..flowspec import FlowSpec

    if isinstance(run, FlowSpec):
        from ..current import current

        if not current.is_running_flow:
            raise MetaflowS3URLException("S3(run=self) works only inside a running step")
        return f"{current.flow_name}/{current.run_id}"
    pathspec = getattr(run, "pathspec", None)
    if not isinstance(pathspec, str) or pathspec.count("/") != 1:
        raise MetaflowS3URLException(f"run= takes a FlowSpec (self) or a Run, got {run!r}")
    return pathspec


def _root_of(bucket: str | None, prefix: str | None, run: Any, s3root: str | None) -> str | None:
    if run is not None:
        base = datatools_root()
        if base is None:
            raise MetaflowS3URLException(
                "S3(run=...) needs an S3 root: set CAIRN_DATASTORE_SYSROOT_S3 (or "
                "CAIRN_DATATOOLS_S3ROOT), or pass s3root= with full URLs instead")
        base_bucket, base_prefix = _split(base)
        parts = [bucket or base_bucket, (base_prefix if prefix is None else prefix).strip("/"), _run_path(run)]
        return "s3://" + "/".join(p for p in parts if p)
    if s3root:
        _split(s3root)
        return s3root.rstrip("/")
    if bucket:
        return "s3://" + "/".join(p for p in (bucket, (prefix or "").strip("/")) if p)
    return None


def _error(exc: Exception, url: str) -> MetaflowS3Exception:
    """The client error of boto3 `exc` about `url`, as one of ours."""
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status == 404 or code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
        return MetaflowS3NotFound(f"{url} does not exist")
    if status == 403 or code in ("403", "AccessDenied"):
        return MetaflowS3AccessDenied(f"access to {url} was denied")
    if status == 416 or code == "InvalidRange":
        return MetaflowS3InvalidRange(f"the range asked of {url} is outside the object")
    return MetaflowS3Exception(f"{url}: {exc}")


def _info(response: dict[str, Any]) -> dict[str, Any]:
    modified = response.get("LastModified")
    return {
        "content_type": response.get("ContentType"),
        "metadata": dict(response.get("Metadata") or {}),
        "encryption": response.get("ServerSideEncryption"),
        "last_modified": int(modified.timestamp()) if modified is not None else None,
    }


class S3:
    """Metaflow's S3 client. Use it as a context manager (or call close()):
    the objects it downloads live in a temporary directory until then."""

    def __init__(self, tmproot: str = ".", bucket: str | None = None, prefix: str | None = None,
                 run: Any = None, s3root: str | None = None, encryption: str | None = None,
                 **kwargs: Any) -> None:
        self._s3root = _root_of(bucket, prefix, run, s3root)
        self._tmproot, self._tmpdir = tmproot, None  # type: str, str | None
        self._encryption = encryption
        unknown = sorted(set(kwargs) - {"client_params", "session_vars"})
        if unknown:
            raise MetaflowS3Exception(
                f"S3() got unsupported arguments {', '.join(unknown)} (cairn takes client_params= and "
                "session_vars=; for a role, configure it in boto3's credential chain, e.g. a profile)")
        self._client_params = dict(kwargs.get("client_params") or {})
        self._session_vars = dict(kwargs.get("session_vars") or {})
        self._client: Any = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> S3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Removes the downloaded files."""
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def _boto(self) -> Any:
        with self._lock:
            return self._make_client()

    def _make_client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise MetaflowS3Exception("the S3 client needs boto3: pip install 'cairn[s3]'") from None
            endpoint = next((os.environ[v] for v in ENDPOINT_VARS if os.environ.get(v)), None)
            params = {"endpoint_url": endpoint, **self._client_params}
            self._client = boto3.session.Session(**self._session_vars).client("s3", **params)
        return self._client

    def _call(self, url: str, fn: Callable[..., R], **kw: Any) -> R:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kw)
        except ClientError as e:
            raise _error(e, url) from None
        except BotoCoreError as e:
            raise MetaflowS3Exception(f"{url}: {e}") from None

    def _url(self, key: str | None) -> str:
        if key and key.startswith("s3://"):
            return key
        if self._s3root is None:
            raise MetaflowS3URLException(
                f"{key!r} is not an s3:// URL: give full URLs, or S3(run=self) or S3(s3root=...) "
                "to use keys relative to a root")
        return f"{self._s3root}/{key.lstrip('/')}" if key else self._s3root

    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """fn of each item, in threads sharing one (thread-safe) boto3 client."""
        items = list(items)
        if len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(_WORKERS, len(items))) as pool:
            return list(pool.map(fn, items))

    def _local(self) -> str:
        """The temporary directory, made once even when threads ask at once."""
        with self._lock:
            if self._tmpdir is None:
                self._tmpdir = tempfile.mkdtemp(dir=self._tmproot, prefix="cairn.s3.")
            return self._tmpdir

    # -- reading ---------------------------------------------------------------

    def info(self, key: str | None = None, return_missing: bool = False) -> S3Object:
        """The size, content type, metadata and time of an object, without its bytes."""
        url = self._url(key)
        bucket, name = _split(url)
        try:
            head = self._call(url, self._boto().head_object, Bucket=bucket, Key=name)
        except MetaflowS3NotFound:
            if return_missing:
                return S3Object(self._s3root, url, exists=False)
            raise
        return S3Object(self._s3root, url, size=head["ContentLength"], info=_info(head))

    def info_many(self, keys: Iterable[str], return_missing: bool = False) -> list[S3Object]:
        return self._map(lambda k: self.info(k, return_missing), keys)

    def get(self, key: str | S3GetObject | None = None, return_missing: bool = False,
            return_info: bool = True) -> S3Object:
        """Downloads one object (or the byte range of an S3GetObject) into
        the temporary directory; `.path`, `.blob` and `.text` read it."""
        offset = length = None
        if isinstance(key, S3GetObject):
            key, offset, length = key.key, key.offset, key.length
        url = self._url(key)
        bucket, name = _split(url)
        kw: dict[str, Any] = {"Bucket": bucket, "Key": name}
        if offset is not None or length is not None:
            start = offset or 0
            if start < 0 and length is None:
                kw["Range"] = f"bytes={start}"
            elif start < 0 or (length is not None and length <= 0):
                raise MetaflowS3InvalidRange(f"offset {start}, length {length} of {url}: "
                                             "a negative offset takes no length, a length must be positive")
            else:
                kw["Range"] = f"bytes={start}-" + ("" if length is None else str(start + length - 1))
        try:
            response = self._call(url, self._boto().get_object, **kw)
        except MetaflowS3NotFound:
            if return_missing:
                return S3Object(self._s3root, url, exists=False)
            raise
        fd, path = tempfile.mkstemp(dir=self._local())
        with os.fdopen(fd, "wb") as f:
            for chunk in response["Body"].iter_chunks(1 << 20):
                f.write(chunk)
        size = response["ContentLength"]
        range_info = None
        if "Range" in kw:
            total = int(str(response.get("ContentRange", "")).rpartition("/")[2] or size)
            first = int(str(response.get("ContentRange", "bytes 0-")).split()[-1].split("-")[0] or 0)
            range_info = RangeInfo(total, first, size)
        return S3Object(self._s3root, url, path, size=size,
                        info=_info(response) if return_info else None, range_info=range_info)

    def get_many(self, keys: Iterable[str | S3GetObject], return_missing: bool = False,
                 return_info: bool = True) -> list[S3Object]:
        """get() of each key, in parallel; in the order of `keys`."""
        return self._map(lambda k: self.get(k, return_missing, return_info), keys)

    def get_recursive(self, keys: Iterable[str | None], return_info: bool = False) -> list[S3Object]:
        """Downloads every object under each prefix."""
        return self.get_many([o.url for o in self.list_recursive(keys)], return_info=return_info)

    def get_all(self, return_info: bool = False) -> list[S3Object]:
        """Downloads every object under the client's root."""
        if self._s3root is None:
            raise MetaflowS3URLException("get_all() needs S3(run=...), S3(s3root=...) or S3(bucket=...)")
        return self.get_recursive([None], return_info)

    # -- listing ---------------------------------------------------------------

    def _pages(self, url: str, **kw: Any) -> list[dict[str, Any]]:
        """The pages of a listing of url's bucket."""
        bucket, _ = _split(url)
        paginator = self._boto().get_paginator("list_objects_v2")
        return self._call(url, lambda: list(paginator.paginate(Bucket=bucket, **kw)))

    def list_paths(self, keys: Iterable[str | None] | None = None) -> list[S3Object]:
        """The objects and prefixes directly under each key, as `ls` would:
        an object has `exists` True, a prefix (a "directory") False."""
        out: list[S3Object] = []
        for key in keys if keys is not None else [None]:
            url = self._url(key)
            bucket, name = _split(url)
            prefix = name.rstrip("/") + "/" if name.rstrip("/") else ""
            for page in self._pages(url, Prefix=prefix, Delimiter="/"):
                for p in page.get("CommonPrefixes", []):
                    out.append(S3Object(self._s3root, f"s3://{bucket}/{p['Prefix'].rstrip('/')}", exists=False))
                for o in page.get("Contents", []):
                    out.append(S3Object(self._s3root, f"s3://{bucket}/{o['Key']}", size=o["Size"]))
        return out

    def list_recursive(self, keys: Iterable[str | None] | None = None) -> list[S3Object]:
        """Every object under each key (and the key itself if it is one)."""
        out: list[S3Object] = []
        for key in keys if keys is not None else [None]:
            url = self._url(key)
            bucket, name = _split(url)
            name = name.rstrip("/")
            for page in self._pages(url, Prefix=name):
                for o in page.get("Contents", []):
                    if not name or o["Key"] == name or o["Key"].startswith(name + "/"):
                        out.append(S3Object(self._s3root, f"s3://{bucket}/{o['Key']}", size=o["Size"]))
        return out

    # -- writing ---------------------------------------------------------------

    def _exists(self, url: str) -> bool:
        return self.info(url, return_missing=True).exists

    def _put_extra(self, content_type: str | None, metadata: dict[str, str] | None) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            extra["Metadata"] = {str(k): str(v) for k, v in metadata.items()}
        if self._encryption:
            extra["ServerSideEncryption"] = self._encryption
        return extra

    def put(self, key: str, obj: str | bytes | IO[bytes], overwrite: bool = True,
            content_type: str | None = None, metadata: dict[str, str] | None = None) -> str:
        """Stores a str (as UTF-8), bytes or a binary file object; returns its URL.
        With overwrite=False an existing object is left as it is."""
        url = self._url(key)
        if isinstance(obj, str):
            body: Any = obj.encode("utf-8")
        elif isinstance(obj, (bytes, bytearray, memoryview)):
            body = bytes(obj)
        elif hasattr(obj, "read"):
            body = obj
        else:
            raise MetaflowS3InvalidObject(f"put({key!r}) takes str, bytes or a binary file object, "
                                          f"got {type(obj).__name__}")
        if not overwrite and self._exists(url):
            return url
        bucket, name = _split(url)
        self._call(url, self._boto().put_object, Bucket=bucket, Key=name, Body=body,
                   **self._put_extra(content_type, metadata))
        return url

    def put_many(self, key_objs: Iterable[tuple[str, Any] | S3PutObject],
                 overwrite: bool = True) -> list[tuple[str, str]]:
        """put() of each (key, value) pair or S3PutObject, in parallel; (key, URL) pairs."""
        def one(item: tuple[str, Any] | S3PutObject) -> tuple[str, str]:
            if isinstance(item, S3PutObject):
                if item.path is not None:
                    return self._put_file(item, overwrite)
                return item.key, self.put(item.key, item.value, overwrite, item.content_type, item.metadata)
            key, value = item
            return key, self.put(key, value, overwrite)

        return self._map(one, key_objs)

    def put_files(self, key_paths: Iterable[tuple[str, str] | S3PutObject],
                  overwrite: bool = True) -> list[tuple[str, str]]:
        """Uploads local files, (key, path) pairs or S3PutObjects with a path;
        in parallel, large files in parts; (key, URL) pairs."""
        items = [i if isinstance(i, S3PutObject) else S3PutObject(i[0], path=i[1]) for i in key_paths]
        for item in items:
            if item.path is None or not os.path.isfile(item.path):
                raise MetaflowS3NotFound(f"put_files: local file {item.path!r} (for {item.key!r}) does not exist")
        return self._map(lambda i: self._put_file(i, overwrite), items)

    def _put_file(self, item: S3PutObject, overwrite: bool) -> tuple[str, str]:
        url = self._url(item.key)
        if not overwrite and self._exists(url):
            return item.key, url
        bucket, name = _split(url)
        extra = self._put_extra(item.content_type, item.metadata)
        self._call(url, self._boto().upload_file, Filename=item.path, Bucket=bucket, Key=name,
                   ExtraArgs=extra or None)
        return item.key, url
