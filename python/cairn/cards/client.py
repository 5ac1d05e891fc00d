"""Reading stored cards: `get_cards(task_or_pathspec)` and the Card objects
it returns (id, type, html, notebook display)."""

from __future__ import annotations

import html as html_mod
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from ..errors import CairnException
from .runtime import CARD_PREFIX


class Card:
    """One stored card of a task."""

    def __init__(self, task: Any, record: Any):
        self._task = task
        self._rec = record
        _, type_, card_id = [*record.type.split("/", 2), "", ""][:3]
        self.type: str = type_ or "default"
        self.id: str | None = card_id or None
        self.hash: str = record.digest
        self._html: str | None = None

    @property
    def html(self) -> str:
        if self._html is None:
            from .. import client as _client

            segments = _client._artifact_store(self._task._root).get(self._rec.digest)
            self._html = bytes(segments[0]).decode("utf-8", errors="replace")
        return self._html

    def get(self) -> str:
        """The card's HTML (Metaflow's name)."""
        return self.html

    @property
    def pathspec(self) -> str:
        return self._task.pathspec

    def save(self, path: str) -> str:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html)
        return path

    def view(self) -> str:
        """Opens the card in a browser; returns the file it wrote."""
        import webbrowser

        fd, path = tempfile.mkstemp(prefix="cairn-card-", suffix=".html")
        os.close(fd)
        self.save(path)
        webbrowser.open("file://" + path)
        return path

    def _repr_html_(self) -> str:
        # sandbox without allow-same-origin: the card's script cannot reach the notebook.
        return (f'<iframe sandbox="allow-scripts" style="width:100%;height:520px;border:1px solid #ddd" '
                f'srcdoc="{html_mod.escape(self.html)}"></iframe>')

    def __repr__(self) -> str:
        label = f"id={self.id!r}, " if self.id else ""
        return f"Card({label}type={self.type!r}, task={self.pathspec!r})"


class CardContainer:
    """The cards of a task, in the order of their @card decorators."""

    def __init__(self, cards: list[Card]):
        self._cards = cards

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[Card]:
        return iter(self._cards)

    def __getitem__(self, i: int) -> Card:
        return self._cards[i]

    def _repr_html_(self) -> str:
        return "".join(c._repr_html_() for c in self._cards) or "<p>no cards</p>"

    def __repr__(self) -> str:
        return f"CardContainer({self._cards!r})"


def card_records(task_record: Any) -> list[Any]:
    recs = [a for a in task_record.artifacts if a.name.startswith(CARD_PREFIX)]
    return sorted(recs, key=lambda a: int(a.name[len(CARD_PREFIX):] or 0))


def get_cards(task: Any, id: str | None = None, type: str | None = None) -> CardContainer:
    """The cards of a task: a client Task or a pathspec FLOW/RUN/STEP/TASK."""
    from ..client import Task

    if isinstance(task, str):
        if task.count("/") != 3:
            raise CairnException(f"get_cards: expected a task pathspec FLOW/RUN/STEP/TASK, got {task!r}")
        task = Task(task, _namespace_check=False)
    elif not isinstance(task, Task):
        raise CairnException(f"get_cards: expected a Task or a pathspec, got {type_name(task)}")
    cards = [Card(task, r) for r in card_records(task._rec)]
    return CardContainer([c for c in cards if (id is None or c.id == id) and (type is None or c.type == type)])


def type_name(obj: Any) -> str:
    return obj.__class__.__name__
