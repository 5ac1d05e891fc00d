"""`cairn ui` (also `python -m cairn ui`): registered with cairn.tool."""

from __future__ import annotations

import argparse

from ..tool import tool


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8324, help="port (default 8324; 0: any free port)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--verbose", action="store_true", help="log every request")


@tool("ui", "serve a web UI over the datastore: runs, graphs, timelines, logs, artifacts, cards", _configure)
def _ui(args: argparse.Namespace) -> int:
    from ..home import datastore_root
    from .server import serve

    serve(datastore_root(args.datastore_root), args.host, args.port, not args.no_browser, args.verbose)
    return 0
