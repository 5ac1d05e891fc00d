"""Python values <-> the segments of a blob.

Pickle protocol 5 with out-of-band buffers: a numpy array's memory goes to
the store as its own segment without a copy, and comes back as a view of the
blob's copy-on-write mapping (no copy; writing to it copies only the pages
written). Top-level bytes are stored as they are and read back with one
copy."""

from __future__ import annotations

import io
import pickle
from typing import Any

PICKLE = "pickle5"
BYTES = "bytes"
BYTEARRAY = "bytearray"

# Blobs up to this size are not files: they travel inside payloads and
# results and the engine keeps them in SQLite (docs/datastore.md). A file per
# tiny value costs an inode, the largest part of a short task's time.
INLINE_MAX = 4096


# Modules whose classes moved (the package layout of STYLE.md §11): a value
# pickled before the move names the old module, read through this map.
MOVED_MODULES = {
    "cairn.task": "cairn.runtime.task",  # StepFailure, stored by @catch(var=...)
    "cairn.client_task": "cairn.client.task",  # Step, Task, DataArtifact, TaskException
    "cairn.client_metadata": "cairn.client.metadata",
}


class _MovedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def type_name(obj: Any) -> str:
    t = type(obj)
    if t.__module__ == "builtins":
        return t.__qualname__
    return f"{t.__module__}.{t.__qualname__}"


def dumps(obj: Any) -> tuple[list[Any], str]:
    """Returns (segments, encoding). Segments support the buffer protocol."""
    t = type(obj)
    if t is bytes:
        return [obj], BYTES
    if t is bytearray:
        return [obj], BYTEARRAY
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return [data, *(b.raw() for b in buffers)], PICKLE


def load(store: Any, digest: str, encoding: str, size: int) -> Any:
    """Reads and decodes a blob of `store` (the client's blob reader) whose
    value has `size` bytes. bytes and bytearray values are read straight into
    the new object (one copy); pickled values get their out-of-band buffers
    (numpy arrays, DataFrame columns) as copy-on-write views of the blob's
    mapping, no copy."""
    if encoding in (BYTES, BYTEARRAY):
        return store.get_bytes(digest, size, encoding == BYTEARRAY)
    return loads(store.get(digest, size), encoding)


def loads(segments: list[memoryview], encoding: str) -> Any:
    if encoding == BYTES:
        return bytes(segments[0])
    if encoding == BYTEARRAY:
        return bytearray(segments[0])
    if encoding == PICKLE:
        try:
            return pickle.loads(segments[0], buffers=segments[1:])
        except ModuleNotFoundError as e:
            if e.name not in MOVED_MODULES:
                raise
        # Only a value pickled before a move pays for the Python unpickler.
        return _MovedUnpickler(io.BytesIO(segments[0]), buffers=segments[1:]).load()
    raise ValueError(f"unknown artifact encoding {encoding!r}")
