"""Which datastore the client reads (Metaflow's metadata provider), and
`profile`, which times a block of a step into the task's metadata.

cairn has one metadata provider: the SQLite database of a local datastore.
`get_metadata()` answers `local@<datastore folder>`; `metadata(path)` points
the client at another datastore (a `.cairn` folder, or a folder holding one),
`default_metadata()` points it back at the default one."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from .errors import CairnException
from .home import DATASTORE_DIR, datastore_root

SPIN_DIR = ".cairn_spin"  # where `spin --persist` keeps its runs
_selected: str | None = None          # the datastore chosen with metadata(), if any
_task_entries: list[list[Any]] = []    # [name, value, type, created_at]: this task's additions


def selected_root() -> str | None:
    """The datastore chosen with metadata(), or None for the default."""
    return _selected


def get_metadata() -> str:
    """The metadata provider the client uses: `local@<datastore folder>`."""
    return f"local@{_selected or datastore_root()}"


def metadata(ms: str) -> str:
    """Switches the client to another datastore, everywhere in this process.
    `ms` is a path (a `.cairn` folder, or the folder that holds one), or
    `local@<path>`; a metadata service (`service@URL`, `http...`) is not
    available here. Returns get_metadata()."""
    global _selected
    kind, sep, where = str(ms).partition("@")
    if not sep:
        kind, where = "local", str(ms)
    if kind != "local" or where.startswith(("http://", "https://")):
        raise CairnException(
            f"metadata('{ms}'): cairn has no metadata service; its metadata lives in a local "
            f"datastore: pass its path, or local@<path>"
        )
    path = os.path.abspath(os.path.expanduser(where))
    if os.path.basename(path) != DATASTORE_DIR and os.path.isdir(os.path.join(path, DATASTORE_DIR)):
        path = os.path.join(path, DATASTORE_DIR)
    if not os.path.isdir(path):
        raise CairnException(f"metadata('{ms}'): no datastore at {path}")
    _selected = path
    return get_metadata()


def default_metadata() -> str:
    """Back to the default datastore ($CAIRN_HOME, or the nearest .cairn);
    returns get_metadata()."""
    global _selected
    _selected = None
    return get_metadata()


def inspect_spin(datastore_root: str = ".") -> str:
    """Points the client at what `spin --persist` kept in
    `<datastore_root>/.cairn_spin` (Metaflow's inspect_spin); returns get_metadata()."""
    path = os.path.join(os.path.abspath(datastore_root), SPIN_DIR)
    if not os.path.isdir(path):
        raise CairnException(f"inspect_spin: no spin results in {path} "
                             f"(run `python flow.py spin STEP --persist` there)")
    return metadata(path)


def use_datastore(root: str) -> None:
    """In a task: the client reads the run's own datastore."""
    global _selected
    _selected = root


def register(name: str, value: Any, type: str = "user") -> None:
    """Adds an entry to the running task's metadata (kept with the task's
    result); outside a task it goes nowhere."""
    _task_entries.append([str(name), str(value), type, time.time()])


def task_entries() -> list[list[Any]]:
    """This task's additions, for its result (task.py)."""
    return list(_task_entries)


@contextlib.contextmanager
def profile(label: str, stats_dict: dict[str, int] | None = None) -> Iterator[None]:
    """Times the block, as Metaflow's `profile`: without `stats_dict` it
    prints `PROFILE: <label> starting` and `... completed in N ms`; with one,
    it adds the milliseconds to `stats_dict[label]` instead. Inside a task the
    time is also kept in the task's metadata (`profile:<label>`, in ms)."""
    if stats_dict is None:
        print(f"PROFILE: {label} starting")
    start = time.perf_counter()
    try:
        yield
    finally:
        took = int((time.perf_counter() - start) * 1000)
        if stats_dict is None:
            print(f"PROFILE: {label} completed in {took}ms")
        else:
            stats_dict[label] = stats_dict.get(label, 0) + took
        register(f"profile:{label}", took, "profile")
