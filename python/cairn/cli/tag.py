"""`python flow.py tag add | remove | replace | list`: a run's user tags."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import CairnException
from ..home import datastore_root


def add_tag(tag: argparse.ArgumentParser, flow_cls: type) -> None:
    tag.add_argument("action", choices=["add", "remove", "replace", "list"])
    tag.add_argument("tags", nargs="*")
    tag.add_argument("--run-id", required=False)


def cmd_tag(flow_cls: type, args: argparse.Namespace) -> int:
    """tag add|remove|replace --run-id ID TAG...: a run's user tags; tag list
    [--run-id ID]: one run's tags, or those of every run in your namespace."""
    from .. import client

    root = datastore_root(args.datastore_root)
    name = flow_cls.__name__
    if args.action == "list" and not args.run_id:
        ns = client.get_namespace()
        flow = client.Flow(name, _namespace_check=False, _root=root)
        runs = [r for r in flow.runs() if ns is None or ns in r.tags]
        print(f"Runs of {name} in namespace {ns}:" if runs else f"{name} has no runs in namespace {ns}")
        for run in runs:
            _print_tags(run)
        return 0
    if not args.run_id:
        raise CairnException(f"tag {args.action} needs --run-id RUN_ID")
    run = client.Run(f"{name}/{args.run_id}", _namespace_check=False, _root=root)
    if args.action in ("add", "remove") and not args.tags:
        raise CairnException(f"tag {args.action} needs at least one TAG")
    if args.action == "add":
        run.add_tags(args.tags)
    elif args.action == "remove":
        run.remove_tags(args.tags)
    elif args.action == "replace":
        if len(args.tags) != 2:
            raise CairnException("tag replace takes two tags: OLD NEW")
        run.replace_tag(args.tags[0], args.tags[1])
    _print_tags(run)
    return 0


def _print_tags(run: Any) -> None:
    print(run.pathspec)
    print(f"    user tags:   {', '.join(sorted(run.user_tags)) or '(none)'}")
    print(f"    system tags: {', '.join(sorted(run.system_tags))}")
