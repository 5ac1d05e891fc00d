"""FlowSpec: the base class of every flow. Outside a task it is a class that
describes a graph; inside a task process an instance holds the step's
artifacts, loading inherited ones only when they are read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import CairnException, MergeArtifactsError

if TYPE_CHECKING:
    from .runtime.task_data import TaskContext


class FlowSpec:
    """Subclass this, add @step methods that end in self.next(...), and call
    the class at the bottom of the file: `if __name__ == "__main__": MyFlow()`."""

    _cairn_task: TaskContext | None = None

    def __init__(self, use_cli: bool = True):
        if use_cli:
            from .cli import main

            main(type(self))

    # --- artifacts ---------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: an inherited artifact not yet read.
        ctx = self.__dict__.get("_cairn_task")
        if ctx is not None and name in ctx.inherited:
            value = ctx.load_inherited(name)
            self.__dict__[name] = value
            return value
        raise AttributeError(f"flow {type(self).__name__} has no artifact or attribute '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        ctx = self.__dict__.get("_cairn_task")
        if ctx is not None and (name in ctx.param_names or _is_flow_attribute(type(self), name)):
            raise AttributeError(
                f"Cannot set self.{name} in step '{ctx.step}': Flow level attributes and "
                f"Parameters are not modifiable"
            )
        object.__setattr__(self, name, value)

    def __iter__(self) -> Iterator[Any]:
        """The flow's steps (bound methods) in source order: Metaflow's legacy
        FlowSpec.__iter__, which iterates over the steps too."""
        from .graph import collect_steps

        return iter([getattr(self, info.name) for info in collect_steps(type(self))])

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def script_name(self) -> str:
        import inspect
        import os

        return os.path.basename(inspect.getsourcefile(type(self)) or "")

    # --- transitions -------------------------------------------------------
    def next(self, *targets: Any, foreach: str | None = None, condition: str | None = None,
             num_parallel: int | None = None) -> None:
        ctx = self._task("self.next")
        if ctx.next_call is not None:
            raise CairnException(f"step '{ctx.step}' called self.next more than once")
        if len(targets) == 1 and isinstance(targets[0], dict):
            names = [_step_name(t) for t in targets[0].values()]
        else:
            names = [_step_name(t) for t in targets]
        if num_parallel is not None:
            from .parallel import PARALLEL_VAR

            if isinstance(num_parallel, bool) or not isinstance(num_parallel, int) or num_parallel < 1:
                raise CairnException(f"step '{ctx.step}': num_parallel must be a whole number of at "
                                     f"least 1, got {num_parallel!r}")
            ctx.num_parallel = num_parallel
            foreach = PARALLEL_VAR
        ctx.next_call = (names, foreach, condition)

    # --- foreach -----------------------------------------------------------
    @property
    def input(self) -> Any:
        frame = self._task("self.input").innermost_foreach()
        if frame is None:
            raise AttributeError("self.input exists only in a step inside a foreach")
        return frame.value

    @property
    def index(self) -> int | None:
        ctx = self.__dict__.get("_cairn_task")
        frame = ctx.innermost_foreach() if ctx else None
        return None if frame is None else frame.index

    def foreach_stack(self) -> list[tuple[int, int, Any]]:
        """(index, number of splits, value) for each enclosing foreach, outermost first."""
        return [(f.index, f.width, f.value) for f in self._task("foreach_stack").foreach_frames()]

    # --- joins -------------------------------------------------------------
    def merge_artifacts(self, inputs: Any, exclude: list[str] | None = None,
                        include: list[str] | None = None) -> None:
        """Copies into this join every artifact on which all inputs agree. A
        conflict is an error unless this step already set that artifact."""
        ctx = self._task("merge_artifacts")
        if not ctx.is_join:
            raise CairnException("merge_artifacts can only be called in a join step")
        if exclude and include:
            raise CairnException("merge_artifacts takes include or exclude, not both")
        exclude_set = set(exclude or [])
        records: dict[str, list[Any]] = {}
        for inp in inputs:
            for name, rec in inp._cairn_artifacts.items():
                records.setdefault(name, []).append(rec)
        if include:
            missing = [n for n in include if n not in records]
            if missing:
                raise MergeArtifactsError(
                    f"merge_artifacts(include=...) names artifacts no input has: {', '.join(missing)}",
                    missing,
                )
        conflicts = []
        agreed: dict[str, Any] = {}
        for name, recs in records.items():
            if name.startswith("_") or name in exclude_set or (include and name not in include):
                continue
            if name in self.__dict__ or name in ctx.param_names:
                continue
            if len({r[1] for r in recs}) == 1:
                agreed[name] = recs[0]  # all inputs that have it agree
            else:
                conflicts.append(name)
        if not conflicts:
            ctx.inherited.update(agreed)  # all or nothing: a conflict sets none
        else:
            names = ", ".join(sorted(conflicts))
            raise MergeArtifactsError(
                f"step '{ctx.step}' cannot merge artifacts whose values differ between its inputs: "
                f"{names}. Set them in the join (self.<name> = ...) before calling "
                f"merge_artifacts, or exclude them.",
                sorted(conflicts),
            )

    def _task(self, what: str) -> TaskContext:
        ctx = self.__dict__.get("_cairn_task")
        if ctx is None:
            raise CairnException(f"{what} can only be used inside a running step")
        return ctx


def _is_flow_attribute(flow_cls: type, name: str) -> bool:
    """A class-level value of the flow (a constant, a Parameter, a Config),
    which a step may read but not assign."""
    if name.startswith("_"):
        return False
    for klass in flow_cls.__mro__:
        if klass is FlowSpec or klass is object:
            break
        if name in klass.__dict__:
            attr = klass.__dict__[name]
            return not (callable(attr) or isinstance(attr, (property, staticmethod, classmethod)))
    return False


def _step_name(target: Any) -> str:
    name = getattr(target, "__name__", None)
    if name is None or not callable(target):
        raise CairnException(f"self.next expects steps (self.<step>), got {target!r}")
    return name
