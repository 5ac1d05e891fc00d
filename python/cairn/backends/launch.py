"""Setting up a run's remote steps, in the run process (never imports Ray):
check the decorators, the cluster address, Ray and the S3 datastore before
anything runs; store the code package; start the sidecar, which drives Ray
and talks to the engine (cpp/exec/sidecar_launcher.h)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import CairnException
from ..stores import S3Config, open_store

ADDRESS_VARS = ("CAIRN_RAY_ADDRESS", "RAY_ADDRESS")
# Opt-in: the run's AWS keys go to the cluster's slot actors (docs/ray.md).
FORWARD_CREDENTIALS_VAR = "CAIRN_RAY_FORWARD_AWS_CREDENTIALS"
CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                   "AWS_DEFAULT_REGION", "AWS_REGION")
_YES, _NO = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
DEFAULT_PENDING_TIMEOUT_S = 60.0
# Connecting to the cluster; well above a healthy cluster's ~1 s.
READY_TIMEOUT_S = 120.0


class RayBackendError(CairnException):
    headline = "Ray backend"


@dataclass
class Sidecar:
    fd: int
    pid: int


def remote_steps(spec: dict[str, Any]) -> list[str]:
    """The steps the run sends to Ray; raises if a step needs a remote backend
    that the run was not given."""
    remote = []
    for s in spec["steps"]:
        options = s.get("options", {})
        if options.get("backend") == "ray":
            remote.append(s["name"])
        elif options.get("remote_decorator"):
            deco = options["remote_decorator"]
            raise RayBackendError(
                f"step '{s['name']}' has @{deco}, which cairn runs on a Ray cluster: "
                f"add --with ray and a cluster address (--ray-address or CAIRN_RAY_ADDRESS); "
                f"nothing was run")
    return remote


def cluster_address(explicit: str | None) -> str:
    if explicit:
        return explicit
    for var in ADDRESS_VARS:
        if os.environ.get(var):
            return os.environ[var]
    raise RayBackendError(
        "no Ray cluster address: pass --ray-address HOST:PORT or set CAIRN_RAY_ADDRESS "
        "(cairn never attaches to a cluster implicitly)")


def require_ray() -> None:
    """Without importing it (seconds, and threads in the process that forks the worker)."""
    try:
        found = importlib.util.find_spec("ray") is not None
    except ImportError:
        found = False
    if not found:
        raise RayBackendError("running steps on Ray needs Ray: pip install 'cairn[ray]'")


def forwarded_credentials(environ: Any = None) -> dict[str, str]:
    """The AWS variables the slot actors get from this run: none unless
    CAIRN_RAY_FORWARD_AWS_CREDENTIALS says so; a node otherwise uses its own
    credential chain (instance role, its profile), as a Metaflow step on
    Kubernetes or Batch does."""
    env = os.environ if environ is None else environ
    value = env.get(FORWARD_CREDENTIALS_VAR, "").strip().lower()
    if value not in _YES + _NO:
        raise RayBackendError(f"{FORWARD_CREDENTIALS_VAR}={env[FORWARD_CREDENTIALS_VAR]!r}: "
                              f"expected 1 (send this run's AWS keys to the cluster) or 0")
    if value in _NO:
        return {}
    return {k: env[k] for k in CREDENTIAL_VARS if env.get(k)}


def require_s3() -> S3Config:
    config = S3Config.from_env()
    if config is None:
        raise RayBackendError(
            "steps on Ray keep their artifacts in S3-compatible storage: set "
            "CAIRN_DATASTORE_SYSROOT_S3=s3://bucket/prefix (and CAIRN_S3_ENDPOINT_URL if not AWS)")
    return config


def prepare(spec: dict[str, Any], root: str, address: str | None) -> dict[str, Any] | None:
    """Everything checked and the code package built; None if no step is
    remote. The package is uploaded by start(), after the local worker has
    been forked, so that the worker never loads boto3 (stores/proxy.py)."""
    steps = remote_steps(spec)
    if not steps:
        return None
    require_ray()
    address = cluster_address(address)
    require_s3()
    forwarded_credentials()  # a bad value stops the run before anything runs
    from . import package  # only for remote steps: tarfile stays out of local runs

    return {"address": address, "package": package.build(spec["file"]), "steps": steps}


def start(plan: dict[str, Any], spec: dict[str, Any], root: str, pending_timeout: float | None,
          with_decorators: list[str] | None = None) -> Sidecar:
    """Uploads the code package, starts the sidecar and waits until it is
    connected to the cluster. `with_decorators`: the run's --with options, so
    that the nodes' fork servers resolve each step's decorators once, as the
    local worker does."""
    digest = open_store(root).put([plan["package"]])[0]
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
    spec_path = os.path.join(root, "tmp", f"ray-spec-{os.getpid()}.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    config = {
        "fd": theirs.fileno(), "parent": os.getpid(), "spec": spec_path, "root": root,
        "address": plan["address"], "package": digest,
        "flow_file": os.path.basename(spec["file"]), "with_decorators": with_decorators or [],
        "pending_timeout": pending_timeout if pending_timeout is not None else DEFAULT_PENDING_TIMEOUT_S,
    }
    # Imported here: subprocess imports threading, whose at-fork hook would
    # cost every task forked from a local run's worker.
    import subprocess

    # Its own process group: if it hangs, the engine kills the group (and
    # whatever it started) without touching the run's (SidecarLauncher). It
    # dies with the run process, and ignores the terminal's Ctrl-C anyway.
    proc = subprocess.Popen(
        [sys.executable, "-m", "cairn.backends.ray.sidecar", json.dumps(config)],
        pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, start_new_session=True,
    )
    theirs.close()
    ours.settimeout(READY_TIMEOUT_S)
    line = b""
    try:
        while not line.endswith(b"\n"):
            chunk = ours.recv(1)
            if not chunk:
                break
            line += chunk
    except socket.timeout:
        line = b""
    reply = json.loads(line) if line.strip() else {"error": "the Ray sidecar exited before connecting"}
    if "error" in reply:
        proc.kill()
        proc.wait()
        ours.close()
        raise RayBackendError(reply["error"])
    ours.settimeout(None)
    return Sidecar(ours.detach(), proc.pid)
