"""Printing what a run left in logs/: each task attempt's stdout and stderr,
and the engine's own log (--engine). Used by `python flow.py logs` and by
`cairn logs`; files are streamed, since a task's output may exceed memory."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, BinaryIO

from . import _core
from .checks import check_id
from .errors import CairnException, NotFoundError
from .tool import tool

# engine_log.h: the engine log rotates into engine.1.log, engine.2.log.
ENGINE_LOG_BACKUPS = 2


def engine_log_files(root: str, run_id: int) -> list[str]:
    """The run's engine log files, oldest first."""
    folder = os.path.join(root, "logs", str(run_id))
    names = [f"engine.{i}.log" for i in range(ENGINE_LOG_BACKUPS, 0, -1)] + ["engine.log"]
    return [p for p in (os.path.join(folder, n) for n in names) if os.path.exists(p)]


def print_engine_log(root: str, run_id: int, out: BinaryIO | None = None) -> None:
    files = engine_log_files(root, run_id)
    if not files:
        raise NotFoundError(
            f"run {run_id} has no engine log in {root} (it ran with CAIRN_LOG_LEVEL=off, or before "
            f"cairn kept one)")
    target = out or sys.stdout.buffer
    for path in files:
        _copy(path, target)
    target.flush()


def engine_log_tail(root: str, run_id: int, lines: int = 40) -> str:
    """The last `lines` lines of a run's engine log ("" if it has none): what
    a failing fault test prints to say what the engine was doing."""
    files = engine_log_files(root, run_id)
    if not files:
        return ""
    with open(files[-1], "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 200 * lines))  # ~200 bytes a line
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def print_task_logs(root: str, flow: str, run_id: int, step: str | None, task_id: int | None,
                    streams: list[str], attempt: int | None) -> None:
    """The output of one task, of every task of a step, or (step None) of
    every task of the run; a header before each when there are several."""
    ds = _core.Datastore(root, readonly=True)
    run = ds.get_run(flow, run_id)
    tasks = [t for t in ds.tasks(run.run_id, step or "") if not t.step.startswith("_")]
    if task_id is not None:
        tasks = [t for t in tasks if t.task_id == task_id]
    if not tasks:
        where = "/".join(str(p) for p in (flow, run_id, step, task_id) if p is not None)
        raise NotFoundError(f"no task at {where}")
    for t in tasks:
        source = t
        if t.origin:  # a cloned task's output is its origin's
            _, origin_run, _, origin_task = t.origin.split("/")
            source = ds.get_task(int(origin_run), int(origin_task))
        attempts = sorted(a.attempt for a in source.attempts)
        chosen = attempt if attempt is not None else attempts[-1] if attempts else 0
        if attempts and chosen not in attempts:
            raise NotFoundError(
                f"task {flow}/{t.run_id}/{t.step}/{t.task_id} has no attempt {chosen} "
                f"(its attempts: {', '.join(map(str, attempts))})")
        if len(tasks) > 1:
            sys.stdout.write(f"--- {flow}/{t.run_id}/{t.step}/{t.task_id} (attempt {chosen})\n")
        for stream in streams:
            path = os.path.join(root, "logs", str(source.run_id), source.step,
                                f"{source.task_id}.{chosen}.{stream}")
            if os.path.exists(path):
                # Both streams go to stdout, as Metaflow prints them, so that
                # `logs 3/start --stderr > err.txt` keeps the log.
                sys.stdout.flush()
                _copy(path, sys.stdout.buffer)
                sys.stdout.flush()


def _copy(path: str, target: BinaryIO) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            target.write(chunk)


def add_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `python flow.py logs` and `cairn logs`."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--stdout", action="store_true", help="only stdout")
    group.add_argument("--stderr", action="store_true", help="only stderr")
    p.add_argument("--attempt", type=int, help="attempt number (default: the last)")
    p.add_argument("--engine", action="store_true",
                   help="the run's engine log (what the engine did: tasks, retries, commits, errors)")


def show(root: str, flow: str | None, parts: list[str], args: argparse.Namespace, usage: str) -> int:
    """Prints what `parts` (RUN[/STEP[/TASK]], after the flow name) asks for."""
    if not parts or len(parts) > 3 or not all(parts):
        raise CairnException(f"expected {usage}, got '{'/'.join(parts)}'")
    run_id = check_id(parts[0], "run id")
    if args.engine:
        if len(parts) > 1:
            raise CairnException("--engine shows a whole run's log: give RUN only")
        if flow is not None:
            _core.Datastore(root, readonly=True).get_run(flow, run_id)  # NotFoundError names it
        print_engine_log(root, run_id)
        return 0
    if flow is None:
        raise CairnException(f"expected {usage}: name the flow, FLOW/RUN")
    streams = ["out"] if args.stdout else ["err"] if args.stderr else ["out", "err"]
    step = parts[1] if len(parts) > 1 else None
    task_id = check_id(parts[2], "task id") if len(parts) > 2 else None
    print_task_logs(root, flow, run_id, step, task_id, streams, args.attempt)
    return 0


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("pathspec", metavar="FLOW/RUN[/STEP[/TASK]]",
                   help="whose output; with --engine, RUN or FLOW/RUN")
    add_options(p)


@tool("logs", "print a run's task output (FLOW/RUN[/STEP[/TASK]]) or its engine log (--engine RUN)",
      _configure)
def _logs(args: argparse.Namespace) -> int:
    from .home import datastore_root

    parts: list[Any] = args.pathspec.strip("/").split("/")
    flow = None
    if parts and not parts[0].isdigit():
        flow, parts = parts[0], parts[1:]
    return show(datastore_root(args.datastore_root), flow, parts, args, "FLOW/RUN[/STEP[/TASK]]")
