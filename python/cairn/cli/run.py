"""`python flow.py run` and `resume`: a new run of the flow, or one that
resumes a past run, handed to the runtime (cairn.runtime.run)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .. import _core
from ..errors import CairnException
from ..graph import parameters_of, spec_for
from ..home import datastore_root, username
from ..parameters import check_reserved
from ..runtime.run import execute, origin_parameters, prepare_run, store_parameters
from .options import add_run_options, parameter_help


def add_run(run: argparse.ArgumentParser, flow_cls: type) -> None:
    add_run_options(run)
    for attr, param in parameters_of(flow_cls).items():
        check_reserved(param, run)
        extra: dict[str, Any] = {}
        if param.type is bool:
            extra = {"nargs": "?", "const": "true"}
        run.add_argument(f"--{param.name}", dest=f"param__{attr}", default=None,
                         metavar=param.name.upper().replace("-", "_"), help=parameter_help(param), **extra)


def add_resume(resume: argparse.ArgumentParser, flow_cls: type) -> None:
    resume.add_argument("step_to_rerun", nargs="?", metavar="STEP", help="re-run from this step")
    resume.add_argument("--origin-run-id", type=int, help="the run to resume (default: the latest)")
    add_run_options(resume)


def _finish(summary: dict, args: argparse.Namespace) -> int:
    if getattr(args, "run_id_file", None):
        with open(args.run_id_file, "w") as f:
            f.write(str(summary["run_id"]))
    return 0 if summary["status"] == "succeeded" else 1


def _run_extras(args: argparse.Namespace) -> dict[str, Any]:
    """run --namespace: what the client sees in the run's tasks (they inherit
    this process's environment); --run-id-file: written by the engine as soon
    as the run has an id."""
    if args.run_namespace is not None:
        os.environ["CAIRN_NAMESPACE"] = args.run_namespace
    return {"run_id_file": os.path.abspath(args.run_id_file) if args.run_id_file else ""}


def cmd_run(flow_cls: type, args: argparse.Namespace) -> int:
    spec = spec_for(flow_cls, args.with_decorators)
    root = datastore_root(args.datastore_root)
    prepare_run(root, args.tag)
    values = {k[len("param__"):]: v for k, v in vars(args).items() if k.startswith("param__")}
    records, shown = store_parameters(flow_cls, values, root, username())
    summary = execute(
        flow_cls, spec, root=root, param_records=records, params_json=json.dumps(shown),
        tags=args.tag, with_decorators=args.with_decorators, max_workers=args.max_workers,
        max_num_splits=args.max_num_splits, quiet=args.quiet or args.run_quiet, launcher=args.launcher,
        **_run_extras(args),
        ray_address=args.ray_address, ray_pending_timeout=args.ray_pending_timeout,
    )
    return _finish(summary, args)


def cmd_resume(flow_cls: type, args: argparse.Namespace) -> int:
    """A new run that clones the origin run's successful tasks up to the
    resume point (the failed steps, or STEP) and runs the rest."""
    spec = spec_for(flow_cls, args.with_decorators)
    root = datastore_root(args.datastore_root)
    prepare_run(root, args.tag)
    origin, records, params_json = origin_parameters(root, flow_cls, args.origin_run_id)
    steps = [args.step_to_rerun] if args.step_to_rerun else []
    if steps and steps[0] not in {s["name"] for s in spec["steps"]}:
        raise CairnException(f"resume: flow {flow_cls.__name__} has no step named '{steps[0]}'")
    run = _core.Datastore(root, readonly=True).get_run(flow_cls.__name__, origin)
    if run.status == "crashed":
        print(f"Run {flow_cls.__name__}/{origin} crashed (its engine, pid {run.engine_pid}, is gone); "
              f"resuming it.", flush=True)
    if not steps:
        if run.status == "succeeded":
            raise CairnException(
                f"run {flow_cls.__name__}/{origin} succeeded, so nothing failed to resume from; "
                f"name the step to re-run from: resume STEP"
            )
    summary = execute(
        flow_cls, spec, root=root, param_records=records, params_json=params_json,
        tags=args.tag, with_decorators=args.with_decorators, max_workers=args.max_workers,
        max_num_splits=args.max_num_splits, quiet=args.quiet or args.run_quiet, launcher=args.launcher,
        origin_run_id=origin, resume_steps=steps, **_run_extras(args),
        ray_address=args.ray_address, ray_pending_timeout=args.ray_pending_timeout,
    )
    return _finish(summary, args)
