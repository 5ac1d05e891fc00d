"""Read past runs: Metaflow(), Flow, Run, Step, Task, DataArtifact.

Metaflow's client object model and names. Listing runs, steps and tasks reads
only SQLite (through the C++ Datastore); an artifact's blob is read, and
decompressed, only when its value is asked for, then kept for the life of the
object that read it. Every object remembers the namespace it was made in and
checks it as Metaflow does: a Run, Step, Task or DataArtifact must belong to a
run carrying the namespace tag, a Flow must have at least one such run.
Objects of a run that is still being written re-read SQLite on each access;
once the run is over, what they read is kept."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from . import _core, serializers
from .checks import check_id, check_tags
from .errors import CairnException, InvalidPathspecError, NamespaceMismatchError, NotFoundError, TaggingError
from .metadata_provider import selected_root
from .home import datastore_root, username

_UNSET: Any = object()
_namespace: Any = _UNSET
_stores: dict[str, Any] = {}
_FORMS = {1: "Flow('FlowName')", 2: "Run('FlowName/RunID')", 3: "Step('FlowName/RunID/StepName')",
          4: "Task('FlowName/RunID/StepName/TaskID')",
          5: "DataArtifact('FlowName/RunID/StepName/TaskID/ArtifactName')"}


class ChildNotFound(NotFoundError, KeyError):
    """`parent[id]` for a child that does not exist: a NotFoundError and, as in
    Metaflow, a KeyError."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- namespaces --------------------------------------------------------------
def default_namespace() -> str:
    """Resets the namespace to 'user:<you>' (CAIRN_USER, METAFLOW_USER or USER)."""
    global _namespace
    _namespace = f"user:{username()}"
    return _namespace


def namespace(ns: str | None) -> str | None:
    """Switches the namespace (any tag, e.g. 'user:alice'); None sees every run."""
    global _namespace
    _namespace = ns
    return get_namespace()


def get_namespace() -> str | None:
    if _namespace is _UNSET:
        if "CAIRN_NAMESPACE" in os.environ:  # `run --namespace NS` sets it for the run's tasks
            return namespace(os.environ["CAIRN_NAMESPACE"] or None)
        return default_namespace()
    return _namespace  # type: ignore[no-any-return]


def _resolve_ns(check: bool, ns: Any) -> str | None:
    if not check:
        return None
    return get_namespace() if ns is _UNSET else ns  # type: ignore[no-any-return]


def _check_namespace(obj: CairnObject) -> None:
    ns = obj._ns
    if ns is not None and ns not in obj.tags:
        owner = sorted(t for t in obj.tags if t.startswith("user:"))
        raise NamespaceMismatchError(
            f"{obj!r} is not in the current namespace '{ns}' (its run is tagged "
            f"{', '.join(owner) or 'with no user'}); switch with namespace(...), or use "
            f"namespace(None) to see every run"
        )


# --- the datastore -----------------------------------------------------------
def _current_root() -> str:
    return selected_root() or datastore_root()


def _datastore(root: str) -> Any:
    ds = _stores.get(root)
    if ds is None:
        try:
            ds = _stores[root] = _core.Datastore(root, readonly=True)
        except NotFoundError as e:
            if not str(e).startswith("no cairn datastore"):
                raise
            raise NotFoundError(f"no cairn datastore at {root} (run a flow first, or set CAIRN_HOME)") from None
    return ds


class _BlobReader:
    """Blobs by digest: files under objects/, or small ones kept in the
    database (docs/datastore.md). Both verify the digest."""

    def __init__(self, root: str):
        self.root = root
        self.files = _core.ArtifactStore(root)

    def get(self, digest: str, size: int | None = None) -> list[memoryview]:
        """The blob's segments; `size` (the value's bytes, if known) says
        where to look first."""
        return self._first(digest, size, self.files.get, lambda data: [memoryview(data)])

    def get_bytes(self, digest: str, size: int | None = None,
                  as_bytearray: bool = False) -> bytes | bytearray:
        """A one-segment blob as a new bytes (bytearray): one copy."""
        return self._first(digest, size, lambda d: self.files.get_bytes(d, as_bytearray),
                           lambda data: bytearray(data) if as_bytearray else data)

    def _first(self, digest: str, size: int | None, from_file: Callable[[str], Any],
               from_row: Callable[[bytes], Any]) -> Any:
        # A small value is a row, not a file: asking the database first saves
        # a failed open() and an exception per value (0.1 s over 10,000 tasks).
        def file() -> Any:
            return from_file(digest)

        def row() -> Any:
            return from_row(_datastore(self.root).get_blob(digest))

        small = size is not None and size <= serializers.INLINE_MAX
        for attempt in (row, file) if small else (file, row):
            try:
                return attempt()
            except NotFoundError:
                pass
        remote = _remote_blobs()
        if remote is not None:  # an S3 datastore: objects/ is this machine's cache of it
            from .stores import CachedStore

            CachedStore(self.root, remote).fetch(digest)
            return from_file(digest)
        raise NotFoundError(f"blob {digest} not found, neither in objects/ nor in the database")

    def path_of(self, digest: str) -> str:
        return self.files.path_of(digest)


def _remote_blobs() -> Any:
    from .stores import remote_from_env

    return remote_from_env()


def _artifact_store(root: str) -> Any:
    """Where blobs are read; the only way the client reads one (tests count calls)."""
    return _BlobReader(root)


def _run_records(root: str, flow: str) -> Iterator[Any]:
    """Run records newest first, fetched in growing pages, each starting
    below the last run of the one before: finding the latest run of a flow
    with 10,000 runs reads a few rows, listing them all reads each once."""
    limit, before = 8, 0
    while True:
        records = _datastore(root).runs(flow, limit, before)
        yield from records
        if len(records) < limit:
            return
        before = records[-1].run_id
        limit *= 4


def _dt(timestamp: float) -> datetime | None:
    # Naive local datetimes, as Metaflow's client returns.
    return datetime.fromtimestamp(timestamp) if timestamp else None


def _split(pathspec: str, parts: int) -> list[str]:
    items = str(pathspec).strip("/").split("/")
    if len(items) != parts or not all(items):
        raise InvalidPathspecError(f"expects {_FORMS[parts]}, got '{pathspec}'")
    return items


def _number(text: str, what: str) -> int:
    try:
        return check_id(text, what)
    except CairnException as e:
        raise NotFoundError(f"{what} does not exist: {str(e).split(': ', 1)[1]}") from None


# --- the object model --------------------------------------------------------
class CairnObject:
    """What every client object has: pathspec, id, namespace, display."""

    pathspec: str
    id: str
    _root: str
    _ns: str | None

    def _setup(self, pathspec: str, root: str, ns: str | None) -> None:
        self.pathspec = pathspec
        self.id = pathspec.rsplit("/", 1)[-1]
        self._root = root
        self._ns = ns

    def _child_args(self) -> dict[str, Any]:
        return {"_namespace_check": self._ns is not None, "_current_namespace": self._ns,
                "_root": self._root}

    @property
    def path_components(self) -> list[str]:
        return self.pathspec.split("/")

    @property
    def user_tags(self) -> frozenset[str]:
        return frozenset()

    @property
    def system_tags(self) -> frozenset[str]:
        return frozenset()

    @property
    def tags(self) -> frozenset[str]:
        return self.user_tags | self.system_tags

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.pathspec}')"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.pathspec == self.pathspec  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.pathspec))

    def __contains__(self, child_id: str) -> bool:
        try:
            self[child_id]  # type: ignore[index]
        except (KeyError, NotFoundError):
            return False
        except NamespaceMismatchError:
            pass  # it exists, as Metaflow answers, even if reading it is refused
        return True

    def __getitem__(self, child_id: str) -> Any:
        raise ChildNotFound(f"{self!r} has no children")

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def _ipython_key_completions_(self) -> list[str]:
        return [child.id for child in self]

    def __getstate__(self) -> dict[str, Any]:
        return {"pathspec": self.pathspec, "root": self._root, "ns": self._ns}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["pathspec"], _namespace_check=state["ns"] is not None,
                            _current_namespace=state["ns"], _root=state["root"])

    def _repr_html_(self) -> str:
        from .client_display import to_html

        return to_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # IPython: a summary when shown alone, the short repr inside a list.
        if cycle or printer.indentation:
            printer.text(repr(self))
        else:
            from .client_display import to_text

            printer.text(to_text(self))


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


# Step, Task and DataArtifact live in client_task.py (this file's size); they
# are imported last because they build on the classes above.
from .client_task import (
    DataArtifact,
    MetaflowArtifacts,
    MetaflowData,
    Step,
    Task,
    TaskException,
)

__all__ = [
    "ChildNotFound", "DataArtifact", "Flow", "Metaflow", "MetaflowArtifacts", "MetaflowData", "Run",
    "Step", "Task", "TaskException", "default_namespace", "get_namespace", "namespace",
]
