"""stores/proxy.py: forked processes reach a remote blob store through the
process that holds its client, as tasks on a Ray node reach S3 through their
slot actor."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from cairn import _core
from cairn.errors import CairnError
from cairn.stores import CachedStore
from cairn.stores.proxy import ProxyBlobs, ProxyServer

# The tests fork beside the server's thread, in one process; in a run the
# server lives in the slot actor and the fork server that forks is single-threaded.
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


class FolderBlobs:
    """A remote store that is a folder; records which process asked what."""

    def __init__(self, root: Path):
        self.root = root
        self.calls: list[tuple[str, str]] = []

    def exists(self, digest: str) -> bool:
        self.calls.append(("exists", digest))
        return (self.root / digest).exists()

    def upload(self, digest: str, path: str) -> bool:
        self.calls.append(("upload", digest))
        if digest == "refused":
            raise CairnError("PUT of blob refused: AccessDenied")
        if (self.root / digest).exists():
            return False
        shutil.copyfile(path, self.root / digest)
        return True

    def download(self, digest: str, dest: str) -> bool:
        self.calls.append(("download", digest))
        if not (self.root / digest).exists():
            return False
        shutil.copyfile(self.root / digest, dest)
        return True


def in_child(fn: Any) -> Any:
    """Runs fn() in a forked process, as a task forked by a fork server; its
    return value (JSON) or its error comes back."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = {"value": fn()}
        except Exception as e:  # noqa: BLE001 - sent to the test
            out = {"error": f"{type(e).__name__}: {e}"}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def serving(remote: FolderBlobs) -> tuple[ProxyServer, int]:
    """A server, and the forking process's copy of its child end: here the
    test process forks the tasks itself, so it keeps a copy as a fork server
    inherits one."""
    server = ProxyServer(remote)
    fd = os.dup(server.child_fd)
    server.start()
    return server, fd


@pytest.fixture
def remote(tmp_path: Path) -> FolderBlobs:
    (tmp_path / "remote").mkdir()
    return FolderBlobs(tmp_path / "remote")


def test_forked_tasks_put_and_get_blobs_through_the_serving_process(tmp_path, remote):
    server, fd = serving(remote)
    cache = str(tmp_path / "cache")
    store = CachedStore(cache, ProxyBlobs(fd))  # made before the fork, as in a fork server
    value = os.urandom(64 << 10)

    def put() -> str:
        return store.put([value])[0]

    digest = in_child(put)["value"]
    # The bytes went up through the server, from the cache file the task wrote.
    assert ("upload", digest) in remote.calls
    assert (remote.root / digest).read_bytes() == Path(store.path_of(digest)).read_bytes()

    # Another task on another node (an empty cache) reads it back, verified.
    other = CachedStore(str(tmp_path / "other"), ProxyBlobs(fd))
    got = in_child(lambda: bytes(other.get(digest)[0]).hex())
    assert bytes.fromhex(got["value"]) == value
    assert ("download", digest) in remote.calls
    assert in_child(lambda: other.has(_core.digest([b"never stored"])))["value"] is False


def test_errors_of_the_remote_store_reach_the_task(tmp_path, remote):
    _, fd = serving(remote)
    blobs = ProxyBlobs(fd)
    (tmp_path / "f").write_bytes(b"x")
    assert in_child(lambda: blobs.upload("refused", str(tmp_path / "f")))["error"] == (
        "Error: PUT of blob refused: AccessDenied")
    missing = CachedStore(str(tmp_path / "c"), blobs)
    never = _core.digest([b"never stored"])
    assert "not found locally nor in the remote store" in in_child(lambda: missing.get(never))["error"]


def test_a_task_whose_serving_process_is_gone_gets_a_clear_error():
    serving, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    serving.close()  # the serving process died (a slot actor killed with its node)
    with child_end:
        err = in_child(lambda: ProxyBlobs(child_end.fileno()).exists(_core.digest([b"x"])))["error"]
    assert err.startswith("Error: the node's blob store is unreachable")
