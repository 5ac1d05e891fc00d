"""The top-level options a flow's definition adds to its command line, as in
Metaflow (`python flow.py --config cfg cfg.json --branch x run`): configs
and the @project branch; and reading them before any command builds the graph."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..config import ConfigError, configs_of, read_configs
from ..project import select_branch

# Commands that build the flow's graph, and so need its configs.
_GRAPH_COMMANDS = ("run", "resume", "check", "show", "step")


def add_top_level_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", dest="config_files", nargs=2, action="append", default=[],
                        metavar=("NAME", "FILE"), help="read config NAME from FILE (repeatable)")
    parser.add_argument("--config-value", dest="config_values", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="config NAME given inline, e.g. JSON (repeatable)")
    parser.add_argument("--branch", help="@project flows: run on branch test.BRANCH (prod.BRANCH with --production)")
    parser.add_argument("--production", action="store_true", help="@project flows: run on the production branch")


def prepare(flow_cls: type, args: argparse.Namespace) -> None:
    """Reads the configs and records the branch before the command runs:
    from the command line, or for `resume` from the origin run (a resume
    never uses other configs), or for `step` from the task's payload."""
    from ..home import username

    select_branch(getattr(args, "branch", None), getattr(args, "production", False))
    files, values = getattr(args, "config_files", []), getattr(args, "config_values", [])
    if getattr(args, "command", None) not in _GRAPH_COMMANDS:
        return
    if not configs_of(flow_cls):
        if files or values:
            name = (files or values)[0][0]
            raise ConfigError(f"flow {flow_cls.__name__} has no config named '{name}' (it has no Config)")
        read_configs(flow_cls)
        return
    if args.command == "resume":
        if files or values:
            raise ConfigError("resume uses the configs of the run it resumes; drop --config/--config-value")
        read_configs(flow_cls, stored=_origin_configs(flow_cls, args))
    elif args.command == "step":
        read_configs(flow_cls, stored=_payload_configs())
    else:
        read_configs(flow_cls, files, values, user=username())


def _origin_configs(flow_cls: type, args: argparse.Namespace) -> dict[str, Any]:
    from ..home import datastore_root
    from ..runtime.run import run_configs

    return run_configs(flow_cls.__name__, datastore_root(args.datastore_root), args.origin_run_id)


def _payload_configs() -> dict[str, Any]:
    from ..runtime.task_data import decode_payload

    path = os.environ.get("CAIRN_TASK_PAYLOAD")
    if not path:
        return {}
    with open(path, "rb") as f:
        return decode_payload(f.read()).get("flow", {}).get("configs", {})
