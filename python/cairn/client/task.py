"""Step, Task and DataArtifact, and a task's data (MetaflowData) and
failure (TaskException). Import them from `cairn` or `cairn.client`.

run.py (Run) builds on this module; a Step or Task made from a pathspec
finds the Run class through CairnObject.kinds (see base.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import _core, serializers
from ..current import current
from ..errors import NotFoundError
from .base import (
    _UNSET,
    CairnObject,
    ChildNotFound,
    _artifact_store,
    _check_namespace,
    _datastore,
    _dt,
    _number,
    _resolve_ns,
    _split,
)
from .metadata import Attempt, log_path, loglines, task_metadata

if TYPE_CHECKING:
    from .run import Run

# How long Task(current.pathspec) inside a step waits for its own row: the
# engine commits a started task's row with its next batch (every 0.25 s).
_OWN_ROW_WAIT = 10.0


def _run_of(flow: str, run_id: str, root: str | None) -> Run:
    """Run(FLOW/RUN_ID), its namespace unchecked (the caller checks its own)."""
    return CairnObject.kinds["Run"](f"{flow}/{run_id}", _namespace_check=False, _root=root)


def _task_record(run: Run, task_id: int, pathspec: str) -> Any:
    """The task's record, or None. A step reading its own task (as
    `Task(current.pathspec)` does) waits for the engine to commit its row."""
    ds = _datastore(run._root)
    deadline = time.monotonic() + _OWN_ROW_WAIT
    while True:
        try:
            return ds.get_task(run._rec.run_id, task_id)
        except NotFoundError:
            if current.pathspec != pathspec or time.monotonic() > deadline:
                return None
        time.sleep(0.02)


class Step(CairnObject):
    """A step of a run: its tasks (several for a foreach), in split order."""

    def __init__(self, pathspec: str, _namespace_check: bool = True, _current_namespace: Any = _UNSET,
                 _root: str | None = None):
        flow, run_id, step = _split(pathspec, 3)
        run = _run_of(flow, run_id, _root)
        records = run._tasks(step)
        if not records:
            raise NotFoundError(f"Step('{flow}/{run_id}/{step}') does not exist: "
                                f"the run has no task of step '{step}'")
        self._init(run._adopt(_resolve_ns(_namespace_check, _current_namespace)), step, records)
        _check_namespace(self)

    @classmethod
    def _make(cls, run: Run, step: str, records: list[Any]) -> Step:
        obj = cls.__new__(cls)
        obj._init(run, step, records)
        return obj

    def _init(self, run: Run, step: str, records: list[Any]) -> None:
        self._setup(f"{run.pathspec}/{step}", run._root, run._ns)
        self._run = run
        self._records_cache = records

    def _records(self) -> list[Any]:
        if self._run._live():
            self._records_cache = self._run._tasks(self.id)
        return self._records_cache

    def tasks(self, *tags: str) -> Iterator[Task]:
        if not self.tags.issuperset(tags):
            return iter(())
        return iter([Task._make(self._run, t, self) for t in self._records()])

    def __iter__(self) -> Iterator[Task]:
        return self.tasks()

    def __getitem__(self, task_id: str) -> Task:
        for t in self._records():
            if str(t.task_id) == str(task_id):
                return Task._make(self._run, t, self)
        raise ChildNotFound(f"Task('{self.pathspec}/{task_id}') does not exist")

    @property
    def task(self) -> Task | None:
        """The first task (the only one, unless the step is inside a foreach)."""
        records = self._records()
        return Task._make(self._run, records[0], self) if records else None

    parent = property(lambda self: self._run)
    user_tags = property(lambda self: self._run.user_tags)
    system_tags = property(lambda self: self._run.system_tags)
    created_at = property(lambda self: _dt(min(t.started_at for t in self._records())))
    finished_at = property(lambda self: _dt(max(t.finished_at for t in self._records())))

    @property
    def origin_pathspec(self) -> str | None:
        origin = self._run.origin_pathspec
        return f"{origin}/{self.id}" if origin else None


class TaskException:
    """Why a task failed; Metaflow's names (`exception`, `stacktrace`) work too."""

    def __init__(self, type_name: str, message: str, traceback: str):
        self.type = type_name
        self.message = message
        self.traceback = traceback

    exception = property(lambda self: self.message)
    stacktrace = property(lambda self: self.traceback)

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"

    def __repr__(self) -> str:
        return f"TaskException({str(self)!r})"


class Task(CairnObject):
    """A step executed within a run: its artifacts, outcome, logs and attempts."""

    def __init__(self, pathspec: str, attempt: int | None = None, _namespace_check: bool = True,
                 _current_namespace: Any = _UNSET, _root: str | None = None):
        flow, run_id, step, task_id = _split(pathspec, 4)
        run = _run_of(flow, run_id, _root)
        what = f"Task('{flow}/{run_id}/{step}/{task_id}')"
        record = _task_record(run, _number(task_id, what), f"{flow}/{run_id}/{step}/{task_id}")
        if record is None or record.step != step:
            raise NotFoundError(f"{what} does not exist in {run._root}")
        self._init(run._adopt(_resolve_ns(_namespace_check, _current_namespace)), record, None)
        if attempt is not None:
            if not any(a.attempt == attempt for a in record.attempts):
                raise NotFoundError(f"{what} has no attempt {attempt}")
            self._attempt = int(attempt)
        _check_namespace(self)

    @classmethod
    def _make(cls, run: Run, record: Any, step: Step | None = None) -> Task:
        obj = cls.__new__(cls)
        obj._init(run, record, step)
        return obj

    def _init(self, run: Run, record: Any, step: Step | None) -> None:
        self._setup(f"{run.pathspec}/{record.step}/{record.task_id}", run._root, run._ns)
        self._run, self._rec, self._step = run, record, step
        self._attempt: int | None = None
        self._artifacts: dict[str, DataArtifact] = {}
        self._artifact_records: dict[str, Any] | None = None

    def _records_by_name(self) -> dict[str, Any]:
        if self._artifact_records is None:
            # Cards are stored as artifacts with a reserved name; get_cards reads them.
            self._artifact_records = {a.name: a for a in self._rec.artifacts
                                      if not a.name.startswith("_cairn_card.")}
        return self._artifact_records

    def _artifact(self, name: str) -> DataArtifact | None:
        """One DataArtifact, made on first use (a notebook reading one value
        from each of 10,000 tasks makes 10,000, not one per artifact)."""
        art = self._artifacts.get(name)
        if art is None:
            record = self._records_by_name().get(name)
            if record is None:
                return None
            art = self._artifacts[name] = DataArtifact._make(self, record)
        return art

    def _artifact_map(self) -> dict[str, DataArtifact]:
        return {name: self._artifact(name) for name in self._records_by_name()}  # type: ignore[misc]

    def __iter__(self) -> Iterator[DataArtifact]:
        # As in Metaflow, names starting with '_' are private: reachable by name only.
        return iter([a for a in self._artifact_map().values() if not a.id.startswith("_")])

    def __getitem__(self, name: str) -> DataArtifact:
        art = self._artifact(name)
        if art is None:
            raise ChildNotFound(f"DataArtifact('{self.pathspec}/{name}') does not exist")
        return art

    @property
    def artifacts(self) -> MetaflowArtifacts:
        return MetaflowArtifacts(list(self))

    @property
    def data(self) -> MetaflowData:
        return MetaflowData(self)

    @property
    def parent(self) -> Step:
        if self._step is None:
            self._step = Step._make(self._run, self._rec.step, self._run._tasks(self._rec.step))
        return self._step

    user_tags = property(lambda self: self._run.user_tags)
    system_tags = property(lambda self: self._run.system_tags)
    created_at = property(lambda self: _dt(self._rec.started_at))
    attempts = property(lambda self: [Attempt(a) for a in self._rec.attempts])
    origin_pathspec = property(lambda self: self._rec.origin or None)
    metadata = property(lambda self: task_metadata(self),
                        doc="Metadata entries (name, value, created_at, type, task), oldest first.")
    metadata_dict = property(
        lambda self: {m.name: m.value for m in sorted(self.metadata, key=lambda m: m.created_at)},
        doc="The newest value of each metadata entry, by name.")

    @property
    def finished(self) -> bool:
        """False while the task runs, or if the engine running it died."""
        return self._rec.status != "running"  # type: ignore[no-any-return]

    @property
    def finished_at(self) -> datetime | None:
        return _dt(self._rec.finished_at) if self.finished else None

    @property
    def runtime_name(self) -> str | None:
        """Where the task ran: 'local' (the `runtime:` system tag)."""
        return next((t.split(":", 1)[1] for t in self.system_tags if t.startswith("runtime:")), None)

    @property
    def parent_tasks(self) -> Iterator[Task]:
        """The tasks this one took its inputs from (several for a join)."""
        by_id = {t.task_id: t for t in self._run._tasks()}
        return iter([Task._make(self._run, by_id[p]) for p in self._rec.parents if p in by_id])

    @property
    def child_tasks(self) -> Iterator[Task]:
        """The tasks that took this one as an input."""
        mine = self._rec.task_id
        return iter([Task._make(self._run, t) for t in self._run._tasks() if mine in t.parents])

    def loglines(self, stream: str, as_unicode: bool = True, meta_dict: dict | None = None
                 ) -> Iterator[tuple[datetime | None, Any]]:
        """(timestamp, line) pairs of 'stdout' or 'stderr' (the timestamp is None)."""
        return loglines(self, stream, as_unicode)

    @property
    def successful(self) -> bool:
        if self._attempt is not None:
            return any(a.attempt == self._attempt and a.status == "succeeded" for a in self._rec.attempts)
        return self._rec.status == "succeeded"  # type: ignore[no-any-return]

    @property
    def index(self) -> int | None:
        """The index of this task in its innermost foreach, or None."""
        return None if self._rec.foreach_index < 0 else self._rec.foreach_index  # type: ignore[no-any-return]

    @property
    def current_attempt(self) -> int:
        if self._attempt is not None:
            return self._attempt
        return max((a.attempt for a in self._rec.attempts), default=0)

    @property
    def exception(self) -> TaskException | None:
        """What made the task fail (the Python exception, or the attempt's reason)."""
        if self._rec.status in ("succeeded", "running"):
            return None
        found = json.loads(self._rec.result_json or "{}").get("exception")
        if found:
            return TaskException(found.get("type", ""), found.get("message", ""), found.get("traceback", ""))
        reason = self._rec.attempts[-1].reason if self._rec.attempts else "the task failed"
        return TaskException("TaskFailure", reason, "")

    def _log(self, stream: str) -> str:
        try:
            with open(log_path(self, stream, self.current_attempt), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    stdout = property(lambda self: self._log("stdout"))
    stderr = property(lambda self: self._log("stderr"))


class DataArtifact(CairnObject):
    """One named value a task stored; `data` reads its blob on first use."""

    def __init__(self, pathspec: str, _namespace_check: bool = True, _current_namespace: Any = _UNSET,
                 _root: str | None = None):
        *task_parts, name = _split(pathspec, 5)
        task = Task("/".join(task_parts), _namespace_check=False, _root=_root)
        try:
            other = task[name]
        except ChildNotFound as e:
            raise NotFoundError(str(e)) from None
        task._run._adopt(_resolve_ns(_namespace_check, _current_namespace))
        task._ns = task._run._ns
        self._init(task, other._rec)
        _check_namespace(self)

    @classmethod
    def _make(cls, task: Task, record: Any) -> DataArtifact:
        obj = cls.__new__(cls)
        obj._init(task, record)
        return obj

    def _init(self, task: Task, record: Any) -> None:
        self._setup(f"{task.pathspec}/{record.name}", task._root, task._ns)
        self._task, self._rec = task, record
        self._value: Any = _UNSET

    @property
    def data(self) -> Any:
        if self._value is _UNSET:
            try:
                store = _artifact_store(self._root)
                self._value = serializers.load(store, self._rec.digest, self._rec.encoding, self._rec.size)
            except _core.Error as e:
                raise type(e)(f"artifact {self.pathspec}: {e}") from e
        return self._value

    size = property(lambda self: self._rec.size, doc="Bytes of the stored value, uncompressed.")
    type = property(lambda self: self._rec.type, doc="The value's Python type name.")
    sha = property(lambda self: self._rec.digest)
    encoding = property(lambda self: self._rec.encoding)
    parent = property(lambda self: self._task)
    user_tags = property(lambda self: self._task.user_tags)
    system_tags = property(lambda self: self._task.system_tags)
    created_at = property(lambda self: self._task.finished_at)
    finished_at = property(lambda self: self._task.finished_at)

    @property
    def origin_pathspec(self) -> str | None:
        origin = self._task.origin_pathspec
        return f"{origin}/{self.id}" if origin else None


class MetaflowArtifacts:
    """`task.artifacts`: DataArtifacts by attribute or name, iterable (Metaflow's named tuple)."""

    def __init__(self, artifacts: list[DataArtifact]):
        self._list = artifacts
        self._by_name = {a.id: a for a in artifacts}

    def __getattr__(self, name: str) -> DataArtifact:
        if name.startswith("__") or name not in self.__dict__.get("_by_name", {}):
            raise AttributeError(name)
        return self._by_name[name]

    def __getitem__(self, key: int | str) -> DataArtifact:
        return self._list[key] if isinstance(key, int) else self._by_name[key]

    def __iter__(self) -> Iterator[DataArtifact]:
        return iter(self._list)

    def __len__(self) -> int:
        return len(self._list)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or name in self._list

    def __dir__(self) -> list[str]:
        return sorted(self._by_name)

    def __repr__(self) -> str:
        return f"MetaflowArtifacts({', '.join(self._by_name)})"


class MetaflowData:
    """`task.data`: artifact values as attributes, each read on first access."""

    def __init__(self, task: Task):
        self._task = task

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        art = self._task._artifact(name)
        if art is None:
            raise AttributeError(f"task {self._task.pathspec} has no artifact '{name}'")
        return art.data

    def __contains__(self, name: str) -> bool:
        return name in self._task._records_by_name()

    def __dir__(self) -> list[str]:
        return sorted(n for n in self._task._records_by_name() if not n.startswith("_"))

    def __repr__(self) -> str:
        return f"<MetaflowData: {', '.join(self.__dir__())}>"
