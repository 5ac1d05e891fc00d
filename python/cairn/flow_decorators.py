"""Flow-level decorators (on the FlowSpec class): @exit_hook, and @schedule,
@trigger, @trigger_on_finish (recorded with each run; they take effect only
when a flow is deployed to a scheduler, which cairn does not do yet).
@project lives in project.py."""

from __future__ import annotations

import sys
from typing import Any, Callable, ClassVar

from .decorators import Decorator
from .errors import CairnException


class FlowDecorator(Decorator):
    """Base of flow decorators: usable bare (`@schedule`) or called
    (`@schedule(daily=True)`); arguments may refer to configs."""

    @staticmethod
    def _decorates(obj: Any) -> bool:
        return isinstance(obj, type)  # what inspect.isclass tests, without importing inspect

    def __call__(self, flow_cls: type) -> type:
        if not isinstance(flow_cls, type):
            raise CairnException(f"@{self.name} decorates a flow class, not {type(flow_cls).__name__}")
        decos = dict(flow_cls.__dict__.get("_cairn_flow_decorators", {}))
        if self.name in decos:
            raise CairnException(f"flow {flow_cls.__name__} has @{self.name} twice")
        decos[self.name] = self
        flow_cls._cairn_flow_decorators = decos  # type: ignore[attr-defined]
        return flow_cls

    def value(self, key: str) -> Any:
        from .config import resolve_value

        return resolve_value(self.attributes[key])

    def record(self) -> dict[str, Any]:
        """What the run stores of this decorator (JSON)."""
        from .config import resolve_value

        return {k: _jsonable(resolve_value(v)) for k, v in self.attributes.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return getattr(value, "__name__", None) or repr(value)


def flow_decorator(flow_cls: type, name: str) -> FlowDecorator | None:
    for klass in flow_cls.__mro__:
        deco = klass.__dict__.get("_cairn_flow_decorators", {}).get(name)
        if deco is not None:
            return deco
    return None


class exit_hook(FlowDecorator):  # noqa: N801 - Metaflow's name
    """Functions run in the run process after the run ends: `on_success` ones
    if it succeeded, `on_error` ones if not. A function that takes an argument
    gets the client's Run. A failing hook is reported and does not change the
    run's status or exit code."""

    name = "exit_hook"
    defaults: ClassVar[dict[str, Any]] = {"on_success": [], "on_error": [], "options": {}}

    def __init__(self, **attributes: Any):
        super().__init__(**attributes)
        for key in ("on_success", "on_error"):
            hooks = self.attributes[key]
            if callable(hooks):
                hooks = [hooks]
            if not isinstance(hooks, (list, tuple)) or not all(callable(h) for h in hooks):
                raise CairnException(f"@exit_hook({key}=...) takes a list of functions")
            self.attributes[key] = list(hooks)


class schedule(FlowDecorator):  # noqa: N801
    """Recorded with each run; takes effect when the flow is deployed."""

    name = "schedule"
    defaults: ClassVar[dict[str, Any]] = {"hourly": False, "daily": True, "weekly": False, "cron": None,
                                          "timezone": None}

    def __init__(self, **attributes: Any):
        super().__init__(**attributes)
        if "daily" not in attributes and any(attributes.get(k) for k in ("hourly", "weekly", "cron")):
            self.attributes["daily"] = False  # daily is the default only when nothing else is asked


class trigger(FlowDecorator):  # noqa: N801
    """Recorded with each run; takes effect when the flow is deployed."""

    name = "trigger"
    defaults: ClassVar[dict[str, Any]] = {"event": None, "events": [], "options": {}}


class trigger_on_finish(FlowDecorator):  # noqa: N801
    """Recorded with each run; takes effect when the flow is deployed."""

    name = "trigger_on_finish"
    defaults: ClassVar[dict[str, Any]] = {"flow": None, "flows": [], "options": {}}


DEPLOY_TIME = ("schedule", "trigger", "trigger_on_finish")


def deploy_time_record(flow_cls: type) -> dict[str, Any]:
    """{decorator name: its arguments} of the deploy-time decorators, for the GraphSpec."""
    out = {}
    for name in DEPLOY_TIME:
        deco = flow_decorator(flow_cls, name)
        if deco is not None:
            out[name] = deco.record()
    return out


def run_exit_hooks(flow_cls: type, summary: dict[str, Any] | None, root: str) -> None:
    """Runs the flow's @exit_hook functions for a finished run (summary None:
    the run failed before it had an id)."""
    deco = flow_decorator(flow_cls, "exit_hook")
    if deco is None:
        return
    succeeded = bool(summary) and summary.get("status") == "succeeded"
    hooks: list[Callable[..., Any]] = deco.attributes["on_success" if succeeded else "on_error"]
    run = None
    if summary and summary.get("run_id"):
        from .client import Run

        try:
            run = Run(f"{flow_cls.__name__}/{summary['run_id']}", _namespace_check=False, _root=root)
        except Exception:  # noqa: BLE001 - hooks still run, without the Run
            run = None
    for hook in hooks:
        label = getattr(hook, "__name__", repr(hook))
        try:
            if _takes_argument(hook):
                hook(run)
            else:
                hook()
        except Exception:  # noqa: BLE001 - a hook never changes the run's outcome
            sys.stdout.flush()
            print(f"Exit hook {label} failed (the run's status is unchanged):", file=sys.stderr)
            import traceback

            traceback.print_exc(file=sys.stderr)
    sys.stdout.flush()


def _takes_argument(func: Callable[..., Any]) -> bool:
    import inspect

    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


__all__ = ["exit_hook", "schedule", "trigger", "trigger_on_finish"]
