"""The `cairn` command (also `python -m cairn`): the tools that are not tied
to a flow file. A flow file's own commands stay `python flow.py COMMAND`.

Each tool is a module that registers itself with @tool; TOOL_MODULES lists
them, so `cairn --help` shows every tool and `import cairn` imports none."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Callable

# Modules that define tools, imported when the command line is built.
TOOL_MODULES = ["cairn.tool", "cairn.logs", "cairn.ui.command", "cairn.gc"]

Configure = Callable[[argparse.ArgumentParser], None]
Handler = Callable[[argparse.Namespace], int]
TOOLS: dict[str, tuple[str, Configure, Handler]] = {}


def tool(name: str, help: str, configure: Configure | None = None) -> Callable[[Handler], Handler]:
    """Registers `cairn NAME`: configure adds its options, the handler runs it."""

    def register(handler: Handler) -> Handler:
        TOOLS[name] = (help, configure or (lambda p: None), handler)
        return handler

    return register


def build_parser() -> argparse.ArgumentParser:
    for module in TOOL_MODULES:
        importlib.import_module(module)
    parser = argparse.ArgumentParser(
        prog="cairn", allow_abbrev=False,
        description="cairn's tools over a datastore. A flow's own commands: python FLOW.py --help")
    parser.add_argument("--datastore-root", help="datastore folder (default: $CAIRN_HOME or ./.cairn)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of cairn errors")
    sub = parser.add_subparsers(dest="tool", metavar="TOOL")
    for name, (help_text, configure, _) in sorted(TOOLS.items()):
        configure(sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False))
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import CairnError, headline

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.tool:
        parser.print_help()
        return 0
    try:
        return TOOLS[args.tool][2](args)
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    except CairnError as e:
        if args.debug:
            traceback.print_exc()
        print(f"{headline(e)}: {e}", file=sys.stderr)
        return 1


def console_main() -> None:
    sys.exit(main())


@tool("version", "print cairn's version")
def _version(args: argparse.Namespace) -> int:
    from .version import __version__

    print(f"cairn {__version__}")
    return 0


def _configure_runs(p: argparse.ArgumentParser) -> None:
    p.add_argument("flow", nargs="?", help="only this flow's runs")
    p.add_argument("--limit", type=int, default=20, help="newest runs per flow (default 20, 0: all)")


@tool("runs", "list the runs of every flow (or of one), newest first", _configure_runs)
def _runs(args: argparse.Namespace) -> int:
    import time

    from . import _core
    from .home import datastore_root

    ds = _core.Datastore(datastore_root(args.datastore_root), readonly=True)
    flows = [args.flow] if args.flow else ds.flows()
    for flow in flows:
        for r in ds.runs(flow, max(args.limit, 0)):
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at))
            print(f"{flow}/{r.run_id}\t{r.status}\t{r.user}\t{started}")
    return 0
