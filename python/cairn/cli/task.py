"""Commands the engine and the backends start, not users: `step` (one
task in a fresh interpreter, the spawn launcher) and `ray-node-worker` (a
Ray node's fork server)."""

from __future__ import annotations

import argparse
import os

from ..errors import CairnException
from ..graph import spec_for
from ..home import datastore_root


def add_step(step: argparse.ArgumentParser, flow_cls: type) -> None:
    step.add_argument("step_name", nargs="?", help=argparse.SUPPRESS)


def cmd_ray_node_worker(flow_cls: type, args: argparse.Namespace) -> int:
    from ..backends.ray.node_worker import serve

    return serve(flow_cls, datastore_root(args.datastore_root))


def cmd_step(flow_cls: type, args: argparse.Namespace) -> int:
    """The standalone task entry point (a fresh interpreter per task)."""
    from ..runtime import task
    from ..runtime.task_data import decode_payload

    path = os.environ.get("CAIRN_TASK_PAYLOAD")
    fd = os.environ.get("CAIRN_RESULT_FD")
    if not path or not fd:
        raise CairnException("'step' is run by the engine: CAIRN_TASK_PAYLOAD and CAIRN_RESULT_FD must be set")
    # The spawn launcher starts this through cairn-task-exec, which has
    # already tied the process's life to the engine's (before exec).
    with open(path, "rb") as f:
        payload = decode_payload(f.read())
    spec = spec_for(flow_cls, payload.get("flow", {}).get("with_decorators", []))
    return task.run_task(flow_cls, spec, payload, int(fd))
