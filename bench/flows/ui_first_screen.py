"""ui-runs / ui-run10k: start cairn ui's server in this process (port 0)
over the case's datastore and time the requests of a page's first screen,
cold (the server's first answer) and again warm. Prints one JSON line.

    ui_first_screen.py runs               # the runs page: app, then /api/runs
    ui_first_screen.py run FLOW RUN_ID    # a run page: the run, its widest step's first tasks"""

import json
import sys
import threading
import time
import urllib.request

from cairn.home import datastore_root
from cairn.ui.api import UIData
from cairn.ui.server import UIServer


def get(url: str) -> bytes:
    with urllib.request.urlopen(url) as resp:
        return resp.read()


def first_screen(base: str, argv: list[str]) -> dict:
    get(base + "/")
    get(base + "/static/app.js")
    if argv[0] == "runs":
        page = json.loads(get(base + "/api/runs?limit=50"))
        return {"rows": len(page["runs"]), "total": page["total"]}
    flow, run_id = argv[1], argv[2]
    run = json.loads(get(f"{base}/api/runs/{flow}/{run_id}"))
    widest = max(run["steps"], key=lambda s: s["total"])
    tasks = json.loads(get(f"{base}/api/runs/{flow}/{run_id}/steps/{widest['name']}/tasks?limit=50"))
    return {"rows": len(tasks["tasks"]), "total": tasks["total"], "timeline": len(run["timeline"])}


def main() -> None:
    server = UIServer(UIData(datastore_root()), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = server.url.rstrip("/")
    t0 = time.perf_counter()
    got = first_screen(base, sys.argv[1:])
    t1 = time.perf_counter()
    first_screen(base, sys.argv[1:])
    t2 = time.perf_counter()
    server.shutdown()
    print(json.dumps({"first_screen_s": t1 - t0, "warm_s": t2 - t1, **got}))


if __name__ == "__main__":
    main()
