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
        parser = build_parser(flow_cls)
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
        return COMMANDS[args.command](flow_cls, args)
    except KeyboardInterrupt as e:
        print(f"Interrupted: {e}" if str(e) else "Interrupted", file=sys.stderr)
        return 130
    except CairnError as e:
        if args.debug:
            traceback.print_exc()
        print(f"{headline(e)}:\n{e}" if "\n" in str(e) else f"{headline(e)}: {e}", file=sys.stderr)
        return 1


def build_parser(flow_cls: type) -> argparse.ArgumentParser:
    from . import cli_commands  # noqa: F401 - registers the commands
    from .cli_options import add_run_namespace, add_top_level, forbid_abbreviations, parameter_help
    from .flow_options import add_top_level_options
    from .graph import parameters_of
    from .parameters import check_reserved
    from .spin import add_parser as add_spin_parser

    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else flow_cls.__name__
    parser = argparse.ArgumentParser(prog=f"python {prog}", description=(flow_cls.__doc__ or "").strip())
    parser.add_argument("--datastore-root", help="datastore folder (default: $CAIRN_HOME or ./.cairn)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of cairn errors")
    parser.add_argument("--quiet", action="store_true", help="fewer status lines")
    add_top_level_options(parser)
    add_top_level(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def run_options(p: argparse.ArgumentParser) -> None:
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
        add_run_namespace(p)
        p.add_argument("--ray-address", default=None,
                       help="Ray cluster for @ray steps and --with ray (else $CAIRN_RAY_ADDRESS or $RAY_ADDRESS)")
        p.add_argument("--ray-pending-timeout", type=float, default=None, metavar="SECONDS",
                       help="fail a Ray step whose resources stay unavailable this long (default 60)")

    run = sub.add_parser("run", help="run the flow")
    run_options(run)
    for attr, param in parameters_of(flow_cls).items():
        check_reserved(param, run)
        extra: dict[str, Any] = {}
        if param.type is bool:
            extra = {"nargs": "?", "const": "true"}
        run.add_argument(f"--{param.name}", dest=f"param__{attr}", default=None,
                         metavar=param.name.upper().replace("-", "_"), help=parameter_help(param), **extra)

    resume = sub.add_parser("resume", help="re-run a failed run from its failed step, reusing the rest")
    resume.add_argument("step_to_rerun", nargs="?", metavar="STEP", help="re-run from this step")
    resume.add_argument("--origin-run-id", type=int, help="the run to resume (default: the latest)")
    run_options(resume)

    sub.add_parser("check", help="validate the flow")
    show = sub.add_parser("show", help="describe the flow's steps")
    show.add_argument("--format", choices=["text", "dot", "mermaid"], default="text")

    sub.add_parser("ray-node-worker")  # a Ray node's fork server (backends/ray/node_worker.py)
    step = sub.add_parser("step", help="run one task (used by the engine)")
    step.add_argument("step_name", nargs="?", help=argparse.SUPPRESS)

    logs = sub.add_parser("logs", help="print a task's output: RUN_ID/STEP[/TASK_ID]; --engine RUN_ID: the engine's")
    logs.add_argument("pathspec")
    from .logs import add_options

    add_options(logs)

    dump = sub.add_parser("dump", help="print a task's artifacts: RUN_ID/STEP[/TASK_ID]")
    dump.add_argument("pathspec")
    dump.add_argument("--include", help="comma-separated artifact names")
    dump.add_argument("--file", help="write the artifacts to this pickle file")
    dump.add_argument("--max-value-size", type=int, default=1000,
                      help="show only values whose stored size is at most this many bytes (default 1000)")
    dump.add_argument("--private", action="store_true", help="also show private artifacts (names starting with _)")

    from .cards import cli as cards_cli

    cards_cli.add_parser(sub)
    COMMANDS["card"] = cards_cli.run

    tag = sub.add_parser("tag", help="add, remove, replace or list a run's tags")
    tag.add_argument("action", choices=["add", "remove", "replace", "list"])
    tag.add_argument("tags", nargs="*")
    tag.add_argument("--run-id", required=False)
    add_spin_parser(sub)
    forbid_abbreviations(parser)
    return parser


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
