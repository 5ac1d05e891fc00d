"""docs/compatibility.md stays true: every Metaflow name it marks same or
differs imports from cairn, every 'not applicable' one imports and raises a
CairnException when used, every 'absent' one does not import; every command
and option marked same or differs is accepted by a flow's CLI, and the
others are not. A row whose `lands with` column names another branch may be
missing until that branch is merged."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import cairn
import pytest
from cairn import CairnException, FlowSpec, step
from cairn.cli import build_parser
from flows.plain_flow import PlainFlow

TABLE = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
STATUSES = {"same", "differs", "not applicable", "absent"}


def rows(title: str) -> list[list[str]]:
    """The cells of the table under '## title', backticks removed."""
    text = TABLE.read_text()
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]  # past header and rule
    return [[cell.strip().strip("`") for cell in line.strip("|").split("|")] for line in lines]


NAMES = rows("Names")
OPTIONS = rows("Command line")


def test_the_tables_are_well_formed():
    assert len(NAMES) > 50 and len(OPTIONS) > 50
    for row in NAMES:
        assert len(row) == 4 and row[1] in STATUSES and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", row[0]), row
    for row in OPTIONS:
        assert len(row) == 5 and row[2] in STATUSES, row
    assert len({r[0] for r in NAMES}) == len(NAMES)


@pytest.mark.parametrize(("name", "status", "lands_with", "notes"), NAMES, ids=[r[0] for r in NAMES])
def test_each_name(name, status, lands_with, notes):
    present = hasattr(cairn, name)
    if lands_with and not present:
        return  # brought by another branch of this release (the lead clears the column on merge)
    if status in ("same", "differs"):
        assert present, f"{name} is marked {status} but `from cairn import {name}` fails"
    elif status == "absent":
        assert not present and notes, f"{name} is marked absent (with a reason) but cairn has it"
    else:
        assert present, f"{name} is not applicable, but must still import"
        with pytest.raises(CairnException):
            _use(getattr(cairn, name))


def _use(obj: object) -> None:
    """Uses a name as a flow would: calls it; what the call gives, if a
    decorator, decorates the start step or the flow, whose graph is built."""
    from cairn.graph import spec_for
    from cairn.decorators import StepDecorator
    from cairn.flow_decorators import FlowDecorator

    made = obj()  # type: ignore[operator]
    start = step(_start)
    if isinstance(made, StepDecorator):
        start = made(start)
    flow = type("UseFlow", (FlowSpec,), {"start": start, "end": step(_end), "__module__": __name__})
    if isinstance(made, FlowDecorator):
        flow = made(flow)
    spec_for(flow)


def _start(self):
    self.next(self.end)


def _end(self):
    pass


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = build_parser(PlainFlow)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, dict(sub.choices)


@pytest.mark.parametrize(("command", "option", "status", "lands_with", "notes"), OPTIONS,
                         ids=[f"{r[0] or 'top'}:{r[1] or '-'}" for r in OPTIONS])
def test_each_command_and_option(command, option, status, lands_with, notes):
    top, commands = _parsers()
    if command and command not in commands:
        known = False
    elif option:
        known = option in (commands[command] if command else top)._option_string_actions
    else:
        known = True
    if lands_with and not known:
        return
    if status in ("same", "differs"):
        assert known, f"{command} {option} is marked {status} but the CLI does not accept it"
    else:
        assert not known and notes, f"{command} {option} is marked {status} (with a reason) but is accepted"
