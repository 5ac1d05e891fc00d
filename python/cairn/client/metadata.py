"""What the client tells about a task beyond its artifacts: its metadata
entries (Metaflow's `Task.metadata`), its attempts, and its log lines."""

from __future__ import annotations

import json
import os
from collections import namedtuple
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .task import Task

# As Metaflow's: created_at in milliseconds since the epoch; task is the Task.
Metadata = namedtuple("Metadata", ["name", "value", "created_at", "type", "task"])


class Attempt:
    """One try of a task: its number, status, exit and times (seconds since
    the epoch; `started`/`finished` as datetimes)."""

    __slots__ = ("attempt", "exit_code", "finished_at", "reason", "signal", "started_at", "status")

    def __init__(self, record: Any):
        for name in self.__slots__:
            setattr(self, name, getattr(record, name))

    started = property(lambda self: datetime.fromtimestamp(self.started_at) if self.started_at else None)
    finished = property(lambda self: datetime.fromtimestamp(self.finished_at) if self.finished_at else None)

    def __repr__(self) -> str:
        took = f", took={self.finished_at - self.started_at:.3f}s" if self.finished_at else ""
        exit = f", signal={self.signal}" if self.signal else (
            f", exit_code={self.exit_code}" if self.exit_code >= 0 else "")
        reason = f", reason={self.reason!r}" if self.reason else ""
        return f"Attempt({self.attempt}, status={self.status!r}{exit}{reason}{took})"


def _system(task: Task, prefix: str) -> str | None:
    for tag in task.system_tags:
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return None


def task_metadata(task: Task) -> list[Metadata]:
    """The entries Metaflow records for a task, per attempt, oldest first:
    attempt, origin-run-id (and origin-task-id when cloned), user, runtime,
    python_version, ds-type, ds-root, log locations, attempt_ok once the
    attempt is over; then whatever the step added (`profile(...)`)."""
    rec, run = task._rec, task._run
    origin_run = str(run._rec.origin_run_id) if run._rec.origin_run_id else "None"
    common = [("user", run._rec.user, "user"), ("runtime", _system(task, "runtime:"), "runtime"),
              ("python_version", _system(task, "python_version:"), "python_version"),
              ("cairn_version", _system(task, "cairn_version:"), "cairn_version"),
              ("ds-type", "local", "ds-type"), ("ds-root", task._root, "ds-root")]
    out: list[Metadata] = []

    def add(name: str, value: Any, type: str, when: float) -> None:
        if value is not None:
            out.append(Metadata(name, str(value), int(when * 1000), type, task))

    for a in rec.attempts:
        when = a.started_at or rec.started_at
        add("attempt", a.attempt, "attempt", when)
        add("origin-run-id", origin_run, "origin-run-id", when)
        if rec.origin:
            add("origin-task-id", rec.origin.rsplit("/", 1)[-1], "origin-task-id", when)
        for name, value, type in common:
            add(name, value, type, when)
        for stream in ("stdout", "stderr"):
            add(f"log_location_{stream}", log_path(task, stream, a.attempt), "log_path", when)
        if a.status != "running":
            done = a.finished_at or rec.finished_at
            add("attempt_ok", a.status == "succeeded", "internal_attempt_status", done)
    for name, value, type, when in json.loads(rec.result_json or "{}").get("metadata", []):
        add(name, value, type, when)
    return out


def log_path(task: Task, stream: str, attempt: int) -> str:
    """Where an attempt's stdout/stderr is kept (a cloned task's are its origin's)."""
    rec = task._rec
    run_id, step, task_id = rec.run_id, rec.step, rec.task_id
    if rec.origin:
        _, run_id, step, task_id = rec.origin.split("/")
    suffix = "out" if stream == "stdout" else "err"
    return os.path.join(task._root, "logs", str(run_id), step, f"{task_id}.{attempt}.{suffix}")


def loglines(task: Task, stream: str, as_unicode: bool = True) -> Iterator[tuple[datetime | None, Any]]:
    """(timestamp, line) pairs of the task's stdout or stderr, as Metaflow's
    Task.loglines; cairn keeps no time per line, so the timestamp is None."""
    if stream not in ("stdout", "stderr"):
        raise ValueError(f"stream must be 'stdout' or 'stderr', got {stream!r}")
    try:
        f = open(log_path(task, stream, task.current_attempt), "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with f:
        for raw in f:
            line = raw.rstrip(b"\n")
            yield None, line.decode("utf-8", errors="replace") if as_unicode else line
