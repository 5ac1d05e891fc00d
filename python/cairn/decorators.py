"""@step and the step decorators (@retry, @catch, @timeout, @environment,
@resources), with Metaflow's names and arguments."""

from __future__ import annotations

from typing import Any, Callable, ClassVar

from .errors import CairnException


class Decorator:
    """What step and flow decorators share: `name`, keyword arguments checked
    against `defaults`, and bare use (`@retry` works as `@retry()`)."""

    name = ""
    defaults: ClassVar[dict[str, Any]] = {}

    @staticmethod
    def _decorates(target: Any) -> bool:
        return callable(target)

    def __new__(cls, *args: Any, **attributes: Any) -> Any:
        if not args:
            return super().__new__(cls)
        if len(args) == 1 and cls._decorates(args[0]) and not attributes:
            bare = super().__new__(cls)
            bare.__init__()
            return bare(args[0])
        raise CairnException(f"@{cls.name} takes keyword arguments only, e.g. @{cls.name}(...)")

    def __init__(self, **attributes: Any):
        unknown = set(attributes) - set(self.defaults)
        if unknown:
            raise CairnException(
                f"@{self.name} got unknown argument(s) {sorted(unknown)}; "
                f"it takes {sorted(self.defaults)}"
            )
        self.attributes = {**self.defaults, **attributes}


class StepDecorator(Decorator):
    """Base of step decorators. Subclasses set `name` and `defaults`; the
    engine reads their options through `graph_options`. A subclass with a
    name is registered for `--with NAME` (as in Metaflow)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("name"), str) and cls.name:
            DECORATORS[cls.name] = cls

    def __call__(self, func: Callable) -> Callable:
        decos = func.__dict__.setdefault("_cairn_decorators", [])
        if not any(d.name == self.name for d in decos):
            decos.append(self)
        return func

    def graph_options(self) -> dict[str, Any]:
        return {}

    def resolved(self) -> StepDecorator:
        """This decorator with config references in its arguments replaced by
        their values (configs are resolved before the graph is built)."""
        from .config import resolve_value

        values = {k: resolve_value(v) for k, v in self.attributes.items()}
        if all(values[k] is self.attributes[k] for k in values):
            return self
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.attributes = values
        return copy

    def task_env(self) -> dict[str, str]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.attributes.items())
        return f"@{self.name}({args})"


DECORATORS: dict[str, type[StepDecorator]] = {}


class retry(StepDecorator):
    """Metaflow's local runtime retries at once: minutes_between_retries is
    accepted (and checked) but only a scheduler that deploys the flow waits."""

    name = "retry"
    defaults: ClassVar[dict[str, Any]] = {"times": 3, "minutes_between_retries": 2}

    def graph_options(self) -> dict[str, Any]:
        minutes = float(self.attributes["minutes_between_retries"])
        if minutes < 0:
            raise CairnException(f"@retry(minutes_between_retries={minutes:g}) must not be negative")
        return {"retries": int(self.attributes["times"]), "retry_delay_s": 0.0}


class catch(StepDecorator):
    name = "catch"
    defaults: ClassVar[dict[str, Any]] = {"var": None, "print_exception": True}

    def graph_options(self) -> dict[str, Any]:
        return {"catch": True, "catch_var": self.attributes["var"] or ""}


class timeout(StepDecorator):
    name = "timeout"
    defaults: ClassVar[dict[str, Any]] = {"seconds": 0, "minutes": 0, "hours": 0}

    def seconds(self) -> float:
        a = self.attributes
        return float(a["seconds"]) + 60.0 * float(a["minutes"]) + 3600.0 * float(a["hours"])

    def graph_options(self) -> dict[str, Any]:
        # The task raises TimeoutException in the step at step_timeout_s (so
        # that @catch and finally blocks run); the engine kills the process
        # group only if it is still there after a grace period.
        total = self.seconds()
        if total <= 0:
            return {"timeout_s": 0.0}
        return {"timeout_s": total + timeout_grace(total), "step_timeout_s": total}


def timeout_grace(seconds: float) -> float:
    """How long a timed-out step has to unwind before its processes are killed."""
    return min(10.0, max(1.0, seconds / 10.0))


class environment(StepDecorator):
    name = "environment"
    defaults: ClassVar[dict[str, Any]] = {"vars": {}}

    def task_env(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.attributes["vars"] or {}).items()}


class resources(StepDecorator):
    """A local run has the whole machine; on Ray (docs/ray.md) cpu, gpu and
    memory (MB) become the step's resource request."""

    name = "resources"
    defaults: ClassVar[dict[str, Any]] = {"cpu": 1, "gpu": 0, "memory": 4096, "disk": None, "shared_memory": None}

    def graph_options(self) -> dict[str, Any]:
        return {"resources": {k: self.attributes[k] for k in ("cpu", "gpu", "memory")}}


class CardDecorator(StepDecorator):
    """@card: an HTML report of each task of the step (cairn.cards). A step
    may have several, told apart by `id`."""

    name = "card"
    defaults: ClassVar[dict[str, Any]] = {"type": "default", "id": None, "options": {}, "timeout": 45,
                                          "refresh_interval": 5, "save_errors": True}

    def __init__(self, **attributes: Any):
        super().__init__(**attributes)
        from .cards.runtime import CARD_TYPES

        if self.attributes["type"] not in CARD_TYPES:
            raise CairnException(f"@card(type={self.attributes['type']!r}): unknown card type; "
                                 f"cairn has {', '.join(CARD_TYPES)}")

    def __call__(self, func: Callable) -> Callable:
        decos = func.__dict__.setdefault("_cairn_decorators", [])
        cards = [d for d in decos if d.name == "card"]
        if any(d.attributes["id"] == self.attributes["id"] for d in cards):
            which = f"id={self.attributes['id']!r}" if self.attributes["id"] else "no id"
            raise CairnException(f"step '{func.__name__}' has two @card decorators with {which}; "
                                 "give each card its own id")
        # Decorators apply bottom-up; the first @card in the source comes first.
        decos.insert(decos.index(cards[0]) if cards else len(decos), self)
        return func


def card(func: Callable | None = None, **attributes: Any) -> Any:
    """`@card` or `@card(type=..., id=..., options=..., timeout=...)`."""
    if func is not None:
        return CardDecorator()(func)
    return CardDecorator(**attributes)


def parse_with(spec: str) -> Any:
    """Parses `--with retry` / `--with timeout:seconds=30,minutes=1`, and
    `--with module.name[:k=v,...]` for a decorator defined in a module (a
    StepDecorator subclass, a @user_step_decorator or a StepMutator)."""
    name, _, args = spec.partition(":")
    cls = DECORATORS.get(name.strip()) or _imported_decorator(spec, name.strip())
    attributes: dict[str, Any] = {}
    for item in filter(None, args.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise CairnException(f"--with {spec}: expected key=value, got {item!r}")
        attributes[key.strip()] = _literal(value.strip())
    return cls(**attributes)


def _imported_decorator(spec: str, name: str) -> Any:
    import importlib

    module, dot, attr = name.rpartition(".")
    if not dot:
        raise CairnException(f"--with {spec}: unknown decorator; known: {', '.join(sorted(DECORATORS))}, "
                             f"or module.name for one defined in a module")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise CairnException(f"--with {spec}: cannot import {attr} from {module}: {e}") from None
    if not callable(found):
        raise CairnException(f"--with {spec}: {name} is not a decorator")
    return found


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class InvalidStep:
    """What @step returns for something that is not a method, so that `check`
    reports it with the other problems instead of failing at import."""

    def __init__(self, target: Any, reason: str):
        self.target = target
        self.reason = reason
        self._cairn_step = True


def step(func: Callable) -> Callable:
    """Marks a method of a FlowSpec as a step."""
    import inspect

    if not inspect.isfunction(func):
        kind = type(func).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        return InvalidStep(func, f"@step applied to {article} {kind}, not to a method")  # type: ignore[return-value]
    func._cairn_step = True  # type: ignore[attr-defined]
    func.__dict__.setdefault("_cairn_decorators", [])
    return func


def step_decorators(func: Callable) -> list[StepDecorator]:
    return list(getattr(func, "_cairn_decorators", []))


def with_decorators(func: Callable, extra: list[Any]) -> list[StepDecorator]:
    """The step's own decorators plus --with ones it does not already have,
    with config references resolved."""
    own = step_decorators(func)
    names = {d.name for d in own}
    extra = [d for d in extra if not getattr(d, "is_mutator", False) and d.name not in names]
    return [d.resolved() for d in own + extra]


__all__ = ["CardDecorator", "StepDecorator", "card", "catch", "environment", "resources", "retry", "step",
           "timeout"]


# @ray, @kubernetes and @batch register themselves (for --with) once
# imported, as do @pypi and @conda (which say they are not available).
from .backends import decorators as _backend_decorators  # noqa: E402, F401
from . import unsupported as _unsupported  # noqa: E402, F401
