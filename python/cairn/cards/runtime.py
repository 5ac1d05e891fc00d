"""Cards in the task process: `current.card` while the step runs, live
refreshes, and rendering and storing every @card of the step when it ends.

A card never fails its task: a render that raises or runs past the card's
`timeout` becomes a card that shows the error (Metaflow's rule)."""

from __future__ import annotations

import contextlib
import html
import os
import signal
import sys
import time
from typing import Any

from ..runtime.step_plan import CARD_PREFIX, drop_card_records
from . import default_card
from .components import CardComponent, Error
from .default_card import RENDER_TIME_MARK
from .page import page

# Artifact records of cards are named CARD_PREFIX (step_plan.py) + their
# position on the step; their `type` column says "card/<type>/<id>"
# (docs/datastore.md).
CARD_TYPES = ("default", "blank", "html")
EDITABLE = ("default", "blank")


class CardTimeout(BaseException):
    """BaseException, so that no component's own error handling swallows it."""


class StepCard:
    """One @card of the running step and the components added to it."""

    def __init__(self, attributes: dict[str, Any], index: int, session: CardSession | None):
        self.type = attributes.get("type") or "default"
        self.id = attributes.get("id")
        self.options = dict(attributes.get("options") or {})
        self.timeout = float(attributes.get("timeout") or 45)
        self.index = index
        self._session = session
        self._components: list[CardComponent] = []

    def append(self, component: CardComponent, id: str | None = None) -> None:
        if not isinstance(component, CardComponent):
            print(f"@card: cannot add {type(component).__name__} to a card; use a component from "
                  f"cairn.cards (Markdown, Table, ...)", file=sys.stderr)
            return
        if id is not None:
            component.component_id = str(id)
        self._components.append(component)

    def extend(self, components: list[CardComponent]) -> None:
        for c in components:
            self.append(c)

    def clear(self) -> None:
        self._components.clear()

    @property
    def components(self) -> dict[str, CardComponent]:
        return {c.component_id: c for c in self._components if c.component_id}

    def refresh(self, data: Any = None) -> None:
        if self._session is not None:
            self._session.write_live(self)

    def __len__(self) -> int:
        return len(self._components)


class _NoCard(StepCard):
    """What `current.card[...]` gives for a card that does not exist: it
    warns once and drops what it is given, as Metaflow does."""

    def __init__(self, why: str):
        super().__init__({}, -1, None)
        self._why = why
        self._warned = False

    def append(self, component: CardComponent, id: str | None = None) -> None:
        if not self._warned:
            print(f"@card: {self._why}; the component is dropped", file=sys.stderr)
            self._warned = True


class CardCollector:
    """`current.card`: appends go to the step's default editable card (the
    only `default`/`blank` card, or the one without an id); `[id]` picks one."""

    def __init__(self, cards: list[StepCard]):
        self._cards = cards
        editable = [c for c in cards if c.type in EDITABLE]
        if len(editable) == 1:
            self._default: StepCard = editable[0]
        else:
            unnamed = [c for c in editable if c.id is None]
            if len(unnamed) == 1:
                self._default = unnamed[0]
            elif not cards:
                self._default = _NoCard("this step has no @card")
            else:
                self._default = _NoCard("this step has several editable cards; pick one with current.card['ID']")

    def __getitem__(self, card_id: str) -> StepCard:
        for c in self._cards:
            if c.id == card_id:
                return c
        return _NoCard(f"this step has no @card with id '{card_id}'")

    def __contains__(self, card_id: str) -> bool:
        return any(c.id == card_id for c in self._cards)

    def append(self, component: CardComponent, id: str | None = None) -> None:
        self._default.append(component, id=id)

    def extend(self, components: list[CardComponent]) -> None:
        self._default.extend(components)

    def clear(self) -> None:
        self._default.clear()

    @property
    def components(self) -> dict[str, CardComponent]:
        return self._default.components

    def refresh(self, data: Any = None) -> None:
        """Re-renders the editable cards now, so that viewers of the running
        task (`cairn ui`) see the new state."""
        for c in self._cards:
            if c.type in EDITABLE:
                c.refresh(data)


_ACTIVE: CardCollector | None = None


def current_card() -> CardCollector:
    return _ACTIVE if _ACTIVE is not None else CardCollector([])


class CardSession:
    """The cards of one task: made before the step runs, finished after."""

    def __init__(self, attributes: list[dict[str, Any]], info: dict[str, Any]):
        self.info = info
        self.started_at = time.time()
        self.cards = [StepCard(a, i, self) for i, a in enumerate(attributes)]
        self.live_dir = ""
        root = info.get("root")
        if root:
            self.live_dir = os.path.join(root, "live", str(info.get("run_id")))

    def live_path(self, card: StepCard) -> str:
        return os.path.join(self.live_dir, f"{self.info.get('task_id')}.{self.info.get('attempt', 0)}."
                                           f"{card.index}.html")

    def write_live(self, card: StepCard) -> None:
        if not self.live_dir:
            return
        text = self.render(card, {"live": True})
        path = self.live_path(card)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            os.makedirs(self.live_dir, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except OSError as e:  # a full disk, say: the step goes on, only the live view lags
            print(f"@card: could not write the live card: {e}", file=sys.stderr)

    def remove_live(self) -> None:
        for card in self.cards:
            with contextlib.suppress(OSError):
                os.unlink(self.live_path(card))

    def title(self) -> str:
        i = self.info
        return f"{i.get('flow_name')}/{i.get('run_id')}/{i.get('step_name')}/{i.get('task_id')}"

    def render(self, card: StepCard, context: dict[str, Any]) -> str:
        """The card's HTML; a failure or timeout gives a card showing it."""
        try:
            started = time.perf_counter()
            text = _with_timeout(card.timeout, lambda: self._render(card, context))
            return text.replace(RENDER_TIME_MARK, f"{time.perf_counter() - started:.3f}", 1)
        except BaseException as e:  # a card never fails the task
            if isinstance(e, KeyboardInterrupt):
                raise
            title = "timed out" if isinstance(e, CardTimeout) else "failed to render"
            what = f"card {card.id!r}" if card.id else f"{card.type} card"
            error = Error(e, title=f"The {what} {title}")._html()
            return page(self.title(), f"<h1>{html.escape(self.title())}</h1>{error}")

    def _render(self, card: StepCard, context: dict[str, Any]) -> str:
        if card.type == "html":
            attr = card.options.get("attribute", "html")
            flow = context.get("flow")
            if flow is None:
                return page(self.title(), "<p>The HTML card is made when the step ends.</p>")
            value = getattr(flow, attr, None)
            if value is None:
                raise ValueError(f"the html card shows self.{attr}, which the step did not set")
            return str(value)
        body = "".join(c._html() for c in card._components)
        if card.type == "default":
            head = f"<h1>{html.escape(self.title())}</h1>"
            body = head + body + default_card.sections(self, card, context)
        return page(self.title(), body)

    def finish(self, flow: Any, ctx: Any, records: list[list[Any]],
               result: dict[str, Any]) -> list[list[Any]]:
        """Renders and stores every card; returns the task's artifact records
        with the card records of its inputs replaced by its own."""
        global _ACTIVE
        _ACTIVE = None
        kept = drop_card_records(records)
        context = {"flow": flow, "ctx": ctx, "records": kept, "result": result}
        for card in self.cards:
            text = self.render(card, context)
            rec = ctx.save(f"{CARD_PREFIX}{card.index}", text.encode("utf-8"))
            rec[3] = f"card/{card.type}/{card.id or ''}"
            kept.append(rec)
        self.remove_live()
        return kept


def _with_timeout(seconds: float, fn: Any) -> Any:
    import threading  # here, not at import: its at-fork hook costs each forked task
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return fn()

    def expire(signum: int, frame: Any) -> None:
        raise CardTimeout(f"rendering took longer than the card's timeout of {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def start_task(decorators: list[Any], info: dict[str, Any]) -> CardSession:
    """Sets up `current.card` for a task (info: what `current` knows, plus
    attempt, root and spec); the session's finish() stores the cards."""
    global _ACTIVE
    session = CardSession([dict(d.attributes) for d in decorators if d.name == "card"], info)
    _ACTIVE = CardCollector(session.cards)
    return session


def end_task() -> None:
    """No card session: `current.card` drops what it is given."""
    global _ACTIVE
    _ACTIVE = None


__all__ = ["CARD_PREFIX", "CardCollector", "CardSession", "StepCard", "current_card", "end_task", "start_task"]
