"""`python flow.py check`, `show`, `logs` and `dump`: what a flow is, and
what its past runs printed and stored."""

from __future__ import annotations

import argparse

from ..errors import CairnException, NotFoundError
from ..graph import spec_for
from ..home import datastore_root
from ..logs import add_options as add_log_options
from ..logs import show as show_logs


def add_show(show: argparse.ArgumentParser, flow_cls: type) -> None:
    show.add_argument("--format", choices=["text", "dot", "mermaid"], default="text")


def add_logs(logs: argparse.ArgumentParser, flow_cls: type) -> None:
    logs.add_argument("pathspec")
    add_log_options(logs)


def add_dump(dump: argparse.ArgumentParser, flow_cls: type) -> None:
    dump.add_argument("pathspec")
    dump.add_argument("--include", help="comma-separated artifact names")
    dump.add_argument("--file", help="write the artifacts to this pickle file")
    dump.add_argument("--max-value-size", type=int, default=1000,
                      help="show only values whose stored size is at most this many bytes (default 1000)")
    dump.add_argument("--private", action="store_true", help="also show private artifacts (names starting with _)")


def cmd_check(flow_cls: type, args: argparse.Namespace) -> int:
    spec_for(flow_cls)
    print(f"Validating your flow {flow_cls.__name__}...\n    The graph looks good!")
    return 0


def cmd_show(flow_cls: type, args: argparse.Namespace) -> int:
    from ..show import render

    print(render(spec_for(flow_cls), args.format))
    return 0


def cmd_logs(flow_cls: type, args: argparse.Namespace) -> int:
    """Prints the kept stdout/stderr of a task's attempt (default: the last),
    or with --engine the run's engine log."""
    parts = args.pathspec.strip("/").split("/")
    if parts and parts[0] == flow_cls.__name__:
        parts = parts[1:]
    if not args.engine and len(parts) < 2:
        raise CairnException(f"expected RUN_ID/STEP[/TASK_ID], got '{args.pathspec}'")
    return show_logs(datastore_root(args.datastore_root), flow_cls.__name__, parts, args,
                      "RUN_ID --engine" if args.engine else "RUN_ID/STEP[/TASK_ID]")


def cmd_dump(flow_cls: type, args: argparse.Namespace) -> int:
    """Prints the artifacts of RUN_ID/STEP[/TASK_ID] (name, type, size, short
    repr); --include picks some, --file pickles {task pathspec: {name: value}}."""
    import pickle

    from .. import client
    from ..client.display import dump_lines

    root = datastore_root(args.datastore_root)
    parts = args.pathspec.strip("/").split("/")
    if parts and parts[0] == flow_cls.__name__:
        parts = parts[1:]
    if len(parts) not in (2, 3) or not all(parts):
        raise CairnException(f"dump expects RUN_ID/STEP[/TASK_ID], got '{args.pathspec}'")
    step = client.Step("/".join([flow_cls.__name__, *parts[:2]]), _namespace_check=False, _root=root)
    tasks = [step[parts[2]]] if len(parts) == 3 else list(step)
    include = {n.strip() for n in args.include.split(",") if n.strip()} if args.include else None
    missing = (include or set()) - {name for t in tasks for name in t._artifact_map()
                                    if args.private or include or not name.startswith("_")}
    if missing:
        raise NotFoundError(f"{step.pathspec} has no artifact named {', '.join(sorted(missing))}")
    dumped = {}
    for task in tasks:
        lines, dumped[task.pathspec] = dump_lines(task, include, args.max_value_size,
                                                  show_values=not args.file, private=args.private)
        print("\n".join(lines))
    if args.file:
        try:
            with open(args.file, "wb") as f:
                pickle.dump(dumped, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as e:
            raise CairnException(f"dump --file: cannot write {args.file}: {e.strerror or e}") from None
        print(f"Artifacts of {len(dumped)} task(s) written to {args.file}")
    return 0
