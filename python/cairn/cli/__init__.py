"""The command line of a flow file: `python flow.py run | resume | check |
show | logs | dump | card | tag | spin | step`, as Metaflow users know it.

This module parses the line and dispatches; each command family lives in
its own module (run.py: run, resume; inspect.py: check, show, logs, dump;
tag.py; card.py; spin.py; task.py: step, ray-node-worker), which defines
`add_<command>(parser, flow_cls)` for its options and `cmd_<command>(flow_cls,
args)`. Only the module of the command given is imported, and none imports
this one back. Options shared by several commands are options.py; the
options a flow's definition adds (configs, @project branch) flow_options.py."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import traceback
from importlib import import_module
from typing import Any, Callable

from ..errors import CairnError, headline
from .options import check_top_level

# Each command, in the order help lists them: its help (None: unlisted) and
# the module of its family.
COMMANDS: dict[str, tuple[str | None, str]] = {
    "run": ("run the flow", "run"),
    "resume": ("re-run a failed run from its failed step, reusing the rest", "run"),
    "check": ("validate the flow", "inspect"),
    "show": ("describe the flow's steps", "inspect"),
    "ray-node-worker": (None, "task"),  # a Ray node's fork server (backends/ray/node_worker.py)
    "step": ("run one task (used by the engine)", "task"),
    "logs": ("print a task's output: RUN_ID/STEP[/TASK_ID]; --engine RUN_ID: the engine's", "inspect"),
    "dump": ("print a task's artifacts: RUN_ID/STEP[/TASK_ID]", "inspect"),
    "card": ("view, get or list a task's cards", "card"),
    "tag": ("add, remove, replace or list a run's tags", "tag"),
    "spin": ("run one step again with the inputs of its task in a past run", "spin"),
}


def main(flow_cls: type, argv: list[str] | None = None) -> None:
    code = run_cli(flow_cls, argv)
    atexit.register(_skip_exit_collection)
    sys.exit(code)


def _skip_exit_collection() -> None:
    """At interpreter exit (after the command, so a caller that catches the
    SystemExit keeps a working collector): the collections Python runs while
    it tears down walk every object the command loaded, ~8 ms of a `run`.
    Objects are still freed as their modules are cleared; only cyclic garbage
    is left to the OS, whose finalizers Python does not promise at exit."""
    import gc

    gc.freeze()


def run_cli(flow_cls: type, argv: list[str] | None = None) -> int:
    try:
        parser = build_parser(flow_cls, sys.argv[1:] if argv is None else argv)
    except CairnError as e:
        print(f"{headline(e)}: {e}", file=sys.stderr)
        return 1
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) == "tag" and not any(e.startswith("-") for e in extra):
        args.tags += extra  # argparse leaves the TAGs of `tag add --run-id 5 t1 t2` unclaimed
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        from .flow_options import prepare

        check_top_level(args)
        prepare(flow_cls, args)
        return _part(args.command, "cmd")(flow_cls, args)
    except KeyboardInterrupt as e:
        print(f"Interrupted: {e}" if str(e) else "Interrupted", file=sys.stderr)
        return 130
    except CairnError as e:
        if args.debug:
            traceback.print_exc()
        print(f"{headline(e)}:\n{e}" if "\n" in str(e) else f"{headline(e)}: {e}", file=sys.stderr)
        return 1


def _part(command: str, kind: str) -> Any:
    """`cmd_<command>` or `add_<command>` (None if it has no options) of the
    command's family module, which is imported only now."""
    module = import_module(f".{COMMANDS[command][1]}", __name__)
    return getattr(module, f"{kind}_{command.replace('-', '_')}", None)


def build_parser(flow_cls: type, argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The flow's command line. Every command is listed (help, choices), but
    only the one `argv` names gets its options: building all of them costs a
    run's start ~4 ms. argv None, or a line whose command is not found (help,
    an unknown word): all of them, so help and errors read the same."""
    from .flow_options import add_top_level_options
    from .options import add_top_level, check_parameter_names, forbid_abbreviations

    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else flow_cls.__name__
    parser = _Parser(prog=f"python {prog}", description=(flow_cls.__doc__ or "").strip())
    parser.add_argument("--datastore-root", help="datastore folder (default: $CAIRN_HOME or ./.cairn)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of cairn errors")
    parser.add_argument("--quiet", action="store_true", help="fewer status lines")
    add_top_level_options(parser)
    add_top_level(parser)
    # prog: what argparse would compute (no positionals come before the
    # command), without making a help formatter to compute it.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", prog=parser.prog)
    wanted = _command_word(parser, argv) if argv is not None else None
    if wanted not in COMMANDS:
        wanted = None
    for name, (help_text, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text) if help_text else sub.add_parser(name)
        add: Callable[[argparse.ArgumentParser, type], None] | None = (
            _part(name, "add") if wanted is None or name == wanted else None)
        if add is not None:
            add(p, flow_cls)
    if wanted != "run":
        check_parameter_names(flow_cls)  # as building `run` does: a bad Parameter fails every command
    forbid_abbreviations(parser)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse checks each new option by making a help formatter, which
    imports shutil and asks the terminal its size; the check needs neither,
    so it gets a fixed width. Help and errors are formatted as usual."""

    _checking = False

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def _get_formatter(self) -> argparse.HelpFormatter:
        if self._checking:
            return self.formatter_class(prog=self.prog, width=80)
        return super()._get_formatter()


def _command_word(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The command argparse will dispatch `argv` to: the first word after the
    top-level options; None for help or an option it cannot size."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("-") or token == "-":
            return token
        if token == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        name, eq, _ = token.partition("=")
        action = parser._option_string_actions.get(name)
        if action is None or isinstance(action, argparse._HelpAction):
            return None
        nargs = action.nargs
        if not eq and nargs is None:
            i += 1
        elif not eq and isinstance(nargs, int):
            i += nargs
        elif not eq:  # "?", "*", "+": how many argparse takes depends on the rest
            return None
        i += 1
    return None


def console_main() -> None:
    """`cairn-py FILE.py ARGS...`: runs a flow file's CLI."""
    import runpy

    if len(sys.argv) < 2:
        print("usage: cairn-py FLOW_FILE.py COMMAND ...", file=sys.stderr)
        sys.exit(2)
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
