"""Checks of what users hand cairn (tags, names, ids, environment settings):
each bad value gets a one-line CairnException naming it, never a traceback
from deeper down."""

from __future__ import annotations

import os
from typing import Iterable

from .errors import CairnException

# Metaflow's limit on one tag.
MAX_TAG_LENGTH = 500
# Tags that start with these are facts cairn records about a run (who ran it,
# where, with what): a user tag may not look like one, or `--tag user:alice`
# would move a run into alice's namespace.
SYSTEM_TAG_PREFIXES = ("user:", "runtime:", "python_version:", "cairn_version:", "metaflow_version:",
                       "origin_run:", "schedule:", "project:", "project_branch:")
# Run and task ids are SQLite integers.
MAX_ID = 2**63 - 1


class ConfigurationError(CairnException):
    """An environment variable or setting has a value cairn cannot use."""

    headline = "Bad setting"


def check_text(what: str, text: str) -> str:
    """`text` if it can be stored (UTF-8); else an error naming `what`. Command
    line arguments and environment variables that are not UTF-8 reach Python
    as strings with lone surrogates, which cannot be encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise CairnException(f"{what} is not valid UTF-8: {shown!r}") from None
    return text


def check_tags(tags: Iterable[str] | str, system: Iterable[str] = (), removing: bool = False) -> list[str]:
    """The user tags to add (or remove), refused all together if any is not
    acceptable: the one rule for `run --tag`, `tag add` and `Run.add_tags`.
    A tag that is one of the run's `system` tags passes (adding it does
    nothing, as in Metaflow); so does any tag being removed, whose refusal,
    if it is a system tag, says so."""
    tags = [tags] if isinstance(tags, str) else list(tags)
    system = set(system)
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise CairnException(f"a tag must be a non-empty string, got {tag!r}")
        check_text(f"tag {tag!r}", tag)
        if len(tag) > MAX_TAG_LENGTH:
            raise CairnException(f"a tag is at most {MAX_TAG_LENGTH} characters, got {len(tag)}")
        if any(ord(c) < 32 or ord(c) == 127 for c in tag):
            raise CairnException(f"a tag may not contain control characters (newlines, tabs, ...): {tag!r}")
        if tag.startswith(SYSTEM_TAG_PREFIXES) and not removing and tag not in system:
            raise CairnException(
                f"tag {tag!r} looks like a system tag (prefixes {', '.join(SYSTEM_TAG_PREFIXES)} are "
                f"reserved for what cairn records about a run)")
    return tags


def check_id(text: str, what: str) -> int:
    """`text` as a run or task id; CairnException if it cannot be one."""
    try:
        value = int(text)
    except ValueError:
        raise CairnException(f"{what}: ids are numbers, got '{text}'") from None
    if not 0 <= value <= MAX_ID:
        raise CairnException(f"{what}: an id is a number from 0 to {MAX_ID}, got '{text}'")
    return value


def env_choice(name: str, choices: Iterable[str], default: str) -> str:
    """$name if it is one of `choices`, `default` if unset or empty."""
    value = os.environ.get(name) or default
    choices = list(choices)
    if value not in choices:
        raise ConfigurationError(f"{name} is '{value}'; expected one of {', '.join(choices)}")
    return value
