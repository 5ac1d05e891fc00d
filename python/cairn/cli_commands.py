"""Implementations of the flow CLI's commands (registered in cli.py)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from . import _core
from .cli import command, spec_for
from .errors import CairnException, NotFoundError
from .home import datastore_root, username
from .runtime.run import execute, origin_parameters, prepare_run, store_parameters


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


@command("check")
def cmd_check(flow_cls: type, args: argparse.Namespace) -> int:
    spec_for(flow_cls)
    print(f"Validating your flow {flow_cls.__name__}...\n    The graph looks good!")
    return 0


@command("run")
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


@command("resume")
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


@command("ray-node-worker")
def cmd_ray_node_worker(flow_cls: type, args: argparse.Namespace) -> int:
    from .backends.ray.node_worker import serve

    return serve(flow_cls, datastore_root(args.datastore_root))


@command("step")
def cmd_step(flow_cls: type, args: argparse.Namespace) -> int:
    """The standalone task entry point (a fresh interpreter per task)."""
    from .runtime import task
    from .runtime.task_data import decode_payload

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


@command("show")
def cmd_show(flow_cls: type, args: argparse.Namespace) -> int:
    from .show import render

    print(render(spec_for(flow_cls), args.format))
    return 0


@command("logs")
def cmd_logs(flow_cls: type, args: argparse.Namespace) -> int:
    """Prints the kept stdout/stderr of a task's attempt (default: the last),
    or with --engine the run's engine log."""
    from .logs import show

    parts = args.pathspec.strip("/").split("/")
    if parts and parts[0] == flow_cls.__name__:
        parts = parts[1:]
    if not args.engine and len(parts) < 2:
        raise CairnException(f"expected RUN_ID/STEP[/TASK_ID], got '{args.pathspec}'")
    return show(datastore_root(args.datastore_root), flow_cls.__name__, parts, args,
                 "RUN_ID --engine" if args.engine else "RUN_ID/STEP[/TASK_ID]")


@command("dump")
def cmd_dump(flow_cls: type, args: argparse.Namespace) -> int:
    """Prints the artifacts of RUN_ID/STEP[/TASK_ID] (name, type, size, short
    repr); --include picks some, --file pickles {task pathspec: {name: value}}."""
    import pickle

    from . import client
    from .client.display import dump_lines

    root = datastore_root(args.datastore_root)
    parts = args.pathspec.strip("/").split("/")
    if parts and parts[0] == flow_cls.__name__:
        parts = parts[1:]
    if len(parts) not in (2, 3) or not all(parts):
        raise CairnException(f"dump expects RUN_ID/STEP[/TASK_ID], got '{args.pathspec}'")
    step = client.Step("/".join([flow_cls.__name__, *parts[:2]]), _namespace_check=False, _root=root)
    tasks = [step[parts[2]]] if len(parts) == 3 else list(step)
    include = {n.strip() for n in args.include.split(",") if n.strip()} if args.include else None
    missing = (include or set()) - {name for t in tasks for name in t._artifact_map()
                                    if args.private or include or not name.startswith("_")}
    if missing:
        raise NotFoundError(f"{step.pathspec} has no artifact named {', '.join(sorted(missing))}")
    dumped = {}
    for task in tasks:
        lines, dumped[task.pathspec] = dump_lines(task, include, args.max_value_size,
                                                  show_values=not args.file, private=args.private)
        print("\n".join(lines))
    if args.file:
        try:
            with open(args.file, "wb") as f:
                pickle.dump(dumped, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as e:
            raise CairnException(f"dump --file: cannot write {args.file}: {e.strerror or e}") from None
        print(f"Artifacts of {len(dumped)} task(s) written to {args.file}")
    return 0


@command("tag")
def cmd_tag(flow_cls: type, args: argparse.Namespace) -> int:
    """tag add|remove|replace --run-id ID TAG...: a run's user tags; tag list
    [--run-id ID]: one run's tags, or those of every run in your namespace."""
    from . import client

    root = datastore_root(args.datastore_root)
    name = flow_cls.__name__
    if args.action == "list" and not args.run_id:
        ns = client.get_namespace()
        flow = client.Flow(name, _namespace_check=False, _root=root)
        runs = [r for r in flow.runs() if ns is None or ns in r.tags]
        print(f"Runs of {name} in namespace {ns}:" if runs else f"{name} has no runs in namespace {ns}")
        for run in runs:
            _print_tags(run)
        return 0
    if not args.run_id:
        raise CairnException(f"tag {args.action} needs --run-id RUN_ID")
    run = client.Run(f"{name}/{args.run_id}", _namespace_check=False, _root=root)
    if args.action in ("add", "remove") and not args.tags:
        raise CairnException(f"tag {args.action} needs at least one TAG")
    if args.action == "add":
        run.add_tags(args.tags)
    elif args.action == "remove":
        run.remove_tags(args.tags)
    elif args.action == "replace":
        if len(args.tags) != 2:
            raise CairnException("tag replace takes two tags: OLD NEW")
        run.replace_tag(args.tags[0], args.tags[1])
    _print_tags(run)
    return 0


def _print_tags(run: Any) -> None:
    print(run.pathspec)
    print(f"    user tags:   {', '.join(sorted(run.user_tags)) or '(none)'}")
    print(f"    system tags: {', '.join(sorted(run.system_tags))}")
