"""`python flow.py card view | get | list`: a task's stored cards from the
command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import CairnException

if TYPE_CHECKING:
    from ..cards.client import Card


def add_card(card: argparse.ArgumentParser, flow_cls: type) -> None:
    actions = card.add_subparsers(dest="card_action", metavar="ACTION", required=True)
    where = "STEP (latest run), RUN_ID/STEP or RUN_ID/STEP/TASK_ID"
    view = actions.add_parser("view", help="open a card in the browser (or print its file's path)")
    view.add_argument("pathspec", metavar="PATHSPEC", help=where)
    get = actions.add_parser("get", help="write a card's HTML to FILE (stdout without FILE)")
    get.add_argument("pathspec", metavar="PATHSPEC", help=where)
    get.add_argument("file", nargs="?", metavar="FILE")
    listing = actions.add_parser("list", help="list the cards of a task, a step or the latest run")
    listing.add_argument("pathspec", nargs="?", metavar="PATHSPEC", help=where)
    listing.add_argument("--as-json", action="store_true", help="print JSON")
    for p in (view, get, listing):
        p.add_argument("--id", dest="card_id", help="the card's id")
        p.add_argument("--type", dest="card_type", help="only cards of this type")


def _tasks(flow_name: str, pathspec: str | None) -> list[Any]:
    from ..client import Flow, Run

    parts = pathspec.strip("/").split("/") if pathspec else []
    if len(parts) > 3 or any(not p for p in parts):
        raise CairnException(f"card: expected {pathspec!r} to be STEP, RUN_ID/STEP or RUN_ID/STEP/TASK_ID")
    if len(parts) == 1 and not parts[0].isdigit():
        parts = [None, parts[0]]  # type: ignore[list-item]
    run_id = parts[0] if parts else None
    if run_id is None:
        run = Flow(flow_name, _namespace_check=False).latest_run
        if run is None:
            raise CairnException(f"card: flow {flow_name} has no runs yet")
    else:
        run = Run(f"{flow_name}/{run_id}", _namespace_check=False)
    if len(parts) < 2:
        return [t for s in run for t in s]
    step = run[parts[1]]
    return [step[parts[2]]] if len(parts) == 3 else list(step)


def _cards(flow_name: str, args: argparse.Namespace) -> list[Card]:
    from ..cards.client import (
        get_cards,  # here: `--help` builds every command's parser, this one included
    )

    return [c for t in _tasks(flow_name, args.pathspec)
            for c in get_cards(t, id=args.card_id, type=args.card_type)]


def _one(flow_name: str, args: argparse.Namespace) -> Card:
    cards = _cards(flow_name, args)
    if not cards:
        raise CairnException(f"card: no card matches {args.pathspec}" +
                             (f" with id {args.card_id!r}" if args.card_id else ""))
    if len(cards) > 1 and args.card_id is None:
        unnamed = [c for c in cards if c.id is None]
        if len(unnamed) == 1:
            return unnamed[0]
    if len(cards) > 1:
        listing = ", ".join(f"{c.pathspec} {c.type}" + (f" id={c.id}" if c.id else "") for c in cards)
        raise CairnException(f"card: {len(cards)} cards match ({listing}); pick one with --id or a TASK_ID")
    return cards[0]


def _has_browser() -> bool:
    if os.environ.get("BROWSER"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_card(flow_cls: type, args: argparse.Namespace) -> int:
    name = flow_cls.__name__
    if args.card_action == "list":
        cards = _cards(name, args)
        if args.as_json:
            print(json.dumps([{"pathspec": c.pathspec, "id": c.id, "type": c.type, "hash": c.hash}
                              for c in cards], indent=2))
        else:
            for c in cards:
                print(f"{c.pathspec}\t{c.type}\t{c.id or ''}\t{c.hash}")
            if not cards:
                print("no cards", file=sys.stderr)
        return 0
    card = _one(name, args)
    if args.card_action == "get":
        if args.file:
            card.save(args.file)
        else:
            sys.stdout.write(card.html)
        return 0
    import tempfile

    folder = os.path.join(tempfile.gettempdir(), "cairn-cards")
    os.makedirs(folder, exist_ok=True)
    path = card.save(os.path.join(folder, f"{card.pathspec.replace('/', '-')}-{card.hash[:12]}.html"))
    if _has_browser():
        import webbrowser

        if webbrowser.open("file://" + path):
            print(f"Opened {path}")
            return 0
    print(path)
    return 0
