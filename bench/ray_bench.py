#!/usr/bin/env python3
"""Figures of the Ray backend and the S3 store (docs/ray.md), on a 3-node
local Ray cluster and a moto S3 server, all on 127.0.0.1 (the test suite's
helpers start and stop them, by pid):

    python bench/ray_bench.py                      # everything, sizes of issue 10
    python bench/ray_bench.py --items 100 --big 0  # smaller

Prints a markdown table. Per-task overhead is the median, over the tasks of a
foreach of no-op steps, of each task's engine-recorded duration (start of the
attempt to its end: sidecar, slot actor, fork on the node, result back)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

# A driver connecting to a loopback address stays on loopback (as the sidecar does).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from ray_cluster import local_cluster  # noqa: E402
from s3_server import CREDENTIALS, s3_server  # noqa: E402

FOREACH = """
    from cairn import FlowSpec, step

    class NoopFlow(FlowSpec):
        @step
        def start(self):
            self.items = list(range(ITEMS))
            self.next(self.work, foreach="items")

        @step
        def work(self):
            self.x = self.input
            self.next(self.join)

        @step
        def join(self, inputs):
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        NoopFlow()
"""


def run_foreach(tmp: Path, env: dict[str, str], n: int) -> dict[str, float]:
    flow = tmp / f"noop{n}.py"
    flow.write_text(textwrap.dedent(FOREACH).replace("ITEMS", str(n)))
    t0 = time.time()
    # As many tasks at once as the cluster has slots (6 CPUs): a task's
    # recorded time is then its own, not time spent queueing for a slot.
    proc = subprocess.run([sys.executable, str(flow), "run", "--with", "ray", "--max-workers", "6",
                           "--max-num-splits", str(max(n, 100))],
                          cwd=tmp, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the {n}-item run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    wall = time.time() - t0
    from cairn import _core

    ds = _core.Datastore(env["CAIRN_HOME"], readonly=True)
    run = ds.runs("NoopFlow", 1)[0]
    tasks = ds.tasks(run.run_id, "work")
    durations = [t.attempts[-1].finished_at - t.attempts[-1].started_at for t in tasks]
    first = min(a.finished_at for t in ds.tasks(run.run_id, "start") for a in t.attempts)
    return {"wall": wall, "median_task": statistics.median(durations), "first_task": first - t0}


def fresh_interpreter_task(address: str, flow: Path, n: int) -> float:
    """Metaflow's nearest path: a Ray task that starts a fresh interpreter
    which imports the flow (as `python flow.py step` does); median seconds."""
    import ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        @ray.remote(num_cpus=1, max_retries=0)
        def step(path: str) -> float:
            t = time.perf_counter()
            subprocess.run([sys.executable, path, "check"], check=True, capture_output=True,
                           cwd=os.path.dirname(path))
            return time.perf_counter() - t

        ray.get(step.remote(str(flow)))  # warm the worker pool
        times = []
        for _ in range(n):
            t = time.perf_counter()
            ray.get(step.remote(str(flow)))
            times.append(time.perf_counter() - t)
        return statistics.median(times)
    finally:
        ray.shutdown()


def s3_transfer(server, tmp: Path, size: int) -> dict[str, float]:
    import boto3.s3.transfer

    from cairn.stores import CachedStore, S3Config
    from cairn.stores.s3 import S3Blobs

    data = os.urandom(size)
    bucket = server.new_bucket()
    config = S3Config.parse(f"s3://{bucket}/bench", server.endpoint)
    store = CachedStore(str(tmp / "put"), S3Blobs(config))
    reader = CachedStore(str(tmp / "get"), S3Blobs(config))
    client = server.client()
    for c in (store.remote.client(), reader.remote.client(), client):  # clients made, not timed
        c.list_buckets()
    t = time.perf_counter()
    digest = store.put([data])[0]
    put = time.perf_counter() - t
    t = time.perf_counter()
    segments = reader.get(digest)  # downloaded into the cache, digest verified
    get = time.perf_counter() - t
    assert segments[0] == data

    path = tmp / "plain.bin"
    path.write_bytes(data)
    best = boto3.s3.transfer.TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=16 << 20,
                                            max_concurrency=10)
    t = time.perf_counter()
    client.upload_file(str(path), bucket, "boto3/plain.bin", Config=best)
    b_put = time.perf_counter() - t
    t = time.perf_counter()
    client.download_file(bucket, "boto3/plain.bin", str(tmp / "back.bin"), Config=best)
    b_get = time.perf_counter() - t
    return {"put": put, "get": get, "boto3_put": b_put, "boto3_get": b_get}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=300)
    p.add_argument("--big", type=int, default=1000, help="the large foreach (0: skip)")
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--fresh", type=int, default=10, help="fresh-interpreter Ray tasks timed")
    args = p.parse_args()
    os.environ.update(CREDENTIALS)
    rows = []
    with tempfile.TemporaryDirectory() as d, s3_server() as server, local_cluster() as cluster:
        tmp = Path(d)
        bucket = server.new_bucket()
        env = {**os.environ, **server.env(bucket), "CAIRN_RAY_ADDRESS": cluster.address,
               "CAIRN_HOME": str(tmp / "ds"), "CAIRN_RAY_NODE_CACHE": str(tmp / "nodes")}
        r = run_foreach(tmp, env, args.items)
        rows.append((f"per-task overhead, median over a {args.items}-item foreach",
                     f"{r['median_task'] * 1000:.0f} ms", "≤ 30 ms"))
        rows.append((f"foreach of {args.items}, whole run", f"{r['wall']:.1f} s", ""))
        rows.append(("time to the first task (process start to `start` done)", f"{r['first_task']:.2f} s",
                     "≤ 3 s"))
        if args.big:
            env["CAIRN_HOME"] = str(tmp / "ds-big")
            big = run_foreach(tmp, env, args.big)
            rows.append((f"foreach of {args.big}, whole run", f"{big['wall']:.1f} s", "≤ 15 s"))
        if args.fresh:
            fresh = fresh_interpreter_task(cluster.address, tmp / f"noop{args.items}.py", args.fresh)
            rows.append(("Metaflow's nearest path: a Ray task running a fresh `python flow.py`",
                         f"{fresh * 1000:.0f} ms", ""))
        s = s3_transfer(server, tmp, args.mb << 20)
        rows.append((f"{args.mb} MB put (cairn S3 store / boto3 best multipart)",
                     f"{s['put']:.2f} s / {s['boto3_put']:.2f} s", "≤ boto3"))
        rows.append((f"{args.mb} MB get (cairn S3 store / boto3 best multipart)",
                     f"{s['get']:.2f} s / {s['boto3_get']:.2f} s", "≤ boto3"))
    print("| figure | measured | target |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
