"""The worker: a copy of the `run` process (forked before the engine starts,
so the flow and everything it imports are loaded once) that forks one child
per task on the engine's request. The request loop is C++
(cpp/exec/fork_server.h): the worker runs no Python between forks, so it
copies none of its pages after each one. Protocol: docs/architecture.md."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import socket
import sys
from typing import Any

from .. import _core
from ..stores import open_store
from . import step_plan, task, task_data


def _child(flow_cls: type, spec: dict[str, Any], env: dict[str, str] | None, payload: bytes,
           result_fd: int, store: Any, params_checked: bool) -> None:
    """In the forked child, which serve_worker has already made the task's
    process (its own process group, stdout and stderr on the task's pipes,
    default signal dispositions): run the task."""
    code = 70
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # so that Python's table agrees
        if env:
            os.environ.update(env)
        np = sys.modules.get("numpy")
        if np is not None:  # forked children would otherwise share numpy's global RNG state
            np.random.seed(int.from_bytes(os.urandom(4), "little"))
        code = task.run_task(flow_cls, spec, task_data.decode_payload(payload), result_fd, store, params_checked)
    finally:
        os._exit(code)


def serve(flow_cls: type, spec: dict[str, Any], sock: socket.socket, parent: int, root: str,
          with_decorators: list[str] | None = None, store: Any = None) -> None:
    """Serves task requests until the engine closes its end of the socket.
    `with_decorators`: the run's --with options, given by a local run
    (runtime.execute, which has also checked its parameters) and by a Ray
    node's fork server: each step's decorators are then resolved here, once,
    rather than in every task. `store`: the tasks' blob store, if not the
    root's: with an S3 datastore, a proxy to the process that holds the S3
    client (the run process, or a Ray node's slot actor; stores/proxy.py),
    so that this process forks without boto3 loaded."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine handles Ctrl-C
    params_checked = with_decorators is not None
    if with_decorators is not None:
        step_plan.prepare(flow_cls, spec, with_decorators)
    if store is None:
        store = open_store(root)  # through to S3 when an S3 datastore is configured
    if "cairn.stores.s3_client" in sys.modules:
        # The flow uses cairn's S3 client, whose tasks make boto3 clients:
        # import boto3 once here (0.09 s) rather than in each task. Loaded,
        # it makes each fork 0.8 ms dearer, so other flows go without.
        with contextlib.suppress(ImportError):  # the task says to install it
            import boto3  # noqa: F401
    # Set once here rather than in every child: each thing a child does
    # touches pages it must then copy. Children write to fds 1 and 2 after
    # dup2, so these objects serve them unchanged.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    faulthandler.enable(file=sys.stderr, all_threads=False)
    sys.stdout.flush()
    sys.stderr.flush()

    def prepare(header: str, payload: bytes) -> None:
        # The first task of a foreach: load its list here, once, so that
        # every child inherits it (task_data.preload).
        with contextlib.suppress(Exception):  # the child loads it itself then
            task_data.preload(task_data.decode_payload(payload), store)

    request = _core.serve_worker(sock.detach(), parent, prepare)
    if request is None:
        os._exit(0)
    env, payload, result_fd = request
    _child(flow_cls, spec, env, payload, result_fd, store, params_checked)
