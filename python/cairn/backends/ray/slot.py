"""SlotActor: one slot of a resource shape on a node. It unpacks the code
package into the node's cache once, starts a warm fork server for the flow
(node_worker.py) and runs tasks through it with the local worker's protocol,
streaming their output back as a Ray generator. Killing the actor kills its
fork server and every task of it (each dies with its parent)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import ray

from ...stores import CachedStore, remote_from_env
from .. import package

CACHE_VAR = "CAIRN_RAY_NODE_CACHE"
_READ = 64 * 1024


def node_cache(node_id: str) -> str:
    """The node's blob cache: an ordinary blob store, one per Ray node."""
    base = os.environ.get(CACHE_VAR) or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), f"cairn-ray-{os.getuid()}")
    return os.path.join(base, node_id[:16])


class SlotActor:
    def __init__(self, setup: dict[str, Any]):
        os.environ.update(setup["env"])  # S3 settings; inherited by the fork server
        if setup.get("credentials") is not None:  # the run's AWS keys, if it opted in
            os.environ.update(ray.get(setup["credentials"]))
        self.node_id = ray.get_runtime_context().get_node_id()
        self.root = node_cache(self.node_id)
        os.makedirs(self.root, exist_ok=True)
        remote = remote_from_env()
        if remote is None:
            raise RuntimeError("no S3 datastore configured on this node (CAIRN_DATASTORE_SYSROOT_S3)")
        self.store = CachedStore(self.root, remote)
        code = os.path.join(self.root, "code", setup["package"])
        if not os.path.isdir(code):
            package.extract(bytes(self.store.get(setup["package"])[0]), code)
        spec_path = os.path.join(self.root, "code", f"{setup['package']}.{setup['spec_digest']}.json")
        if not os.path.exists(spec_path):
            with open(f"{spec_path}.{os.getpid()}", "w") as f:
                json.dump(setup["spec"], f)
            os.replace(f"{spec_path}.{os.getpid()}", spec_path)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**os.environ, "CAIRN_RAY_NODE_FD": str(theirs.fileno()),
               "CAIRN_RAY_NODE_SPEC": spec_path, "CAIRN_RAY_NODE_PARENT": str(os.getpid()),
               "PYTHONUNBUFFERED": "1"}
        self.server = subprocess.Popen(
            [sys.executable, os.path.join(code, setup["flow_file"]), "--datastore-root", self.root,
             "ray-node-worker"],
            cwd=code, env=env, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock = ours
        self.replies = b""
        self.pids: dict[int, int] = {}
        self.killed: set[int] = set()
        self.lock = threading.Lock()

    def ready(self) -> str:
        return self.node_id

    def kill_task(self, key: int) -> None:
        with self.lock:
            self.killed.add(key)
            pid = self.pids.get(key)
        if pid:
            _killpg(pid)

    def run(self, key: int, env: dict[str, str], payload: bytes, timeout_s: float) -> Iterator[Any]:
        """Yields ("started", 0, b"") once the task is forked, ("out", stream,
        bytes) as it writes, ("timeout", 0, b"") if it is killed at timeout_s,
        and last ("end", status, result)."""
        pipes = [os.pipe() for _ in range(3)]
        env = {**env, "CAIRN_RAY_NODE_ID": self.node_id}
        header = json.dumps({"key": key, "env": env, "preload": []}).encode()
        frame = struct.pack("<II", len(header), len(payload)) + header + payload
        socket.send_fds(self.sock, [frame[:1]], [w for _, w in pipes])
        self.sock.sendall(frame[1:])
        for _, w in pipes:
            os.close(w)
        yield ("started", 0, b"")
        reads = [r for r, _ in pipes]
        deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        sel = selectors.DefaultSelector()
        for stream, fd in enumerate(reads):
            sel.register(fd, selectors.EVENT_READ, stream)
        sel.register(self.sock, selectors.EVENT_READ, "sock")
        result = bytearray()
        status = None
        open_fds = 3
        try:
            while open_fds or status is None:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                events = sel.select(wait)
                if not events and deadline is not None and time.monotonic() >= deadline:
                    self.kill_task(key)  # @timeout on the node; the engine's deadline backs it up
                    deadline = None
                    yield ("timeout", 0, b"")
                for sk, _ in events:
                    if sk.data == "sock":
                        status = self._read_replies(key, status)
                        continue
                    data = os.read(sk.fd, _READ)
                    if not data:
                        sel.unregister(sk.fd)
                        open_fds -= 1
                    elif sk.data == 2:
                        result += data
                    else:
                        yield ("out", sk.data + 1, data)
                with self.lock:
                    if key in self.killed and self.pids.get(key):
                        _killpg(self.pids[key])
        finally:
            sel.close()
            for fd in reads:
                os.close(fd)
            with self.lock:
                self.pids.pop(key, None)
                self.killed.discard(key)
        yield ("end", status, bytes(result))

    def _read_replies(self, key: int, status: int | None) -> int | None:
        data = self.sock.recv(_READ)
        if not data:
            raise RuntimeError("the node's fork server exited")
        self.replies += data
        *lines, self.replies = self.replies.split(b"\n")
        for line in lines:
            reply = json.loads(line)
            if reply.get("key") != key:
                continue
            if "pid" in reply:
                with self.lock:
                    self.pids[key] = reply["pid"]
                    if key in self.killed:
                        _killpg(reply["pid"])
            if "status" in reply:
                status = reply["status"]
                if self.pids.get(key):
                    _killpg(self.pids[key])  # what it left in its group dies with it, as locally
        return status

    def shutdown(self) -> None:
        self.sock.close()
        self.server.wait()


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
