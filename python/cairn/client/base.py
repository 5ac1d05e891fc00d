"""What every client object shares: the namespace (Metaflow's
`namespace()`), the datastore and blobs it reads, pathspec checks, and
CairnObject, the base of Flow, Run, Step, Task and DataArtifact.

Modules build upward: base.py, then task.py (Step, Task, DataArtifact),
then run.py (Metaflow, Flow, Run), then display.py, which reads them all;
none imports a module above it. Where a lower object needs a higher class
(a Task made from a pathspec needs its Run), it takes it from
CairnObject.kinds, filled as each class is defined."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar

from .. import _core, serializers
from ..checks import check_id
from ..errors import CairnException, InvalidPathspecError, NamespaceMismatchError, NotFoundError
from ..home import datastore_root, username
from ..metadata_provider import selected_root

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
            from ..stores import CachedStore

            CachedStore(self.root, remote).fetch(digest)
            return from_file(digest)
        raise NotFoundError(f"blob {digest} not found, neither in objects/ nor in the database")

    def path_of(self, digest: str) -> str:
        return self.files.path_of(digest)


def _remote_blobs() -> Any:
    from ..stores import remote_from_env

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
# How a notebook shows an object, by format ("html", "text"): display.py,
# which the package imports, fills it, so this module never imports it.
RENDERERS: dict[str, Callable[[Any], str]] = {}


class CairnObject:
    """What every client object has: pathspec, id, namespace, display."""

    pathspec: str
    id: str
    _root: str
    _ns: str | None
    # Each client class by name, as it is defined (see the module's docstring).
    kinds: ClassVar[dict[str, type[CairnObject]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        CairnObject.kinds.setdefault(cls.__name__, cls)

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

    def _repr_html_(self) -> str | None:
        render = RENDERERS.get("html")
        return render(self) if render else None  # None: IPython shows the text form

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # IPython: a summary when shown alone, the short repr inside a list.
        render = RENDERERS.get("text")
        if cycle or printer.indentation or render is None:
            printer.text(repr(self))
        else:
            printer.text(render(self))
