"""Implementations of the flow CLI's commands (registered in cli.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import _core
from .cli import command, spec_for
from .errors import CairnException, NotFoundError
from .runtime import datastore_root, execute, origin_parameters, store_parameters, username


def _finish(summary: dict, args: argparse.Namespace) -> int:
    if getattr(args, "run_id_file", None):
        with open(args.run_id_file, "w") as f:
            f.write(str(summary["run_id"]))
    return 0 if summary["status"] == "succeeded" else 1


@command("check")
def cmd_check(flow_cls: type, args: argparse.Namespace) -> int:
    spec_for(flow_cls)
    print(f"Validating your flow {flow_cls.__name__}...\n    The graph looks good!")
    return 0


@command("run")
def cmd_run(flow_cls: type, args: argparse.Namespace) -> int:
    spec = spec_for(flow_cls, args.with_decorators)
    root = datastore_root(args.datastore_root)
    values = {k[len("param__"):]: v for k, v in vars(args).items() if k.startswith("param__")}
    records, shown = store_parameters(flow_cls, values, root, username())
    summary = execute(
        flow_cls, spec, root=root, param_records=records, params_json=json.dumps(shown),
        tags=args.tag, with_decorators=args.with_decorators, max_workers=args.max_workers,
        max_num_splits=args.max_num_splits, quiet=args.quiet or args.run_quiet, launcher=args.launcher,
    )
    return _finish(summary, args)


@command("resume")
def cmd_resume(flow_cls: type, args: argparse.Namespace) -> int:
    """A new run that clones the origin run's successful tasks up to the
    resume point (the failed steps, or STEP) and runs the rest."""
    spec = spec_for(flow_cls, args.with_decorators)
    root = datastore_root(args.datastore_root)
    origin, records, params_json = origin_parameters(root, flow_cls.__name__, args.origin_run_id)
    steps = [args.step_to_rerun] if args.step_to_rerun else []
    if steps and steps[0] not in {s["name"] for s in spec["steps"]}:
        raise CairnException(f"resume: flow {flow_cls.__name__} has no step named '{steps[0]}'")
    if not steps:
        run = _core.Datastore(root, readonly=True).get_run(flow_cls.__name__, origin)
        if run.status == "succeeded":
            raise CairnException(
                f"run {flow_cls.__name__}/{origin} succeeded, so nothing failed to resume from; "
                f"name the step to re-run from: resume STEP"
            )
    summary = execute(
        flow_cls, spec, root=root, param_records=records, params_json=params_json,
        tags=args.tag, with_decorators=args.with_decorators, max_workers=args.max_workers,
        max_num_splits=args.max_num_splits, quiet=args.quiet or args.run_quiet, launcher=args.launcher,
        origin_run_id=origin, resume_steps=steps,
    )
    return _finish(summary, args)


@command("step")
def cmd_step(flow_cls: type, args: argparse.Namespace) -> int:
    """The standalone task entry point (a fresh interpreter per task)."""
    from . import task

    path = os.environ.get("CAIRN_TASK_PAYLOAD")
    fd = os.environ.get("CAIRN_RESULT_FD")
    if not path or not fd:
        raise CairnException("'step' is run by the engine: CAIRN_TASK_PAYLOAD and CAIRN_RESULT_FD must be set")
    with open(path) as f:
        payload = json.load(f)
    _core.die_with_parent(os.getppid())
    spec = spec_for(flow_cls, payload.get("flow", {}).get("with_decorators", []))
    return task.run_task(flow_cls, spec, payload, int(fd))


@command("show")
def cmd_show(flow_cls: type, args: argparse.Namespace) -> int:
    from .show import render

    print(render(spec_for(flow_cls), args.format))
    return 0


def _task_records(flow_name: str, pathspec: str, root: str) -> list:
    parts = pathspec.strip("/").split("/")
    if parts and parts[0] == flow_name:
        parts = parts[1:]
    if len(parts) not in (2, 3):
        raise CairnException(f"expected RUN_ID/STEP[/TASK_ID], got '{pathspec}'")
    ds = _core.Datastore(root, readonly=True)
    run = ds.get_run(flow_name, int(parts[0]))
    tasks = ds.tasks(run.run_id, parts[1])
    if len(parts) == 3:
        tasks = [t for t in tasks if str(t.task_id) == parts[2]]
    if not tasks:
        raise NotFoundError(f"no task at {flow_name}/{pathspec}")
    return tasks


@command("logs")
def cmd_logs(flow_cls: type, args: argparse.Namespace) -> int:
    """Prints the kept stdout/stderr of a task's attempt (default: the last),
    streaming the files: a task's output may be far larger than memory."""
    root = datastore_root(args.datastore_root)
    streams = ["out"] if args.stdout else ["err"] if args.stderr else ["out", "err"]
    tasks = _task_records(flow_cls.__name__, args.pathspec, root)
    for t in tasks:
        source = t
        if t.origin:  # a cloned task's output is its origin's
            _, run_id, _, task_id = t.origin.split("/")
            source = _core.Datastore(root, readonly=True).get_task(int(run_id), int(task_id))
        attempts = sorted(a.attempt for a in source.attempts)
        attempt = args.attempt if args.attempt is not None else attempts[-1] if attempts else 0
        if attempts and attempt not in attempts:
            raise NotFoundError(
                f"task {flow_cls.__name__}/{t.run_id}/{t.step}/{t.task_id} has no attempt {attempt} "
                f"(its attempts: {', '.join(map(str, attempts))})"
            )
        if len(tasks) > 1:
            sys.stdout.write(f"--- {flow_cls.__name__}/{t.run_id}/{t.step}/{t.task_id} (attempt {attempt})\n")
        for stream in streams:
            path = os.path.join(root, "logs", str(source.run_id), source.step,
                                f"{source.task_id}.{attempt}.{stream}")
            if not os.path.exists(path):
                continue
            target = sys.stdout if stream == "out" else sys.stderr
            target.flush()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    target.buffer.write(chunk)
            target.flush()
    return 0


@command("dump")
def cmd_dump(flow_cls: type, args: argparse.Namespace) -> int:
    import pickle

    from .client import Task

    root = datastore_root(args.datastore_root)
    include = set(args.include.split(",")) if args.include else None
    dumped = {}
    for t in _task_records(flow_cls.__name__, args.pathspec, root):
        task = Task(f"{flow_cls.__name__}/{t.run_id}/{t.step}/{t.task_id}", _namespace_check=False)
        values = {}
        for art in task.artifacts:
            if include and art.id not in include:
                continue
            values[art.id] = art.data
            text = repr(art.data)
            if len(text) > args.max_value_size:
                text = text[: args.max_value_size] + "..."
            if not args.file:
                print(f"{task.pathspec}  {art.id}  ({art.type}, {art.size} bytes)\n    {text}")
        dumped[task.pathspec] = values
    if args.file:
        with open(args.file, "wb") as f:
            pickle.dump(dumped, f, protocol=5)
        print(f"Artifacts of {len(dumped)} task(s) written to {args.file}")
    return 0


@command("tag")
def cmd_tag(flow_cls: type, args: argparse.Namespace) -> int:
    from .client import Flow, Run

    run = Run(f"{flow_cls.__name__}/{args.run_id}", _namespace_check=False) if args.run_id else \
        Flow(flow_cls.__name__, _namespace_check=False).latest_run
    if run is None:
        raise NotFoundError(f"flow {flow_cls.__name__} has no runs")
    if args.action == "add":
        run.add_tags(args.tags)
    elif args.action == "remove":
        run.remove_tags(args.tags)
    elif args.action == "replace":
        if len(args.tags) != 2:
            raise CairnException("tag replace takes OLD NEW")
        run.replace_tag(args.tags[0], args.tags[1])
    print(f"{run.pathspec} user tags: {', '.join(sorted(run.user_tags)) or '(none)'}")
    print(f"{run.pathspec} system tags: {', '.join(sorted(run.system_tags))}")
    return 0
