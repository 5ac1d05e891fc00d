"""Calling a step's body inside a task: the @timeout alarm (an exception in
the step, as in Metaflow) and user-defined step decorators around it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any, Callable

from ..errors import CairnException


class TimeoutException(CairnException):
    """Raised inside a step that ran longer than its @timeout."""

    headline = "Step timed out"


@contextlib.contextmanager
def step_alarm(step_name: str, seconds: float) -> Iterator[None]:
    """Raises TimeoutException in the step after `seconds` (SIGALRM), so that
    @catch and finally blocks run and what the step had set can be kept.
    When the step leaves on a timeout, the processes it started in its
    process group are killed; the engine kills whatever is left after a grace."""
    if not seconds or seconds <= 0:
        yield
        return
    fired = []

    def on_alarm(signum: int, frame: Any) -> None:
        fired.append(True)
        raise TimeoutException(f"step '{step_name}' timed out after {seconds:g} s (@timeout)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if fired:
            kill_group_members()


def kill_group_members() -> None:
    """SIGKILLs every other process of this task's process group (children a
    timed-out step started), leaving this one to report the failure."""
    me, group = os.getpid(), os.getpgrp()
    if group != me:
        return  # not a group leader: the group is not the task's own
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue


def call_step(flow: Any, step_name: str, inputs: Any, wrappers: list[Any], options: dict[str, Any]
              ) -> bool:
    """Runs the step body inside its user decorators (outermost first) and
    under its @timeout alarm; False if a decorator skipped or replaced it."""
    body: Callable[[], None]
    method = getattr(flow, step_name)
    if inputs is not None:
        def body() -> None:
            method(inputs)
    else:
        body = method
    with step_alarm(step_name, float(options.get("step_timeout_s") or 0)):
        if not wrappers:
            body()
            return True
        from ..user_decorators import run_wrapped

        return run_wrapped(flow, step_name, inputs, wrappers, body)
