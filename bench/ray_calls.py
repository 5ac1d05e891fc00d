#!/usr/bin/env python3
"""What a Ray actor round trip costs, summed over every process of the
machine: a plain call against a streaming generator of one and of two items,
six client threads against three actors, as the sidecar drives its slots
(docs/performance.md, "The Ray backend"). Starts a one-node Ray on
127.0.0.1 for itself and shuts it down.

    python bench/ray_calls.py [--calls 600]"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def machine_cpu() -> dict[int, float]:
    """pid -> CPU seconds, of every process of the machine."""
    import psutil

    out = {}
    for p in psutil.process_iter(["cpu_times"]):
        t = p.info["cpu_times"]
        if t is not None:
            out[p.pid] = t.user + t.system
    return out


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two snapshots by the processes alive at both."""
    return sum(cpu - before[pid] for pid, cpu in after.items() if pid in before)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=600)
    args = p.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", _node_ip_address="127.0.0.1")
    try:
        @ray.remote(max_concurrency=4)
        class Slot:
            def call(self, key: int) -> tuple[Any, ...]:
                return (True, [], 0, b"x" * 200, False)

            def gen1(self, key: int) -> Any:
                yield ("end", 0, b"x" * 200)

            def gen2(self, key: int) -> Any:
                yield ("started", 0, b"")
                yield ("end", 0, b"x" * 200)

        slots = [Slot.remote() for _ in range(3)]
        ray.get([s.call.remote(0) for s in slots])

        def plain(slot: Any, i: int) -> None:
            ray.get(slot.call.remote(i))

        def generator(name: str) -> Any:
            def run(slot: Any, i: int) -> None:
                for ref in getattr(slot, name).options(num_returns="streaming").remote(i):
                    ray.get(ref)
            return run

        print("| round trip | wall per call | CPU per call, all processes |\n|---|---|---|")
        for name, one in (("plain call", plain), ("generator, 1 item", generator("gen1")),
                          ("generator, 2 items", generator("gen2"))):
            per_thread = args.calls // 6

            def client(slot: Any, one: Any = one) -> None:
                for i in range(per_thread):
                    one(slot, i)

            cpu0, t0 = machine_cpu(), time.perf_counter()
            threads = [threading.Thread(target=client, args=(slots[i % 3],)) for i in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall, cpu = time.perf_counter() - t0, spent(cpu0, machine_cpu())
            n = per_thread * 6
            print(f"| {name} | {wall / n * 1000:.2f} ms | {cpu / n * 1000:.2f} ms |")
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
