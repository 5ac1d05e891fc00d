#!/usr/bin/env python3
"""Where a Ray task's CPU goes: CPU per task of a `--with ray` foreach of
no-op steps, summed by kind of process (the run's sidecar, slot actors, the
nodes' fork servers with their tasks, raylets, GCS, the S3 server), over the
middle 60 % of the run, slot actors warm (docs/performance.md, "The Ray
backend"). Same cluster and server as bench/ray_bench.py.

    python bench/ray_cpu.py [--items 300]

Counts every process of the machine: run it when nothing else runs."""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
sys.path.insert(0, str(ROOT / "bench"))

from ray_bench import run_foreach  # noqa: E402
from ray_cluster import local_cluster  # noqa: E402
from s3_server import CREDENTIALS, s3_server  # noqa: E402

KINDS = ("moto.server", "raylet", "gcs_server", "cairn.backends.ray.sidecar", "ray-node-worker",
         "SlotActor", "ray::", "log_monitor", "noop")


def kind(cmd: str) -> str:
    return next((k for k in KINDS if k in cmd), "other")


def snapshot() -> dict[int, tuple[str, float]]:
    """pid -> (kind, CPU seconds of it and its reaped children)."""
    import psutil

    out = {}
    for p in psutil.process_iter(["cmdline", "cpu_times"]):
        t = p.info["cpu_times"]
        if t is not None and p.pid != os.getpid():
            out[p.pid] = (kind(" ".join(p.info["cmdline"] or [])),
                          t.user + t.system + t.children_user + t.children_system)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=300)
    args = p.parse_args()
    os.environ.update(CREDENTIALS)
    with tempfile.TemporaryDirectory() as d, s3_server() as server, local_cluster() as cluster:
        tmp = Path(d)
        env = {**os.environ, **server.env(server.new_bucket()), "CAIRN_RAY_ADDRESS": cluster.address,
               "CAIRN_HOME": str(tmp / "ds"), "CAIRN_RAY_NODE_CACHE": str(tmp / "nodes")}
        series: list[tuple[float, dict[int, tuple[str, float]]]] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                series.append((time.time(), snapshot()))
                stop.wait(0.25)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            figures = run_foreach(tmp, env, args.items)
        finally:
            stop.set()
            poller.join()
        from cairn import _core

        ds = _core.Datastore(env["CAIRN_HOME"], readonly=True)
        run = ds.runs("NoopFlow", 1)[0]
        ends = sorted(t.attempts[-1].finished_at for t in ds.tasks(run.run_id, "work"))
        lo, hi = ends[len(ends) // 5], ends[len(ends) * 4 // 5]
        a = min((s for s in series if s[0] >= lo), key=lambda s: s[0])
        b = max((s for s in series if s[0] <= hi), key=lambda s: s[0])
        tasks = sum(1 for e in ends if a[0] <= e <= b[0])
        if tasks == 0 or b[0] <= a[0]:
            raise SystemExit("the run was too short to sample: use more --items")
        by: collections.Counter[str] = collections.Counter()
        for pid, (k, cpu) in b[1].items():
            if pid in a[1]:
                by[k] += cpu - a[1][pid][1]
    print(f"{args.items}-item foreach: median task {figures['median_task'] * 1000:.1f} ms; "
          f"sampled {b[0] - a[0]:.2f} s, {tasks} tasks\n")
    print("| processes | CPU per task |\n|---|---|")
    for k, v in by.most_common():
        print(f"| {k} | {v * 1000 / tasks:.2f} ms |")
    print(f"| all | {sum(by.values()) * 1000 / tasks:.2f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
