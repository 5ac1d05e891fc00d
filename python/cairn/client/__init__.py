"""Read past runs: Metaflow(), Flow, Run, Step, Task, DataArtifact.

Metaflow's client object model and names. Listing runs, steps and tasks reads
only SQLite (through the C++ Datastore); an artifact's blob is read, and
decompressed, only when its value is asked for, then kept for the life of the
object that read it. Every object remembers the namespace it was made in and
checks it as Metaflow does: a Run, Step, Task or DataArtifact must belong to a
run carrying the namespace tag, a Flow must have at least one such run.
Objects of a run that is still being written re-read SQLite on each access;
once the run is over, what they read is kept.

The core objects are base.py, task.py and run.py; display.py (text and
HTML summaries, `dump`) reads them and is never imported by them."""

from __future__ import annotations

from . import display as _display  # noqa: F401 - gives the objects their notebook display
from .base import (  # noqa: F401 - the datastore cache and reader, for cairn's own modules and tests
    ChildNotFound,
    _artifact_store,
    _datastore,
    _stores,
    default_namespace,
    get_namespace,
    namespace,
)
from .run import Flow, Metaflow, Run
from .task import DataArtifact, MetaflowArtifacts, MetaflowData, Step, Task, TaskException

__all__ = [
    "ChildNotFound", "DataArtifact", "Flow", "Metaflow", "MetaflowArtifacts", "MetaflowData", "Run",
    "Step", "Task", "TaskException", "default_namespace", "get_namespace", "namespace",
]
