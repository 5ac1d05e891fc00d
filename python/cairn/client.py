"""Read past runs: Metaflow(), Flow, Run, Step, Task, DataArtifact.

Everything is lazy: listing reads only SQLite (through the C++ datastore),
and an artifact's blob is read only when its value is asked for, then kept
for the object's lifetime."""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

from . import _core, serializers
from .errors import CairnException, NamespaceMismatchError, NotFoundError
from .runtime import datastore_root, username

_UNSET = object()
_namespace: Any = _UNSET
_stores: dict[str, Any] = {}


# --- namespaces --------------------------------------------------------------
def default_namespace() -> str:
    global _namespace
    _namespace = f"user:{username()}"
    return _namespace


def namespace(ns: str | None) -> str | None:
    """Sets the namespace (a tag such as 'user:alice'); None means every run."""
    global _namespace
    _namespace = ns
    return ns


def get_namespace() -> str | None:
    if _namespace is _UNSET:
        return default_namespace()
    return _namespace  # type: ignore[return-value]


def _datastore() -> Any:
    root = datastore_root()
    ds = _stores.get(root)
    if ds is None:
        if not os.path.exists(os.path.join(root, "cairn.db")):
            raise NotFoundError(f"no cairn datastore at {root} (run a flow first, or set CAIRN_HOME)")
        ds = _stores[root] = _core.Datastore(root, readonly=True)
    return ds


def _artifact_store() -> Any:
    return _core.ArtifactStore(_datastore().root)


def _split(pathspec: str, parts: int, kind: str) -> list[str]:
    items = pathspec.strip("/").split("/")
    if len(items) != parts or not all(items):
        raise CairnException(f"{kind} pathspec must have {parts} parts separated by '/', got '{pathspec}'")
    return items


def _run_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise NotFoundError(f"run id must be a number, got '{text}'") from None


class CairnObject:
    _NAME = "object"

    def __init__(self, pathspec: str):
        self.pathspec = pathspec
        self.id = pathspec.rsplit("/", 1)[-1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.pathspec}')"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.pathspec == self.pathspec  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.pathspec))

    def __contains__(self, item: str) -> bool:
        try:
            self[item]  # type: ignore[index]
            return True
        except (KeyError, NotFoundError):
            return False


# --- Metaflow / Flow ---------------------------------------------------------
class Metaflow:
    """Every flow in the datastore."""

    @property
    def flows(self) -> list[Flow]:
        return [Flow(name) for name in _datastore().flows()]

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows)

    def __repr__(self) -> str:
        return "Metaflow()"


class Flow(CairnObject):
    def __init__(self, pathspec: str, _namespace_check: bool = True):
        super().__init__(pathspec.strip("/"))
        if "/" in self.pathspec:
            raise CairnException(f"a Flow is named by its class name, got '{pathspec}'")
        self._check = _namespace_check
        if pathspec not in _datastore().flows():
            raise NotFoundError(f"flow '{pathspec}' does not exist in {_datastore().root}")

    def runs(self, *tags: str) -> Iterator[Run]:
        """Runs newest first, in the current namespace, having all `tags`."""
        ns = get_namespace() if self._check else None
        for rec in _datastore().runs(self.id):
            all_tags = set(rec.tags) | set(rec.system_tags)
            if ns is not None and ns not in all_tags:
                continue
            if any(t not in all_tags for t in tags):
                continue
            yield Run._from_record(rec)

    def __iter__(self) -> Iterator[Run]:
        return self.runs()

    def __getitem__(self, run_id: str) -> Run:
        return Run(f"{self.id}/{run_id}", _namespace_check=self._check)

    @property
    def latest_run(self) -> Run | None:
        return next(self.runs(), None)

    @property
    def latest_successful_run(self) -> Run | None:
        return next((r for r in self.runs() if r.successful), None)

    @property
    def created_at(self) -> float | None:
        runs = _datastore().runs(self.id)
        return runs[-1].created_at if runs else None


# --- Run -------------------------------------------------------------------
class Run(CairnObject):
    def __init__(self, pathspec: str, _namespace_check: bool = True, _record: Any = None):
        flow, run_id = _split(pathspec, 2, "Run")
        super().__init__(f"{flow}/{run_id}")
        self._rec = _record if _record is not None else _datastore().get_run(flow, _run_id(run_id))
        self._tasks: list[Any] | None = None
        if _namespace_check:
            ns = get_namespace()
            if ns is not None and ns not in self.tags:
                raise NamespaceMismatchError(
                    f"run {self.pathspec} is not in the current namespace '{ns}'; "
                    f"use namespace(None) to see every run"
                )

    @classmethod
    def _from_record(cls, rec: Any) -> Run:
        return cls(f"{rec.flow}/{rec.run_id}", _namespace_check=False, _record=rec)

    def _records(self) -> list[Any]:
        if self._tasks is None:
            self._tasks = list(_datastore().tasks(self._rec.run_id))
        return self._tasks

    def _refresh(self) -> None:
        self._rec = _datastore().get_run(self._rec.flow, self._rec.run_id)
        self._tasks = None

    @property
    def parent(self) -> Flow:
        return Flow(self._rec.flow, _namespace_check=False)

    @property
    def steps(self) -> list[Step]:
        names: list[str] = []
        for t in self._records():
            if t.step != "_parameters" and t.step not in names:
                names.append(t.step)
        return [Step(f"{self.pathspec}/{n}", _run=self) for n in reversed(names)]

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __getitem__(self, step: str) -> Step:
        if not any(t.step == step for t in self._records()):
            raise KeyError(f"run {self.pathspec} has no step '{step}'")
        return Step(f"{self.pathspec}/{step}", _run=self)

    created_at = property(lambda self: self._rec.created_at)
    user = property(lambda self: self._rec.user)

    @property
    def finished_at(self) -> float | None:
        return self._rec.finished_at or None

    @property
    def finished(self) -> bool:
        return self._rec.status != "running"

    @property
    def successful(self) -> bool:
        return self._rec.status == "succeeded"

    @property
    def status(self) -> str:
        return self._rec.status

    @property
    def user_tags(self) -> frozenset[str]:
        return frozenset(self._rec.tags)

    @property
    def system_tags(self) -> frozenset[str]:
        return frozenset(self._rec.system_tags)

    @property
    def tags(self) -> frozenset[str]:
        return self.user_tags | self.system_tags

    @property
    def parameters(self) -> dict[str, Any]:
        return json.loads(self._rec.params_json)

    @property
    def origin_pathspec(self) -> str | None:
        return f"{self._rec.flow}/{self._rec.origin_run_id}" if self._rec.origin_run_id else None

    @property
    def end_task(self) -> Task | None:
        ends = [t for t in self._records() if t.step == "end" and t.status == "succeeded"]
        return Task._from_record(self._rec.flow, ends[-1]) if ends else None

    @property
    def data(self) -> MetaflowData | None:
        end = self.end_task
        return end.data if end else None

    def add_tag(self, tag: str) -> None:
        self.add_tags([tag])

    def add_tags(self, tags: list[str]) -> None:
        _tag_writer().add_tags(self._rec.run_id, list(tags))
        self._refresh()

    def remove_tag(self, tag: str) -> None:
        self.remove_tags([tag])

    def remove_tags(self, tags: list[str]) -> None:
        _tag_writer().remove_tags(self._rec.run_id, list(tags))
        self._refresh()

    def replace_tag(self, old: str, new: str) -> None:
        self.replace_tags([old], [new])

    def replace_tags(self, old: list[str], new: list[str]) -> None:
        w = _tag_writer()
        w.remove_tags(self._rec.run_id, list(old))
        w.add_tags(self._rec.run_id, list(new))
        self._refresh()


def _tag_writer() -> Any:
    return _core.Datastore(_datastore().root, readonly=False)


# --- Step / Task -------------------------------------------------------------
class Step(CairnObject):
    def __init__(self, pathspec: str, _namespace_check: bool = True, _run: Run | None = None):
        flow, run_id, step = _split(pathspec, 3, "Step")
        super().__init__(pathspec)
        self._run = _run or Run(f"{flow}/{run_id}", _namespace_check=_namespace_check)
        if _run is None and not any(t.step == step for t in self._run._records()):
            raise NotFoundError(f"step {pathspec} does not exist")

    def _records(self) -> list[Any]:
        return [t for t in self._run._records() if t.step == self.id]

    @property
    def parent(self) -> Run:
        return self._run

    @property
    def tasks(self) -> list[Task]:
        return [Task._from_record(self._run._rec.flow, t) for t in self._records()]

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __getitem__(self, task_id: str) -> Task:
        for t in self._records():
            if str(t.task_id) == str(task_id):
                return Task._from_record(self._run._rec.flow, t)
        raise KeyError(f"step {self.pathspec} has no task '{task_id}'")

    @property
    def task(self) -> Task | None:
        tasks = self.tasks
        return tasks[0] if tasks else None

    @property
    def created_at(self) -> float | None:
        recs = self._records()
        return min(t.started_at for t in recs) if recs else None

    @property
    def finished_at(self) -> float | None:
        recs = self._records()
        return max(t.finished_at for t in recs) if recs else None


class Task(CairnObject):
    def __init__(self, pathspec: str, _namespace_check: bool = True, _record: Any = None):
        flow, run_id, step, task_id = _split(pathspec, 4, "Task")
        super().__init__(pathspec)
        self._flow = flow
        if _record is None:
            if _namespace_check:
                Run(f"{flow}/{run_id}")
            _record = _datastore().get_task(_run_id(run_id), _run_id(task_id))
            if _record.step != step:
                raise NotFoundError(f"task {pathspec} does not exist")
        self._rec = _record
        self._artifacts: dict[str, DataArtifact] | None = None

    @classmethod
    def _from_record(cls, flow: str, rec: Any) -> Task:
        return cls(f"{flow}/{rec.run_id}/{rec.step}/{rec.task_id}", _namespace_check=False, _record=rec)

    def _artifact_map(self) -> dict[str, DataArtifact]:
        if self._artifacts is None:
            self._artifacts = {a.name: DataArtifact(f"{self.pathspec}/{a.name}", a)
                               for a in self._rec.artifacts}
        return self._artifacts

    @property
    def artifacts(self) -> list[DataArtifact]:
        return list(self._artifact_map().values())

    def __iter__(self) -> Iterator[DataArtifact]:
        return iter(self.artifacts)

    def __getitem__(self, name: str) -> DataArtifact:
        try:
            return self._artifact_map()[name]
        except KeyError:
            raise KeyError(f"task {self.pathspec} has no artifact '{name}'") from None

    @property
    def data(self) -> MetaflowData:
        return MetaflowData(self._artifact_map(), self.pathspec)

    @property
    def parent(self) -> Step:
        return Step(self.pathspec.rsplit("/", 1)[0], _namespace_check=False)

    successful = property(lambda self: self._rec.status == "succeeded")
    finished = property(lambda self: True)
    created_at = property(lambda self: self._rec.started_at)
    finished_at = property(lambda self: self._rec.finished_at)

    @property
    def index(self) -> int | None:
        return None if self._rec.foreach_index < 0 else self._rec.foreach_index

    @property
    def origin_pathspec(self) -> str | None:
        return self._rec.origin or None

    @property
    def attempts(self) -> list[Any]:
        return list(self._rec.attempts)

    @property
    def current_attempt(self) -> int:
        return max((a.attempt for a in self._rec.attempts), default=0)

    @property
    def exception(self) -> dict[str, Any] | None:
        result = json.loads(self._rec.result_json or "{}")
        if "exception" in result:
            return result["exception"]
        if self._rec.status == "failed" and self._rec.attempts:
            return {"type": "TaskFailure", "message": self._rec.attempts[-1].reason, "traceback": ""}
        return None

    def _log(self, stream: str, attempt: int | None = None) -> str:
        n = self.current_attempt if attempt is None else attempt
        # A cloned task's logs are those of its origin.
        run_id, step, task_id = self._rec.run_id, self._rec.step, self._rec.task_id
        if self._rec.origin:
            _, run_id, step, task_id = self._rec.origin.split("/")
        path = os.path.join(_datastore().root, "logs", str(run_id), step, f"{task_id}.{n}.{stream}")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    @property
    def stdout(self) -> str:
        return self._log("out")

    @property
    def stderr(self) -> str:
        return self._log("err")


# --- artifacts -----------------------------------------------------------------
class DataArtifact(CairnObject):
    def __init__(self, pathspec: str, record: Any):
        super().__init__(pathspec)
        self._rec = record
        self._value: Any = _UNSET

    @property
    def data(self) -> Any:
        if self._value is _UNSET:
            try:
                segments = _artifact_store().get(self._rec.digest)
            except _core.Error as e:
                raise type(e)(f"artifact {self.pathspec}: {e}") from e
            self._value = serializers.loads(segments, self._rec.encoding)
        return self._value

    size = property(lambda self: self._rec.size)
    type = property(lambda self: self._rec.type)
    sha = property(lambda self: self._rec.digest)

    @property
    def finished_at(self) -> float | None:
        return None


class MetaflowData:
    """`task.data`: artifacts as attributes, loaded on first access."""

    def __init__(self, artifacts: dict[str, DataArtifact], pathspec: str):
        self._artifacts = artifacts
        self._pathspec = pathspec

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        art = self._artifacts.get(name)
        if art is None:
            raise AttributeError(f"task {self._pathspec} has no artifact '{name}'")
        return art.data

    def __contains__(self, name: str) -> bool:
        return name in self._artifacts

    def __dir__(self) -> list[str]:
        return sorted(self._artifacts)

    def __repr__(self) -> str:
        return f"<MetaflowData: {', '.join(sorted(self._artifacts))}>"
