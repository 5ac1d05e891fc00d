"""Metaflow(), Flow and Run: the flows of a datastore and their runs, with
a run's tags (the one thing the client writes). Steps and tasks are
task.py; what they share is base.py."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from .. import _core
from ..checks import check_tags
from ..errors import CairnException, NamespaceMismatchError, NotFoundError, TaggingError
from .base import (
    _UNSET,
    CairnObject,
    ChildNotFound,
    _check_namespace,
    _current_root,
    _datastore,
    _dt,
    _number,
    _resolve_ns,
    _run_records,
    _split,
)
from .task import MetaflowData, Step, Task


class Metaflow:
    """Every flow with at least one run in the current namespace."""

    def __init__(self, _root: str | None = None):
        self._root = _root or _current_root()

    @property
    def flows(self) -> list[Flow]:
        return list(self)

    def __iter__(self) -> Iterator[Flow]:
        for name in _datastore(self._root).flows():
            try:
                yield Flow(name, _root=self._root)
            except NamespaceMismatchError:
                continue

    def __getitem__(self, name: str) -> Flow:
        return Flow(name, _root=self._root)

    def __repr__(self) -> str:
        return "Metaflow()"


class Flow(CairnObject):
    """All the runs of one FlowSpec class, newest first."""

    def __init__(self, pathspec: str, _namespace_check: bool = True, _current_namespace: Any = _UNSET,
                 _root: str | None = None):
        (name,) = _split(pathspec, 1)
        self._setup(name, _root or _current_root(), _resolve_ns(_namespace_check, _current_namespace))
        if name not in _datastore(self._root).flows():
            raise NotFoundError(f"Flow('{name}') does not exist in {self._root}")
        if self._ns is not None and next(self.runs(), None) is None:
            raise NamespaceMismatchError(
                f"Flow('{name}') has no run in the current namespace '{self._ns}'; switch with "
                f"namespace(...), or use namespace(None) to see every run"
            )

    def runs(self, *tags: str) -> Iterator[Run]:
        """Runs newest first, in the current namespace, having every one of `tags`."""
        ns = self._ns
        for rec in _run_records(self._root, self.id):
            if ns is not None and ns not in rec.system_tags and ns not in rec.tags:
                continue
            if tags and not set(rec.tags).union(rec.system_tags).issuperset(tags):
                continue
            yield Run._listed(self.id, rec, self._root, ns)

    def __iter__(self) -> Iterator[Run]:
        return self.runs()

    def __getitem__(self, run_id: str) -> Run:
        try:
            return Run(f"{self.id}/{run_id}", **self._child_args())
        except NotFoundError as e:
            raise ChildNotFound(str(e)) from None

    @property
    def latest_run(self) -> Run | None:
        return next(self.runs(), None)

    @property
    def latest_successful_run(self) -> Run | None:
        return next((r for r in self.runs() if r.successful), None)

    @property
    def created_at(self) -> datetime | None:
        """When the flow first ran (its oldest run that still exists)."""
        return _dt(_datastore(self._root).first_run_time(self.id))

    parent = property(lambda self: None)
    origin_pathspec = property(lambda self: None)


class Run(CairnObject):
    """One execution of a flow: its steps, status, tags and the end step's data."""

    def __init__(self, pathspec: str, _namespace_check: bool = True, _current_namespace: Any = _UNSET,
                 _root: str | None = None, _record: Any = None):
        flow, run_id = _split(pathspec, 2)
        self._setup(f"{flow}/{run_id}", _root or _current_root(),
                    _resolve_ns(_namespace_check, _current_namespace))
        if _record is None:
            number = _number(run_id, f"Run('{self.pathspec}')")
            ds = _datastore(self._root)
            try:
                _record = ds.get_run(flow, number)
            except NotFoundError:
                raise NotFoundError(f"Run('{self.pathspec}') does not exist in {self._root}") from None
        self._init_state(_record)
        _check_namespace(self)

    def _init_state(self, rec: Any) -> None:
        self._rec = rec
        self._all: list[Any] | None = None
        self._by_step: dict[str, list[Any]] = {}
        self._end: Task | None = None

    def _adopt(self, ns: str | None) -> Run:
        self._ns = ns
        return self

    @classmethod
    def _listed(cls, flow: str, rec: Any, root: str, ns: str | None) -> Run:
        """A Run from a listing's record, already known to be in namespace
        `ns`: no pathspec to parse, nothing to check (a listing of 10,000
        runs builds 10,000 of these)."""
        run = cls.__new__(cls)
        run.pathspec = f"{flow}/{rec.run_id}"
        run.id = str(rec.run_id)
        run._root, run._ns = root, ns
        run._init_state(rec)
        return run

    def _live(self) -> bool:
        """Whether the run is still being written; while it is, re-reads its record."""
        if self._rec.status == "running":
            self._rec = _datastore(self._root).get_run(self._rec.flow, self._rec.run_id)
        return self._rec.status == "running"

    def _tasks(self, step: str | None = None) -> list[Any]:
        """Task records (of one step), from SQLite; kept once the run is over."""
        live = self._live()
        ds = _datastore(self._root)
        if step is None:
            if self._all is None or live:
                records = list(ds.tasks(self._rec.run_id))
                if live:
                    return records
                self._all = records
            return self._all
        if self._all is not None and not live:
            return [t for t in self._all if t.step == step]
        records = self._by_step.get(step)
        if records is None or live:
            records = list(ds.tasks(self._rec.run_id, step))
            if not live:
                self._by_step[step] = records
        return records

    def steps(self, *tags: str) -> Iterator[Step]:
        """The steps that have tasks, newest first (`end` first), as Metaflow lists them."""
        if not self.tags.issuperset(tags):
            return iter(())
        grouped: dict[str, list[Any]] = {}
        for t in self._tasks():
            if not t.step.startswith("_"):
                grouped.setdefault(t.step, []).append(t)
        order = sorted(grouped, reverse=True,
                       key=lambda s: (min(t.started_at for t in grouped[s]), grouped[s][0].task_id))
        return iter([Step._make(self, name, grouped[name]) for name in order])

    def __iter__(self) -> Iterator[Step]:
        return self.steps()

    def __getitem__(self, step: str) -> Step:
        records = self._tasks(step)
        if not records:
            raise ChildNotFound(f"Step('{self.pathspec}/{step}') does not exist: "
                                f"the run has no task of step '{step}'")
        return Step._make(self, step, records)

    parent = property(lambda self: Flow(self._rec.flow, _namespace_check=False, _root=self._root))
    user_tags = property(lambda self: frozenset(self._rec.tags))
    system_tags = property(lambda self: frozenset(self._rec.system_tags))
    created_at = property(lambda self: _dt(self._rec.created_at))
    user = property(lambda self: self._rec.user)
    parameters = property(lambda self: json.loads(self._rec.params_json))

    @property
    def status(self) -> str:
        """'running', 'succeeded', 'failed', or 'crashed': its engine process
        died (kill -9, power loss) without marking the run; resume it."""
        self._live()
        return self._rec.status  # type: ignore[no-any-return]

    @property
    def finished(self) -> bool:
        """True once the end task is over (as Metaflow's client computes it: a
        run that failed before its end step, or crashed, never finishes)."""
        end = self.end_task
        return bool(end and end.finished)

    @property
    def successful(self) -> bool:
        return self.status == "succeeded"

    @property
    def finished_at(self) -> datetime | None:
        return _dt(self._rec.finished_at) if self.finished else None

    @property
    def origin_pathspec(self) -> str | None:
        """The run this one resumed, or None."""
        return f"{self._rec.flow}/{self._rec.origin_run_id}" if self._rec.origin_run_id else None

    @property
    def end_task(self) -> Task | None:
        """The end step's task (while it runs too), or None."""
        if self._end is None or not self._end.finished:
            records = self._tasks("end")
            if not records:
                return None
            self._end = Task._make(self, records[-1])
        return self._end

    @property
    def data(self) -> MetaflowData | None:
        """The end step's artifacts (None until the end step has run)."""
        end = self.end_task
        return end.data if end and end.finished else None

    # --- tags: Metaflow's rules: adding a system tag does nothing, removing one is an error.
    def add_tag(self, tag: str) -> None:
        self.replace_tags([], [tag])

    def add_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags([], tags)

    def remove_tag(self, tag: str) -> None:
        self.replace_tags([tag], [])

    def remove_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags(tags, [])

    def replace_tag(self, tag_to_remove: str, tag_to_add: str) -> None:
        self.replace_tags([tag_to_remove], [tag_to_add])

    def replace_tags(self, tags_to_remove: Iterable[str], tags_to_add: Iterable[str]) -> None:
        """Removes, then adds, user tags, in one transaction."""
        self._rec = _datastore(self._root).get_run(self._rec.flow, self._rec.run_id)
        system = set(self._rec.system_tags)
        remove, add = check_tags(tags_to_remove, removing=True), check_tags(tags_to_add, system)
        if not remove and not add:
            raise TaggingError("Must add or remove at least one tag")
        for tag in remove:
            if tag in system:
                raise CairnException(f"cannot remove system tag '{tag}' from {self!r}")
        writer = _core.Datastore(self._root, readonly=False)
        try:
            writer.replace_tags(self._rec.run_id, remove, [t for t in add if t not in system])
        finally:
            del writer
        self._rec = _datastore(self._root).get_run(self._rec.flow, self._rec.run_id)
