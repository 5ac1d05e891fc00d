"""Where the datastore is and who the user is: what both a run and a
notebook's client need, kept apart from the run machinery (runtime.py) so
that reading past runs imports none of it."""

from __future__ import annotations

import os

DATASTORE_DIR = ".cairn"


def datastore_root(explicit: str | None = None) -> str:
    """--datastore-root, else $CAIRN_HOME, else the nearest .cairn folder
    above the working directory, else ./.cairn."""
    if explicit:
        return os.path.abspath(explicit)
    env = os.environ.get("CAIRN_HOME")
    if env:
        return os.path.abspath(env)
    here = os.getcwd()
    while True:
        candidate = os.path.join(here, DATASTORE_DIR)
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return os.path.abspath(DATASTORE_DIR)
        here = parent


def username() -> str:
    for var in ("CAIRN_USER", "METAFLOW_USER", "USER", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import getpass  # rarely reached: $USER is usually set

        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"
