"""A cairn error that escapes a flow file before its command line runs (a
decorator with a bad argument, applied when the file is imported) is
printed as the CLI prints errors, `headline: message`, not as a traceback.
CAIRN_DEBUG=1 keeps the traceback. Only Python's own hook is replaced, so
IPython and other hosts keep theirs."""

from __future__ import annotations

import os
import sys
from types import TracebackType


def _hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    from .errors import CairnError, headline

    if isinstance(value, CairnError) and not os.environ.get("CAIRN_DEBUG"):
        print(f"{headline(value)}: {value}", file=sys.stderr)
        return
    sys.__excepthook__(kind, value, tb)


def install() -> None:
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _hook
