"""Page faults of a forked task child, one piece of run_task at a time: each
line forks N children from a process that has cairn and the flow imported
(as the worker does) and has every child do one thing, then _exit.

    python bench/profile/child_faults.py PAYLOADS.jsonl ROOT FLOW.py

Arguments as for task_cost.py. On this VM each fault costs ~2 us, so the
difference to the first line is what that piece costs a task."""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from task_cost import fresh_root, load_flow, load_payloads


def main() -> None:
    from cairn import _core, serializers
    from cairn.graph import spec_for
    from cairn.runtime import task, task_data

    payload_file, src_root, flow_file = sys.argv[1:4]
    body = [p for p in load_payloads(payload_file) if p["step"] == "body"][:300]
    cls = load_flow(flow_file)
    spec = spec_for(cls)
    root = fresh_root(src_root, body[0])
    body = [dict(p, flow=dict(p["flow"], root=root)) for p in body]
    texts = [json.dumps({k: v for k, v in p.items() if k != "blobs"}) for p in body]
    store = _core.ArtifactStore(root)
    task_data.preload(body[0], store)
    null = os.open(os.devnull, os.O_WRONLY)

    def measure(label, fn) -> None:
        r0, n = resource.getrusage(resource.RUSAGE_CHILDREN), len(body)
        t0 = time.perf_counter()
        for i, p in enumerate(body):
            pid = os.fork()
            if pid == 0:
                fn(i, p)
                os._exit(0)
            os.waitpid(pid, 0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
        print(f"{label:40} {(r1.ru_minflt - r0.ru_minflt) / n:5.0f} faults/child, "
              f"child cpu {cpu / n * 1e3:.2f} ms, wall {(time.perf_counter() - t0) / n * 1e3:.2f} ms")

    def run(i, p):
        os.dup2(null, 1)
        task.run_task(cls, spec, p, null)

    measure("empty child (os.fork + os._exit)", lambda i, p: None)
    measure("json.loads(payload)", lambda i, p: json.loads(texts[i]))
    measure("ArtifactStore(root)", lambda i, p: _core.ArtifactStore(root))
    def get_param(i, p):
        rec = p["params"][0]
        small = p.get("blobs", {}).get(rec[1])  # small blobs travel in the payload
        serializers.loads([memoryview(small)] if small is not None else store.get(rec[1]), rec[4])

    measure("load a parameter + unpickle", get_param)
    measure("store.put(new small blob)", lambda i, p: store.put([serializers.dumps(10**9 + i)[0][0]]))
    measure("json.dumps(result) + os.write", lambda i, p: os.write(null, json.dumps(
        {"artifacts": p["inputs"][0]["artifacts"]}).encode()))
    measure("task.run_task(payload)", run)
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
