"""SlotActor: one slot of a resource shape on a node. It unpacks the code
package into the node's cache once, starts a warm fork server for the flow
(node_worker.py) and runs tasks through it with the local worker's protocol,
reporting their output as it comes, call by call (run, then more). Killing the actor kills its
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
from typing import Any

import ray

from ...stores import CachedStore, remote_from_env
from ...stores.proxy import ProxyServer
from .. import package

CACHE_VAR = "CAIRN_RAY_NODE_CACHE"
_READ = 64 * 1024
_REPORT_MAX = 1 << 20  # output in one report, at most (about)
# (done, [(stream, bytes), ...], status, result, timed_out): SlotActor._pump
Report = tuple[bool, list[tuple[int, bytes]], int | None, bytes, bool]


def node_cache(node_id: str) -> str:
    """The node's blob cache: an ordinary blob store, one per Ray node."""
    base = os.environ.get(CACHE_VAR) or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), f"cairn-ray-{os.getuid()}")
    return os.path.join(base, node_id[:16])


class _Task:
    """A task of this slot between calls: its pipes and what it has said."""

    def __init__(self, key: int, reads: list[int], timeout_s: float, server: socket.socket):
        self.key = key
        self.reads = reads
        self.open = len(reads)
        self.deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        self.timed_out = False
        self.status: int | None = None
        self.result = bytearray()
        self.sel = selectors.DefaultSelector()
        for stream, fd in enumerate(reads):
            self.sel.register(fd, selectors.EVENT_READ, stream)
        self.sel.register(server, selectors.EVENT_READ, "sock")  # the fork server's replies

    def close(self) -> None:
        self.sel.close()
        for fd in self.reads:
            os.close(fd)


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
        # The fork server's tasks reach S3 through this actor's client.
        self.proxy = ProxyServer(remote)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**os.environ, "CAIRN_RAY_NODE_FD": str(theirs.fileno()),
               "CAIRN_RAY_NODE_BLOBS_FD": str(self.proxy.child_fd),
               "CAIRN_RAY_NODE_SPEC": spec_path, "CAIRN_RAY_NODE_PARENT": str(os.getpid()),
               "CAIRN_RAY_NODE_WITH": json.dumps(setup.get("with_decorators", [])),
               "PYTHONUNBUFFERED": "1"}
        self.server = subprocess.Popen(
            [sys.executable, os.path.join(code, setup["flow_file"]), "--datastore-root", self.root,
             "ray-node-worker"],
            cwd=code, env=env, pass_fds=[theirs.fileno(), self.proxy.child_fd], stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.proxy.start()
        self.sock = ours
        self.replies = b""
        self.reply_lock = threading.Lock()
        self.tasks: dict[int, _Task] = {}
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

    def run(self, key: int, env: dict[str, str], payload: bytes, timeout_s: float) -> Report:
        """Starts the task on the node's fork server; returns its first report
        (_pump). The caller asks for the next ones with more(key) until one
        says the task is done. Plain calls rather than a streaming generator:
        a task that writes nothing costs one round trip, and a Ray generator
        costs about twice a call in CPU (measured, docs/ray.md)."""
        pipes = [os.pipe() for _ in range(3)]
        env = {**env, "CAIRN_RAY_NODE_ID": self.node_id}
        header = json.dumps({"key": key, "env": env, "preload": []}).encode()
        frame = struct.pack("<II", len(header), len(payload)) + header + payload
        try:
            socket.send_fds(self.sock, [frame[:1]], [w for _, w in pipes])
            self.sock.sendall(frame[1:])
        finally:
            for _, w in pipes:
                os.close(w)
        task = _Task(key, [r for r, _ in pipes], timeout_s, self.sock)
        with self.lock:
            self.tasks[key] = task
        return self._pump(task)

    def more(self, key: int) -> Report:
        """The task's next report (what it wrote since the last one, or its end)."""
        with self.lock:
            task = self.tasks[key]
        return self._pump(task)

    def _pump(self, task: _Task) -> Report:
        """Waits until the task has written something or has ended. Returns
        (done, [(stream, bytes), ...], status, result, timed_out): output as it
        came, in order, and once done, the status (None if the fork server
        never reported one) and the task's result. A task still running at
        its timeout is killed here (@timeout on the node; the engine's
        deadline backs it up)."""
        out: list[tuple[int, bytes]] = []
        size = 0
        try:
            while task.open or task.status is None:
                if out:
                    wait = 0.0  # gather what is ready, then report
                elif task.deadline is None:
                    wait = None
                else:
                    wait = max(0.0, task.deadline - time.monotonic())
                events = task.sel.select(wait)
                if not events:
                    if out:
                        return False, out, None, b"", task.timed_out
                    if task.deadline is not None and time.monotonic() >= task.deadline:
                        self.kill_task(task.key)
                        task.deadline = None
                        task.timed_out = True
                    continue
                for sk, _ in events:
                    if sk.data == "sock":
                        self._read_replies()
                        continue
                    data = os.read(sk.fd, _READ)
                    if not data:
                        task.sel.unregister(sk.fd)
                        task.open -= 1
                    elif sk.data == 2:
                        task.result += data
                    else:
                        out.append((sk.data + 1, data))
                        size += len(data)
                if size >= _REPORT_MAX:
                    return False, out, None, b"", task.timed_out
                with self.lock:
                    if task.key in self.killed and self.pids.get(task.key):
                        _killpg(self.pids[task.key])
        except BaseException:
            self._forget(task)
            raise
        self._forget(task)
        return True, out, task.status, bytes(task.result), task.timed_out

    def _forget(self, task: _Task) -> None:
        task.close()
        with self.lock:
            self.tasks.pop(task.key, None)
            self.pids.pop(task.key, None)
            self.killed.discard(task.key)

    def _read_replies(self) -> None:
        """Reads the fork server's replies and files each under its task:
        whichever of the slot's calls is waiting reads them, for all."""
        with self.reply_lock:
            try:
                data = self.sock.recv(_READ, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return  # another call read them first
            if not data:
                raise RuntimeError("the node's fork server exited")
            self.replies += data
            *lines, self.replies = self.replies.split(b"\n")
        for line in lines:
            reply = json.loads(line)
            with self.lock:
                task = self.tasks.get(reply.get("key"))
                if task is None:
                    continue
                if "pid" in reply:
                    self.pids[task.key] = reply["pid"]
                    if task.key in self.killed:
                        _killpg(reply["pid"])
                if "status" in reply:
                    task.status = reply["status"]
                    if self.pids.get(task.key):
                        _killpg(self.pids[task.key])  # what it left in its group dies with it, as locally

    def shutdown(self) -> None:
        self.sock.close()
        self.server.wait()


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
