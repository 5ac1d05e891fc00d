"""`run` and `resume`: resolve parameters, store them, fork the worker, and
hand the rest to the C++ engine."""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

from .. import _core, permissions, serializers
from ..checks import check_tags, check_text, env_choice
from ..config import config_values
from ..errors import ParameterError
from ..flow_decorators import run_exit_hooks
from ..graph import parameters_of
from ..home import username
from ..project import project_tags
from ..version import __version__

LAUNCHERS = ("worker", "spawn")
LOG_LEVELS = ("trace", "debug", "info", "warning", "warn", "error", "off")  # as engine_log.cc


def prepare_run(root: str, tags: list[str]) -> None:
    """Before a run or resume writes anything: checks its tags and the
    settings it takes from the environment, so that a bad one is an error
    that names it rather than a fallback or a failure halfway, and applies
    CAIRN_UMASK."""
    check_tags(tags)
    check_text("the user name ($CAIRN_USER or $USER)", username())
    env_choice("CAIRN_LAUNCHER", LAUNCHERS, "worker")
    env_choice("CAIRN_LOG_LEVEL", LOG_LEVELS, "info")
    permissions.apply(root)


def python_version() -> str:
    """platform.python_version() without importing platform (1 ms of every
    run's start): the version is the first word of sys.version."""
    return sys.version.split()[0]


def system_tags(user: str) -> list[str]:
    return [
        f"user:{user}",
        "runtime:local",
        f"python_version:{python_version()}",
        f"cairn_version:{__version__}",
    ]


def store_parameters(flow_cls: type, cli_values: dict[str, Any], root: str, user: str
                     ) -> tuple[list[list[Any]], dict[str, Any]]:
    """Resolves every Parameter and stores its value; returns (records, shown values).
    All values are resolved before anything is written, so a bad one leaves no trace."""
    params = parameters_of(flow_cls)
    values = {attr: p.resolve(cli_values.get(attr), flow_cls.__name__, user) for attr, p in params.items()}
    store = _core.ArtifactStore(root)
    records, shown = [], {}
    # Configs are artifacts of the run too (as in Metaflow): run.data.<config>.
    for attr, value in {**values, **config_values(flow_cls)}.items():
        try:
            segments, encoding = serializers.dumps(value)
        except RecursionError:  # Python 3.13's json parses deeper than pickle can store
            raise ParameterError(f"'{attr}': value nested too deeply to store (Python's recursion limit)") from None
        except Exception as e:  # noqa: BLE001 - any pickling failure is the value's
            raise ParameterError(f"'{attr}': value could not be pickled ({type(value).__name__}): {e}") from None
        digest, size, _ = store.put(segments)
        records.append([attr, digest, size, serializers.type_name(value), encoding])
    for attr, param in params.items():
        shown[param.name] = _shown(param, values[attr], cli_values.get(attr))
    return records, shown


def _shown(param: Any, value: Any, given: Any) -> Any:
    """How a parameter's value is kept in the run record (for display and resume)."""
    if getattr(param, "IS_INCLUDE_FILE", False):
        return given if given is not None else param.default
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def run_to_resume(ds: Any, flow_name: str, run_id: int | None) -> int:
    """`run_id`, else the flow's latest run (NotFoundError when it has none)."""
    if run_id is not None:
        return run_id
    runs = ds.runs(flow_name, 1)
    if not runs:
        raise _core.NotFoundError(f"flow {flow_name} has no run to resume")
    return runs[0].run_id


def origin_parameters(root: str, flow_cls: type, origin_run_id: int | None
                      ) -> tuple[int, list[list[Any]], str]:
    """For resume: the origin run (default: the latest) and its parameters.
    Refuses an origin without a stored value for each of the flow's
    Parameters: resuming with defaults would silently change the run's inputs."""
    flow_name = flow_cls.__name__
    ds = _core.Datastore(root, readonly=True)
    try:
        run = ds.get_run(flow_name, run_to_resume(ds, flow_name, origin_run_id))
        params = ds.tasks(run.run_id, "_parameters")
        records = [[a.name, a.digest, a.size, a.type, a.encoding]
                   for t in params for a in t.artifacts]
        _check_origin_parameters(flow_cls, run.run_id, bool(params), {r[0] for r in records})
        return run.run_id, records, run.params_json
    finally:
        del ds  # close before forking the worker


def run_configs(flow_name: str, root: str, run_id: int | None = None) -> dict[str, Any]:
    """The configs a run was made with (default: the flow's latest run), for
    commands that act on an existing run (resume; spin): pass them to
    read_configs(flow_cls, stored=...)."""
    ds = _core.Datastore(root, readonly=True)
    try:
        run = ds.get_run(flow_name, run_to_resume(ds, flow_name, run_id))
        graph = json.loads(run.graph_json or "{}")
    finally:
        del ds
    return graph.get("configs", {})


def _check_origin_parameters(flow_cls: type, run_id: int, recorded: bool, names: set[str]
                             ) -> None:
    missing = sorted(set(parameters_of(flow_cls)) - names)
    if not missing:
        return
    if not recorded:
        raise ParameterError(
            f"cannot resume run {flow_cls.__name__}/{run_id}: its parameter values were never "
            f"recorded (it was written by an older cairn and stopped early); start a new run"
        )
    raise ParameterError(
        f"cannot resume run {flow_cls.__name__}/{run_id}: it has no value for parameter(s) "
        f"{', '.join(missing)} (added since?); start a new run"
    )


def execute(flow_cls: type, spec: dict[str, Any], *, root: str, param_records: list[list[Any]],
            params_json: str, tags: list[str], with_decorators: list[str], max_workers: int,
            max_num_splits: int, quiet: bool, launcher: str | None = None, origin_run_id: int = 0,
            resume_steps: list[str] | None = None, run_id_file: str = "",
            ray_address: str | None = None, ray_pending_timeout: float | None = None) -> dict[str, Any]:
    """Runs the flow (after prepare_run); `launcher` None: $CAIRN_LAUNCHER,
    else the worker. Steps with a remote backend go to Ray (backends/launch.py)."""
    remote = None
    if any(s.get("options", {}).keys() & {"backend", "remote_decorator"} for s in spec["steps"]):
        from ..backends import launch  # only then: it loads the S3 store and the code packager

        remote = launch.prepare(spec, root, ray_address)  # checked before anything runs
    user = username()
    launcher = launcher or env_choice("CAIRN_LAUNCHER", LAUNCHERS, "worker")
    flow_payload = {
        "root": root, "user": user, "tags": tags, "with_decorators": with_decorators,
        "file": spec["file"], "configs": spec.get("configs", {}), "project": spec.get("project"),
    }
    options = {
        "root": root,
        "graph_json": json.dumps(spec),
        "max_workers": max_workers,
        "max_num_splits": max_num_splits,
        "user": user,
        "tags": tags,
        "system_tags": system_tags(user) + project_tags(spec.get("project")),
        "params_json": params_json,
        "param_artifacts_json": json.dumps(param_records),
        "origin_run_id": origin_run_id,
        "resume_steps": resume_steps or [],
        "flow_payload_json": json.dumps(flow_payload),
        "task_argv": [sys.executable, spec["file"], "--datastore-root", root, "step"],
        "run_id_file": run_id_file,
    }
    console = {"quiet": quiet, "live_progress": sys.stdout.isatty() and not quiet}
    sys.stdout.flush()
    sys.stderr.flush()
    def sidecar() -> dict[str, Any]:  # started after the worker is forked: no socket leaks to it
        if remote is None:
            return {}
        s = launch.start(remote, spec, root, ray_pending_timeout, with_decorators)
        return {"sidecar_fd": s.fd, "sidecar_pid": s.pid}

    try:
        if launcher == "spawn":
            summary = _core.run(options, console=console, **sidecar())
        else:
            summary = _run_with_worker(flow_cls, spec, options, console, root, sidecar, with_decorators)
    except KeyboardInterrupt as e:
        # Ctrl-C: the engine killed the tasks and marked the run failed; exit
        # hooks run whatever the outcome (Metaflow), so on_error runs here.
        run_id = getattr(e, "run_id", 0)
        run_exit_hooks(flow_cls, {"run_id": run_id, "status": "failed"} if run_id else None, root)
        raise
    run_exit_hooks(flow_cls, summary, root)
    return summary


def _blob_proxy() -> Any:
    """With an S3 datastore: a ProxyServer through which the worker's tasks
    reach S3, served by this process (a thread, while the engine runs
    without the GIL), so that the worker forks without boto3 loaded: each
    fork and exit is then ~1.5 ms cheaper (stores/proxy.py). None without."""
    from ..stores import remote_from_env

    remote = remote_from_env()
    if remote is None:
        return None
    from ..stores.proxy import ProxyServer

    return ProxyServer(remote)


def _run_with_worker(flow_cls: type, spec: dict[str, Any], options: dict[str, Any],
                     console: dict[str, Any], root: str, sidecar: Any, with_decorators: list[str]
                     ) -> dict[str, Any]:
    proxy = _blob_proxy()
    engine_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            engine_end.close()
            from .worker import serve

            store = None
            if proxy is not None:
                from ..stores import CachedStore

                store = CachedStore(root, proxy.blobs_in_child())
            serve(flow_cls, spec, worker_end, parent, root, with_decorators, store)
        finally:
            os._exit(0)
    worker_end.close()
    if proxy is not None:
        proxy.start()
    try:
        extra = sidecar()
    except BaseException:
        engine_end.close()  # the worker exits on EOF
        os.waitpid(pid, 0)
        raise
    return _core.run(options, worker_fd=engine_end.detach(), worker_pid=pid, console=console, **extra)
