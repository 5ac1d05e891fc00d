"""The command line of a flow file: `python flow.py run | resume | check |
show | logs | dump | tag | step`, as Metaflow users know it."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import traceback
from typing import Any, Callable

from . import _core
from .cli_options import check_top_level
from .errors import CairnError, headline

COMMANDS: dict[str, Callable[[type, argparse.Namespace], int]] = {}


def command(name: str) -> Callable:
    def register(func: Callable) -> Callable:
        COMMANDS[name] = func
        return func

    return register


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
        return _handler(args.command)(flow_cls, args)
    except KeyboardInterrupt as e:
        print(f"Interrupted: {e}" if str(e) else "Interrupted", file=sys.stderr)
        return 130
    except CairnError as e:
        if args.debug:
            traceback.print_exc()
        print(f"{headline(e)}:\n{e}" if "\n" in str(e) else f"{headline(e)}: {e}", file=sys.stderr)
        return 1


def _handler(name: str) -> Callable[[type, argparse.Namespace], int]:
    """The function of a command, importing only its module."""
    if name == "card":
        from .cards.cli import run

        return run
    if name == "spin":
        from .runtime import spin  # noqa: F401 - registers the command
    else:
        from . import cli_commands  # noqa: F401 - registers the commands
    return COMMANDS[name]


def build_parser(flow_cls: type, argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The flow's command line. Every command is listed (help, choices), but
    only the one `argv` names gets its options: building all of them costs a
    run's start ~4 ms. argv None, or a line whose command is not found (help,
    an unknown word): all of them, so help and errors read the same."""
    from .cli_options import add_top_level, forbid_abbreviations
    from .flow_options import add_top_level_options

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
    if wanted not in _SUBCOMMANDS:
        wanted = None
    for name, (help_text, populate) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text) if help_text else sub.add_parser(name)
        if wanted is None or name == wanted:
            populate(p, flow_cls)
    if wanted != "run":
        _check_parameters(flow_cls)  # as building `run` does: a bad Parameter fails every command
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


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tag", action="append", default=[], help="tag the run (repeatable)")
    p.add_argument("--max-workers", type=_positive_int, default=16, help="tasks running at once (default 16)")
    p.add_argument("--max-num-splits", type=_positive_int, default=100,
                   help="largest foreach allowed (default 100)")
    p.add_argument("--with", dest="with_decorators", action="append", default=[],
                   metavar="DECORATOR", help="add a decorator to every step, e.g. retry or timeout:seconds=30")
    p.add_argument("--run-id-file", help="write the run id to this file")
    p.add_argument("--launcher", choices=["worker", "spawn"], default=None,
                   help="worker: fork tasks from a warm process (default, or $CAIRN_LAUNCHER); "
                        "spawn: a fresh interpreter per task")
    p.add_argument("--quiet", action="store_true", dest="run_quiet")
    from .cli_options import add_run_namespace

    add_run_namespace(p)
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster for @ray steps and --with ray (else $CAIRN_RAY_ADDRESS or $RAY_ADDRESS)")
    p.add_argument("--ray-pending-timeout", type=float, default=None, metavar="SECONDS",
                   help="fail a Ray step whose resources stay unavailable this long (default 60)")


class _OptionNames:
    """Stands in for the `run` parser to learn its option strings without
    building it: what a Parameter's name must not take."""

    def __init__(self) -> None:
        self._option_string_actions: dict[str, None] = {"-h": None, "--help": None}

    def add_argument(self, *names: str, **_: Any) -> None:
        self._option_string_actions.update(dict.fromkeys(names))


def _check_parameters(flow_cls: type) -> None:
    from .graph import parameters_of
    from .parameters import check_reserved

    params = parameters_of(flow_cls)
    if params:
        names = _OptionNames()
        _run_options(names)  # type: ignore[arg-type]
        for param in params.values():
            check_reserved(param, names)


def _add_run(run: argparse.ArgumentParser, flow_cls: type) -> None:
    from .cli_options import parameter_help
    from .graph import parameters_of
    from .parameters import check_reserved

    _run_options(run)
    for attr, param in parameters_of(flow_cls).items():
        check_reserved(param, run)
        extra: dict[str, Any] = {}
        if param.type is bool:
            extra = {"nargs": "?", "const": "true"}
        run.add_argument(f"--{param.name}", dest=f"param__{attr}", default=None,
                         metavar=param.name.upper().replace("-", "_"), help=parameter_help(param), **extra)


def _add_resume(resume: argparse.ArgumentParser, flow_cls: type) -> None:
    resume.add_argument("step_to_rerun", nargs="?", metavar="STEP", help="re-run from this step")
    resume.add_argument("--origin-run-id", type=int, help="the run to resume (default: the latest)")
    _run_options(resume)


def _add_nothing(p: argparse.ArgumentParser, flow_cls: type) -> None:
    pass


def _add_show(show: argparse.ArgumentParser, flow_cls: type) -> None:
    show.add_argument("--format", choices=["text", "dot", "mermaid"], default="text")


def _add_step(step: argparse.ArgumentParser, flow_cls: type) -> None:
    step.add_argument("step_name", nargs="?", help=argparse.SUPPRESS)


def _add_logs(logs: argparse.ArgumentParser, flow_cls: type) -> None:
    from .logs import add_options

    logs.add_argument("pathspec")
    add_options(logs)


def _add_dump(dump: argparse.ArgumentParser, flow_cls: type) -> None:
    dump.add_argument("pathspec")
    dump.add_argument("--include", help="comma-separated artifact names")
    dump.add_argument("--file", help="write the artifacts to this pickle file")
    dump.add_argument("--max-value-size", type=int, default=1000,
                      help="show only values whose stored size is at most this many bytes (default 1000)")
    dump.add_argument("--private", action="store_true", help="also show private artifacts (names starting with _)")


def _add_card(card: argparse.ArgumentParser, flow_cls: type) -> None:
    from .cards.cli import add_arguments

    add_arguments(card)


def _add_tag(tag: argparse.ArgumentParser, flow_cls: type) -> None:
    tag.add_argument("action", choices=["add", "remove", "replace", "list"])
    tag.add_argument("tags", nargs="*")
    tag.add_argument("--run-id", required=False)


def _add_spin(spin: argparse.ArgumentParser, flow_cls: type) -> None:
    from .runtime.spin import add_arguments

    add_arguments(spin)


# Each command, in the order help lists them: (its help, None: unlisted; what adds its options).
_SUBCOMMANDS: dict[str, tuple[str | None, Callable[[argparse.ArgumentParser, type], None]]] = {
    "run": ("run the flow", _add_run),
    "resume": ("re-run a failed run from its failed step, reusing the rest", _add_resume),
    "check": ("validate the flow", _add_nothing),
    "show": ("describe the flow's steps", _add_show),
    "ray-node-worker": (None, _add_nothing),  # a Ray node's fork server (backends/ray/node_worker.py)
    "step": ("run one task (used by the engine)", _add_step),
    "logs": ("print a task's output: RUN_ID/STEP[/TASK_ID]; --engine RUN_ID: the engine's", _add_logs),
    "dump": ("print a task's artifacts: RUN_ID/STEP[/TASK_ID]", _add_dump),
    "card": ("view, get or list a task's cards", _add_card),
    "tag": ("add, remove, replace or list a run's tags", _add_tag),
    "spin": ("run one step again with the inputs of its task in a past run", _add_spin),
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def spec_for(flow_cls: type, with_decorators: list[str] | None = None) -> dict[str, Any]:
    """Builds and validates the GraphSpec; raises GraphError listing every problem."""
    from .decorators import parse_with
    from .graph import build_spec

    spec = build_spec(flow_cls, [parse_with(w) for w in with_decorators or []])
    spec["joins"] = _core.validate_graph(json.dumps(spec))
    return spec


def console_main() -> None:
    """`cairn-py FILE.py ARGS...`: runs a flow file's CLI."""
    import runpy

    if len(sys.argv) < 2:
        print("usage: cairn-py FLOW_FILE.py COMMAND ...", file=sys.stderr)
        sys.exit(2)
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
