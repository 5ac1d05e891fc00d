"""`cairn gc` and `cairn du`: what the datastore holds, and removing what no
run needs (stale temp files; with --blobs, blobs no artifact refers to). The
work is C++ (cpp/store/gc.h); the safety rules are in docs/datastore.md."""

from __future__ import annotations

import argparse
import re

from .errors import CairnException
from .tool import tool

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90s', '30m', '1h', '2d' or a number of seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise CairnException(f"--grace: '{text}' is not a duration (e.g. 30m, 1h, 2d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _count(pair: tuple[int, int], what: str) -> str:
    files, size = pair
    return f"{files:,} {what} ({human_bytes(size)})"


def _open(root: str | None, readonly: bool):
    from . import _core
    from .home import datastore_root

    path = datastore_root(root)
    ds = _core.Datastore(path, readonly=True)  # a clear error if there is none; never creates one
    return ds if readonly else _core.Datastore(path, readonly=False)


def _configure_gc(p: argparse.ArgumentParser) -> None:
    p.add_argument("--blobs", action="store_true",
                   help="also remove blobs that no artifact of any run refers to")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    p.add_argument("--grace", default="1h",
                   help="never remove a blob modified more recently than this (default 1h)")


@tool("gc", "remove stale temp files and, with --blobs, unreferenced blobs", _configure_gc)
def _gc(args: argparse.Namespace) -> int:
    grace = parse_duration(args.grace)
    ds = _open(args.datastore_root, readonly=args.dry_run)
    report = ds.collect_garbage(blobs=args.blobs, dry_run=args.dry_run, grace_s=grace)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {_count(report['temp'], 'stale temp files')}")
    if args.blobs:
        print(f"{verb} {_count(report['blobs'], 'unreferenced blobs')} "
              f"and {_count(report['small_blobs'], 'small blobs')}")
        if report["kept"][0]:
            why = f"younger than {args.grace}"
            if report["live_runs"]:
                why += f" or than the oldest of {report['live_runs']} running run(s)"
            print(f"kept {_count(report['kept'], 'unreferenced blobs')}: {why}")
    return 0


def _configure_du(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grace", default="1h", help="as for gc, for the reclaimable figure (default 1h)")


@tool("du", "what the datastore holds: runs, blobs, bytes, and what gc can reclaim", _configure_du)
def _du(args: argparse.Namespace) -> int:
    usage = _open(args.datastore_root, readonly=True).measure_usage(grace_s=parse_duration(args.grace))
    r = usage["reclaimable"]
    reclaimable = (f"{_count(r['blobs'], 'blobs')}, {_count(r['small_blobs'], 'small blobs')}"
                   " and the temp files: cairn gc --blobs")
    rows = [
        ("runs", f"{usage['runs']:,} ({usage['live_runs']} running)"),
        ("blobs", _count(r["scanned"], "files")),
        ("small blobs", _count(usage["small_blobs"], "rows in the database")),
        ("database", human_bytes(usage["database_bytes"])),
        ("logs", human_bytes(usage["log_bytes"])),
        ("stale temp files", _count(r["temp"], "files")),
        ("reclaimable", reclaimable),
    ]
    for name, value in rows:
        print(f"{name:<17}{value}")
    return 0
