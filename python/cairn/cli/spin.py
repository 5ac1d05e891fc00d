"""`python flow.py spin STEP`: run one step again with the inputs of one of
its past tasks (the work is cairn.runtime.spin)."""

from __future__ import annotations

import argparse

from ..home import datastore_root
from ..metadata_provider import SPIN_DIR
from ..runtime.spin import spin


def add_spin(spin: argparse.ArgumentParser, flow_cls: type) -> None:
    spin.add_argument("step_name", metavar="STEP")
    spin.add_argument("--spin-pathspec", metavar="RUN_ID/STEP/TASK_ID",
                      help="the task whose inputs to use (default: the step's first task in the "
                           "latest run that has one)")
    spin.add_argument("--persist", action="store_true",
                      help=f"keep the task and its artifacts in ./{SPIN_DIR}, read with inspect_spin('.')")


def cmd_spin(flow_cls: type, args: argparse.Namespace) -> int:
    return spin(flow_cls, datastore_root(args.datastore_root), args.step_name, args.spin_pathspec, args.persist)
