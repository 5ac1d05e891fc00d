"""tasks-10k: in a fresh process, as a notebook would, list the tasks of the
foreach step of a ForeachFlow run and read one artifact (y) from each.
Prints one JSON line: import and read time seen from inside, the task count
and the sum of the values.

    read_tasks.py [K]     the K-th oldest run (default 0: the only one)"""

import json
import sys
import time

t0 = time.perf_counter()
from cairn import Flow

t1 = time.perf_counter()
k = int(sys.argv[1]) if len(sys.argv) > 1 else 0
run = sorted(Flow("ForeachFlow").runs(), key=lambda r: r.created_at)[k]
total = count = 0
for task in run["body"].tasks():
    total += task.data.y
    count += 1
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "read_s": t2 - t1, "tasks": count, "total": total}))
