"""parallel_map and parallel_imap_unordered: Metaflow's multicore helpers (multicore_utils).
Each item runs in a forked child process (so `func` may be a lambda or a
closure, and reads the parent's memory for free); its result comes back
pickled through a temporary file. At most `max_parallel` children run at once
(default: the number of CPUs)."""

from __future__ import annotations

import os
import pickle
import select
import signal
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ..errors import CairnException

T = TypeVar("T")
R = TypeVar("R")


class ParallelError(CairnException):
    headline = "Parallel task failed"


def _child(func: Callable[[Any], Any], arg: Any, path: str) -> None:
    try:
        outcome: tuple[str, Any] = ("ok", func(arg))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        outcome = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    try:
        with open(path, "wb") as f:
            pickle.dump(outcome, f, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # noqa: BLE001 - an unpicklable result
        with open(path, "wb") as f:
            pickle.dump(("error", f"the result could not be pickled: {e}"), f)


def parallel_imap_unordered(func: Callable[[T], R], iterable: Iterable[T], max_parallel: int | None = None,
                            dir: str | None = None) -> Iterator[R]:
    """Yields func(item) for each item, in the order they finish."""
    import tempfile

    limit = max_parallel or os.cpu_count() or 1
    if limit < 1:
        raise ParallelError(f"max_parallel must be at least 1, got {max_parallel}")
    items = iter(iterable)
    # A pipe per child, closed when it exits: select() on them waits for our
    # own children only (waitpid(-1) would reap other children of this process).
    running: dict[int, tuple[int, str, int]] = {}  # read end -> (pid, result file, item number)
    with tempfile.TemporaryDirectory(prefix="cairn-parallel-", dir=dir) as tmp:
        number = 0
        try:
            while True:
                while len(running) < limit:
                    try:
                        arg = next(items)
                    except StopIteration:
                        break
                    path = os.path.join(tmp, str(number))
                    read_end, write_end = os.pipe()
                    pid = os.fork()
                    if pid == 0:
                        try:
                            os.close(read_end)
                            _child(func, arg, path)
                        finally:
                            os._exit(0)
                    os.close(write_end)
                    running[read_end] = (pid, path, number)
                    number += 1
                if not running:
                    return
                ready, _, _ = select.select(list(running), [], [])
                fd = ready[0]
                pid, path, index = running.pop(fd)
                os.close(fd)
                os.waitpid(pid, 0)
                try:
                    with open(path, "rb") as f:
                        kind, value = pickle.load(f)
                except (OSError, EOFError, pickle.UnpicklingError):
                    kind, value = "error", "the child process died without a result"
                if kind != "ok":
                    raise ParallelError(f"item {index} failed: {value}")
                yield value
        finally:
            for fd, (pid, _, _) in running.items():
                os.close(fd)
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass


def parallel_map(func: Callable[[T], R], iterable: Iterable[T], max_parallel: int | None = None,
                 dir: str | None = None) -> list[R]:
    """[func(item) for item in iterable], computed in parallel, in order."""
    indexed = list(enumerate(iterable))
    results = dict(parallel_imap_unordered(lambda pair: (pair[0], func(pair[1])), indexed, max_parallel, dir))
    return [results[i] for i in range(len(indexed))]
