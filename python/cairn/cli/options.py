"""Options of the flow CLI shared by several commands (those of run and
resume; the checks of a flow's Parameter names), the ones Metaflow users
type out of habit, and the help text of a flow's parameters.

Top-level `--metadata`, `--datastore` and `--environment` are accepted with
the one value that means something here (`local`); `--pylint`/`--no-pylint`
are accepted and do nothing (cairn checks every graph in C++ anyway); `--with`
may come before the command, as in Metaflow; `--package-suffixes` chooses
what the code package of a run with remote steps holds besides .py files. Every other value is refused with
a one-line reason. No option may be abbreviated: `--datastore=local` must
never be read as `--datastore-root=local`."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import CairnException

# option -> (the value accepted, why any other value is refused)
_LOCAL_ONLY = {
    "metadata": ("local", ("cairn records runs in the SQLite database of its datastore "
                           "(--datastore-root); there is no metadata service")),
    "datastore": ("local", ("cairn stores artifacts in its local datastore; choose its folder "
                            "with --datastore-root DIR")),
    "environment": ("local", ("cairn runs steps in the interpreter that runs the flow; "
                              "install the packages a flow needs into it")),
}


class HabitError(CairnException):
    headline = "Unsupported option"


def add_top_level(parser: argparse.ArgumentParser) -> None:
    """The top-level options Metaflow users pass before the command."""
    for name, (value, _) in _LOCAL_ONLY.items():
        parser.add_argument(f"--{name}", dest=f"habit_{name}", metavar=value.upper(),
                            help=f"accepted for Metaflow compatibility: only '{value}' (the default)")
    pylint = parser.add_mutually_exclusive_group()
    pylint.add_argument("--pylint", dest="habit_pylint", action="store_true",
                        help="accepted for Metaflow compatibility; cairn validates every graph itself")
    pylint.add_argument("--no-pylint", dest="habit_pylint", action="store_false",
                        help="accepted for Metaflow compatibility (no pylint runs either way)")
    parser.add_argument("--with", dest="top_with", action="append", default=[], metavar="DECORATOR",
                        help="add a decorator to every step of run/resume (as run --with)")
    parser.add_argument("--package-suffixes", dest="package_suffixes", metavar=".EXT,...",
                        help="files with these suffixes (besides .py) go into the code package of "
                             "a run with steps on Ray (as CAIRN_PACKAGE_SUFFIXES)")


def add_run_namespace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", dest="run_namespace", default=None, metavar="NS",
                        help="the namespace the client sees inside the run's steps (default: "
                             "user:<you>; an empty value sees every run); the run's own tags are unchanged")


def check_top_level(args: argparse.Namespace) -> None:
    """Refuses the values cairn cannot honour, and hands a top-level --with to
    the command's own list."""
    for name, (value, reason) in _LOCAL_ONLY.items():
        given = getattr(args, f"habit_{name}", None)
        if given is not None and given != value:
            raise HabitError(f"--{name}={given} is not available: {reason} (--{name}={value} is accepted)")
    suffixes = getattr(args, "package_suffixes", None)
    if suffixes is not None:
        listed = [s.strip() for s in suffixes.split(",") if s.strip()]
        wrong = [s for s in listed if not s.startswith(".") or len(s) < 2]
        if wrong or not listed:
            raise HabitError(f"--package-suffixes={suffixes}: expected file suffixes separated by "
                             f"commas, such as .txt,.json")
        # Read where the package is built (backends/package.py), in this process.
        os.environ["CAIRN_PACKAGE_SUFFIXES"] = ",".join(listed)
    top_with = getattr(args, "top_with", [])
    if top_with:
        if not hasattr(args, "with_decorators"):
            raise HabitError(f"--with applies to run and resume, not to '{args.command}'")
        args.with_decorators = top_with + args.with_decorators


def forbid_abbreviations(parser: argparse.ArgumentParser) -> None:
    """allow_abbrev=False on the parser and every sub-parser (argparse reads
    the flag when parsing, so commands registered later are covered too)."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                forbid_abbreviations(sub)


def parameter_help(param: Any) -> str:
    """`run --help` for one parameter, as Metaflow shows it: its help, its
    type, its default (a callable default by its name) and [required]."""
    parts = [param.help] if param.help else []
    parts.append(f"[type: {param.type_name}]")
    default = param.default
    if getattr(param, "show_default", True) and default is not None:
        if callable(default) and not isinstance(default, type):
            shown = f"{getattr(default, '__name__', type(default).__name__)}() (computed at run time)"
        else:
            shown = repr(default)
        parts.append(f"[default: {shown}]")
    if getattr(param, "required", False):
        parts.append("[required]")
    # argparse treats '%' as a format character in help strings.
    return " ".join(parts).replace("%", "%%")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of run and resume."""
    p.add_argument("--tag", action="append", default=[], help="tag the run (repeatable)")
    p.add_argument("--max-workers", type=positive_int, default=16, help="tasks running at once (default 16)")
    p.add_argument("--max-num-splits", type=positive_int, default=100,
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


class _OptionNames:
    """Stands in for the `run` parser to learn its option strings without
    building it: what a Parameter's name must not take."""

    def __init__(self) -> None:
        self._option_string_actions: dict[str, None] = {"-h": None, "--help": None}

    def add_argument(self, *names: str, **_: Any) -> None:
        self._option_string_actions.update(dict.fromkeys(names))


def check_parameter_names(flow_cls: type) -> None:
    """What building the `run` parser checks of each Parameter (its
    arguments, a name no run option has), without building it."""
    from ..graph import parameters_of
    from ..parameters import check_reserved

    params = parameters_of(flow_cls)
    if params:
        names = _OptionNames()
        add_run_options(names)  # type: ignore[arg-type]
        for param in params.values():
            check_reserved(param, names)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
