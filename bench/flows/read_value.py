"""read-numpy / read-dataframe: in a fresh process, import the framework and
load one artifact (a numpy array or a DataFrame) of the latest run of a flow.
Prints one JSON line: import and load time seen from inside, the private
memory the process holds after the load and how much the load added to it
(anonymous pages: heap, stacks and pages copied on write; page cache mapped
from a file is shared and not counted), and a checksum of two values.

    read_value.py FLOW STEP ARTIFACT MODULE   (MODULE: numpy or pandas, imported
                                               before the load, as a notebook has)"""

import json
import sys
import time

t0 = time.perf_counter()
import importlib

from cairn import Flow  # after t0: the imports are what is timed


def private_mb() -> float:
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1024
    return float("nan")


flow, step, name, module = sys.argv[1:5]
importlib.import_module(module)
t1 = time.perf_counter()
before = private_mb()
value = getattr(Flow(flow).latest_run[step].task.data, name)
t2 = time.perf_counter()


values = value.to_numpy() if hasattr(value, "to_numpy") else value
after = private_mb()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "private_mb": after, "load_private_mb": after - before,
                  "nbytes": int(values.nbytes), "corner": float(values.flat[0] + values.flat[-1])}))
