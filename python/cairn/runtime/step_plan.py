"""What a step's tasks need from its decorators, worked out once per run:
the worker does it before it forks (docs/performance.md: every page a
forked task touches is a copy, so no task should redo it), a fresh
interpreter on its first task. A feature the step does not use costs its
tasks nothing: no card session without @card, no wrappers without user
decorators, no environment update without @environment or @secrets."""

from __future__ import annotations

import contextlib
from typing import Any

# Artifact records of cards are named CARD_PREFIX + their position on the
# step (docs/datastore.md); kept here so that a task without @card can drop
# the ones it inherits without loading the cards package.
CARD_PREFIX = "_cairn_card."


class StepPlan:
    """A step's resolved decorators (its own and --with ones) and what its
    tasks do with them."""

    __slots__ = ("cards", "decorators", "env_decorators", "parallel", "wrappers")

    def __init__(self, decorators: list[Any]):
        from ..decorators import StepDecorator

        self.decorators = decorators
        # Those whose task_env may add variables (@environment, @secrets, ...).
        self.env_decorators = [d for d in decorators if type(d).task_env is not StepDecorator.task_env]
        self.cards = any(d.name == "card" for d in decorators)
        self.parallel = any(d.name == "parallel" for d in decorators)
        self.wrappers: list[Any] = []
        if any(getattr(d, "is_user_decorator", False) for d in decorators):
            from ..user_decorators import wrappers_of

            self.wrappers = wrappers_of(decorators)


_PLANS: dict[tuple[type, str, tuple[str, ...]], StepPlan] = {}


def plan_of(flow_cls: type, step_name: str, with_decorators: list[str]) -> StepPlan:
    """The step's plan, made on first use (raises what resolving its
    decorators raises, e.g. a config reference that does not resolve)."""
    key = (flow_cls, step_name, tuple(with_decorators))
    plan = _PLANS.get(key)
    if plan is None:
        from .. import decorators

        extra = [decorators.parse_with(spec) for spec in with_decorators]
        plan = _PLANS[key] = StepPlan(decorators.with_decorators(getattr(flow_cls, step_name), extra))
    return plan


def prepare(flow_cls: type, spec: dict[str, Any], with_decorators: list[str]) -> None:
    """In the worker, before it forks: every step's plan. A step whose
    decorators fail to resolve is left out, so that its task reports it."""
    for step in spec["steps"]:
        with contextlib.suppress(Exception):  # the task raises it again, in its own output
            plan_of(flow_cls, step["name"], with_decorators)


def drop_card_records(records: list[list[Any]]) -> list[list[Any]]:
    """A step without @card keeps none of the card records it inherited
    (they belong to the task that made them)."""
    return [r for r in records if not str(r[0]).startswith(CARD_PREFIX)]
