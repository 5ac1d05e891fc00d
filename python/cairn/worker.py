"""The worker: a copy of the `run` process (forked before the engine starts,
so the flow and everything it imports are loaded once) that forks one child
per task on the engine's request. Protocol: docs/architecture.md."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import select
import signal
import socket
import struct
import sys
from typing import Any

from . import _core, task

_HEADER = struct.Struct("<II")
_FDS = 3  # stdout, stderr, result


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = sock.recv(n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv_request(sock: socket.socket) -> tuple[dict[str, Any], bytes, list[int]] | None:
    msg, ancdata, _flags, _addr = sock.recvmsg(_HEADER.size, socket.CMSG_SPACE(_FDS * 4))
    if not msg:
        return None
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(struct.unpack(f"{len(data) // 4}i", data[: len(data) - len(data) % 4]))
    if len(msg) < _HEADER.size:
        msg += _recv_exact(sock, _HEADER.size - len(msg))
    header_len, payload_len = _HEADER.unpack(msg)
    body = _recv_exact(sock, header_len + payload_len)
    return json.loads(body[:header_len]), body[header_len:], fds


def _child(flow_cls: type, spec: dict[str, Any], sock: socket.socket, wake: tuple[int, int],
           header: dict[str, Any], payload_text: bytes | dict[str, Any], fds: list[int],
           store: Any) -> None:
    code = 70
    try:
        sock.close()
        for fd in wake:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by the fork
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.close(fds[0])
        os.close(fds[1])
        _core.become_task_process()
        if header.get("env"):
            os.environ.update(header["env"])
        np = sys.modules.get("numpy")
        if np is not None:  # forked children would otherwise share numpy's global RNG state
            np.random.seed(int.from_bytes(os.urandom(4), "little"))
        payload = payload_text if isinstance(payload_text, dict) else task.decode_payload(payload_text)
        code = task.run_task(flow_cls, spec, payload, fds[2], store)
    finally:
        os._exit(code)


def _kill_groups(children: dict[int, int]) -> None:
    for pid in list(children):
        with contextlib.suppress(OSError):  # the group is already gone
            os.killpg(pid, signal.SIGKILL)


def _kill_groups_on_parent_death(children: dict[int, int]) -> None:
    """If the run process dies (even by kill -9), the kernel sends us SIGTERM
    and we SIGKILL every task's process group before exiting: a task dies
    with the worker anyway (its own parent-death signal), but whatever it
    started (a `sleep`, a training script) would otherwise live on."""

    def on_parent_death(*_: Any) -> None:
        _kill_groups(children)
        os._exit(1)

    signal.signal(signal.SIGTERM, on_parent_death)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)


def serve(flow_cls: type, spec: dict[str, Any], sock: socket.socket, parent: int, root: str) -> None:
    """Serves task requests until the engine closes its end of the socket."""
    children: dict[int, int] = {}
    # SIGKILL as the parent-death signal first, so that there is no moment
    # without one; then SIGTERM with a handler that takes the tasks along.
    _core.die_with_parent(parent)
    _kill_groups_on_parent_death(children)
    if os.getppid() != parent:  # died before the SIGTERM request took effect
        os.kill(os.getpid(), signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine handles Ctrl-C
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    store = _core.ArtifactStore(root)
    # Set once here rather than in every child: each thing a child does
    # touches pages it must then copy. Children write to fds 1 and 2 after
    # dup2, so these objects serve them unchanged.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    faulthandler.enable(file=sys.stderr, all_threads=False)

    def send(obj: dict[str, Any]) -> None:
        sock.sendall(json.dumps(obj).encode() + b"\n")

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            key = children.pop(pid, None)
            if key is not None:
                send({"key": key, "status": status})

    while True:
        try:
            ready, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
        reap()
        if sock not in ready:
            continue
        try:
            request = _recv_request(sock)
        except (EOFError, ConnectionResetError):
            request = None
        if request is None:
            break
        header, payload_text, fds = request
        payload = None
        with contextlib.suppress(Exception):  # the child decodes again and reports it properly
            payload = task.decode_payload(payload_text)
            task.preload(payload, store)
        sys.stdout.flush()
        sys.stderr.flush()
        # SIGTERM waits until the child is in `children`, so that the
        # parent-death handler cannot miss it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        pid = os.fork()
        if pid == 0:
            _child(flow_cls, spec, sock, (wake_r, wake_w), header, payload or payload_text, fds, store)
        children[pid] = header["key"]
        with contextlib.suppress(OSError):  # the child did it first, or has already exited
            os.setpgid(pid, pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        for fd in fds:
            os.close(fd)
        send({"key": header["key"], "pid": pid})
        reap()
    # The engine is gone or done: nothing of a task may outlive us.
    _kill_groups(children)
    os._exit(0)
