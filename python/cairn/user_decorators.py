"""User-defined decorators, as Metaflow 2.16+ defines them:

- `@user_step_decorator` on a generator function `(step_name, flow, inputs=None,
  attributes=None)`: code before `yield` runs before the step, code after it
  afterwards; `yield {}` skips the step, `yield fn` runs `fn(flow)` instead.
- `UserStepDecorator` subclasses with `init`, `pre_step` and `post_step`.
- `StepMutator` (on a step) and `FlowMutator` (on the flow class), applied
  once before the graph is built, which add or remove decorators."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any, Callable, ClassVar

from .decorators import DECORATORS, StepDecorator, parse_with
from .errors import CairnException


class UserStepDecorator(StepDecorator):
    """Subclass and define any of `init(self, *args, **kwargs)`,
    `pre_step(self, step_name, flow, inputs=None)` and
    `post_step(self, step_name, flow, exception=None)`. `pre_step` may return
    a dict to skip the step or a callable to run instead of it. After a
    failure, `post_step` gets the exception; it is raised again unless
    post_step returns a tuple whose first item is None."""

    is_user_decorator = True
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, *args: Any, **attributes: Any):
        self.attributes = dict(attributes)
        self.args = args
        self.init(*args, **attributes)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        pass  # user decorators are named module.name for --with, never registered

    @property
    def name(self) -> str:  # type: ignore[override]
        return type(self).__name__

    def init(self, *args: Any, **kwargs: Any) -> None:
        pass

    def pre_step(self, step_name: str, flow: Any, inputs: Any = None) -> Any:
        return None

    def post_step(self, step_name: str, flow: Any, exception: BaseException | None = None) -> Any:
        return None

    def steps(self, step_name: str, flow: Any, inputs: Any) -> Iterator[Any]:
        """The decorator as one generator: the protocol run_wrapped drives."""
        replacement = self.pre_step(step_name, flow, inputs)
        try:
            yield replacement
        except Exception as e:  # noqa: BLE001 - handed to post_step, then raised again
            verdict = self.post_step(step_name, flow, e)
            if isinstance(verdict, tuple) and verdict and verdict[0] is None:
                return
            raise
        self.post_step(step_name, flow, None)


class FunctionStepDecorator(UserStepDecorator):
    """What @user_step_decorator makes of a generator function."""

    generator: ClassVar[Callable[..., Any]]

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.generator.__name__

    def steps(self, step_name: str, flow: Any, inputs: Any) -> Iterator[Any]:
        return type(self).generator(step_name, flow, inputs, self.attributes)


def user_step_decorator(func: Callable[..., Any]) -> type[UserStepDecorator]:
    """Makes a step decorator of a generator function
    `f(step_name, flow, inputs=None, attributes=None)` that yields once."""
    if not inspect.isgeneratorfunction(func):
        raise CairnException(
            f"@user_step_decorator needs a generator function (one that yields once): "
            f"{func.__name__} has no yield"
        )
    cls = type(func.__name__, (FunctionStepDecorator,), {
        "generator": staticmethod(func), "__doc__": func.__doc__, "__module__": func.__module__,
        "__qualname__": func.__qualname__,
    })
    return cls


def wrappers_of(decorators: list[Any]) -> list[UserStepDecorator]:
    """The user decorators among a step's decorators, outermost first (the
    decorator written highest runs first, as in Python)."""
    return [d for d in reversed(decorators) if getattr(d, "is_user_decorator", False)]


def run_wrapped(flow: Any, step_name: str, inputs: Any, wrappers: list[UserStepDecorator],
                body: Callable[[], None]) -> bool:
    """Runs `body` inside the user decorators; False if one skipped or
    replaced it (the step's static transition is then taken)."""
    ran = [True]

    def layer(i: int) -> Callable[[], None]:
        if i == len(wrappers):
            return body
        inner = layer(i + 1)
        deco = wrappers[i]
        return lambda: _drive(deco, flow, step_name, inputs, inner, ran)

    layer(0)()
    return ran[0]


def _drive(deco: UserStepDecorator, flow: Any, step_name: str, inputs: Any,
           inner: Callable[[], None], ran: list[bool]) -> None:
    gen = deco.steps(step_name, flow, inputs)
    try:
        yielded = next(gen)
    except StopIteration:
        raise CairnException(f"@{deco.name} on step '{step_name}' finished without yielding; "
                             f"it must yield exactly once") from None
    if yielded is None:
        target = inner
    elif isinstance(yielded, dict):
        ran[0] = False
        target = None
    elif callable(yielded):
        ran[0] = False

        def target() -> None:
            yielded(flow, inputs) if inputs is not None else yielded(flow)
    else:
        raise CairnException(f"@{deco.name} on step '{step_name}' yielded {type(yielded).__name__}; "
                             f"yield nothing (run the step), {{}} (skip it) or a function (run it instead)")
    try:
        if target is not None:
            target()
    except Exception as e:  # noqa: BLE001 - the decorator may handle it
        try:
            gen.throw(e)
        except StopIteration:
            ran[0] = False  # the decorator swallowed the failure
            return
        raise CairnException(f"@{deco.name} on step '{step_name}' yielded twice; it must yield once") from e
    try:
        next(gen)
    except StopIteration:
        return
    raise CairnException(f"@{deco.name} on step '{step_name}' yielded twice; it must yield once")


# --- mutators ---------------------------------------------------------------

class MutableStep:
    """A step as a mutator sees it: its decorators, which it may change."""

    IGNORE = 1
    OVERRIDE = 2
    ERROR = 3

    def __init__(self, flow_cls: type, name: str):
        self.flow_cls = flow_cls
        self.name = name
        self.func = getattr(flow_cls, name)

    @property
    def decorators(self) -> list[Any]:
        return self.func.__dict__.setdefault("_cairn_decorators", [])

    @property
    def decorator_specs(self) -> Iterator[tuple[str, str, tuple, dict[str, Any]]]:
        """(name, module, args, attributes) of each decorator, as in Metaflow."""
        for d in list(self.decorators):
            yield d.name, type(d).__module__, tuple(getattr(d, "args", ())), dict(d.attributes)

    def add_decorator(self, deco: Any, deco_args: list[Any] | None = None,
                      deco_kwargs: dict[str, Any] | None = None, duplicates: int = IGNORE) -> None:
        if isinstance(deco, str):
            made = parse_with(deco) if ":" in deco or deco not in DECORATORS else DECORATORS[deco]()
            if deco_kwargs:
                made = type(made)(*(deco_args or []), **deco_kwargs)
        elif isinstance(deco, type) and issubclass(deco, StepDecorator):
            made = deco(*(deco_args or []), **(deco_kwargs or {}))
        else:
            raise CairnException(f"add_decorator on step '{self.name}': {deco!r} is not a step decorator")
        existing = [d for d in self.decorators if d.name == made.name]
        if existing:
            if duplicates == self.IGNORE:
                return
            if duplicates == self.ERROR:
                raise CairnException(f"step '{self.name}' already has @{made.name}; a mutator "
                                     f"added it again with duplicates=ERROR")
            self.remove_decorator(made.name)
        self.decorators.append(made)

    def remove_decorator(self, deco_name: str, deco_args: Any = None, deco_kwargs: Any = None) -> bool:
        before = len(self.decorators)
        self.decorators[:] = [d for d in self.decorators if d.name != deco_name]
        return len(self.decorators) != before


class MutableFlow:
    """The flow as a FlowMutator sees it: its steps, configs and parameters."""

    def __init__(self, flow_cls: type):
        self.flow_cls = flow_cls

    @property
    def steps(self) -> Iterator[tuple[str, MutableStep]]:
        from .graph import collect_steps

        for info in collect_steps(self.flow_cls):
            yield info.name, MutableStep(self.flow_cls, info.name)

    @property
    def configs(self) -> Iterator[tuple[str, Any]]:
        from .config import configs_of, resolved_value

        for attr, cfg in configs_of(self.flow_cls).items():
            yield attr, resolved_value(cfg)

    @property
    def parameters(self) -> Iterator[tuple[str, Any]]:
        from .graph import parameters_of

        yield from parameters_of(self.flow_cls).items()

    def __getattr__(self, name: str) -> Any:
        from .config import configs_of, resolved_value

        cfg = configs_of(self.flow_cls).get(name)
        if cfg is None:
            raise AttributeError(f"flow {self.flow_cls.__name__} has no config named '{name}'")
        return resolved_value(cfg)


class _Mutator:
    """Base of both mutators: `init(*args, **kwargs)` takes the arguments;
    usable bare (`@m`) or called (`@m(...)`)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        if len(args) == 1 and not kwargs and (inspect.isfunction(args[0]) or inspect.isclass(args[0])):
            self.init()
            return self(args[0])
        self.init(*args, **kwargs)
        return self

    def init(self, *args: Any, **kwargs: Any) -> None:
        pass

    @property
    def name(self) -> str:
        return type(self).__name__


class StepMutator(_Mutator):
    """On a step (or with --with): `mutate(self, mutable_step)` changes its decorators."""

    is_mutator = True

    def __call__(self, func: Callable) -> Callable:
        func.__dict__.setdefault("_cairn_mutators", []).append(self)
        return func

    def mutate(self, mutable_step: MutableStep) -> None:
        pass


class FlowMutator(_Mutator):
    """On the flow class: `mutate(self, mutable_flow)` changes its steps' decorators."""

    def __call__(self, flow_cls: type) -> type:
        mutators = list(flow_cls.__dict__.get("_cairn_flow_mutators", []))
        flow_cls._cairn_flow_mutators = [self, *mutators]  # type: ignore[attr-defined]
        return flow_cls

    def pre_mutate(self, mutable_flow: MutableFlow) -> None:
        pass

    def mutate(self, mutable_flow: MutableFlow) -> None:
        pass


def apply_mutators(flow_cls: type, extra: list[Any]) -> None:
    """Applies the flow's mutators, once per process and class: flow
    mutators (top one first), then each step's, then --with StepMutators."""
    if flow_cls.__dict__.get("_cairn_mutated"):
        return
    flow_cls._cairn_mutated = True  # type: ignore[attr-defined]
    flow = MutableFlow(flow_cls)
    for m in flow_cls.__dict__.get("_cairn_flow_mutators", []):
        m.pre_mutate(flow)
    for m in flow_cls.__dict__.get("_cairn_flow_mutators", []):
        m.mutate(flow)
    with_mutators = [m for m in extra if isinstance(m, StepMutator)]
    for _name, step in flow.steps:
        for m in list(step.func.__dict__.get("_cairn_mutators", [])) + with_mutators:
            m.mutate(step)


__all__ = ["FlowMutator", "MutableFlow", "MutableStep", "StepMutator", "UserStepDecorator",
           "user_step_decorator"]
