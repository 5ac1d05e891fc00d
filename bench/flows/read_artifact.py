"""read: in a fresh process, import the framework and load the 200 MB random
artifact of the latest ArtifactsFlow run. Prints one JSON line: the import
time and the load time as seen from inside."""

import json
import time

t0 = time.perf_counter()
from cairn import Flow  # after t0: the import is what is timed

t1 = time.perf_counter()
value = Flow("ArtifactsFlow").latest_run["start"].task.data.random
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "len": len(value), "last": value[-1]}))
