"""list: in a fresh process, list every run of a flow and find its latest
successful run. Prints one JSON line."""

import json
import sys
import time

t0 = time.perf_counter()
from cairn import Flow

t1 = time.perf_counter()
flow = Flow(sys.argv[1])
runs = list(flow.runs())
latest = flow.latest_successful_run
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "list_s": t2 - t1, "runs": len(runs), "latest": str(latest.id)}))
