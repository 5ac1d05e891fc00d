"""Where a foreach task's time goes, measured inside one process that plays
the worker's part (the flow imported once, a fork per task) without the
engine: fork/exit/reap alone, run_task in a forked child, run_task in
process under cProfile, and ArtifactStore.put of one small blob.

    python bench/profile/task_cost.py PAYLOADS.jsonl ROOT FLOW.py [N]

PAYLOADS.jsonl holds real payloads (one JSON object a line; record them with
bench/profile/hook/sitecustomize.py), ROOT is the datastore they came from
(its blobs are copied into fresh roots), FLOW.py is the flow file. Numbers
are per task, CPU and faults of the children included."""

from __future__ import annotations

import base64
import cProfile
import gc
import importlib.util
import io
import json
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time


def load_flow(path: str):
    spec = importlib.util.spec_from_file_location("bench_flow", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_flow"] = mod
    spec.loader.exec_module(mod)
    from cairn import FlowSpec

    return next(v for v in vars(mod).values()
                if isinstance(v, type) and issubclass(v, FlowSpec) and v is not FlowSpec)


def load_payloads(path: str) -> list[dict]:
    """Payloads recorded by hook/sitecustomize.py, small blobs back as bytes."""
    with open(path) as f:
        payloads = [json.loads(line) for line in f]
    for p in payloads:
        blobs = p.get("blobs")
        if isinstance(blobs, dict):
            p["blobs"] = {d: base64.b64decode(v["b64"]) if isinstance(v, dict) else v
                          for d, v in blobs.items()}
    return payloads


def fresh_root(src_root: str, payload: dict) -> str:
    """A new datastore root holding only the blobs the payload reads."""
    root = tempfile.mkdtemp(prefix="taskcost-", dir=os.path.dirname(src_root))
    digests = {r[1] for r in payload["params"]}
    for inp in payload["inputs"]:
        digests |= {r[1] for r in inp["artifacts"]}
    for frame in payload["stack"]:
        if frame.get("artifact"):
            digests.add(frame["artifact"][1])
    for d in digests:
        src = f"{src_root}/objects/{d[:2]}/{d[2:]}"
        if not os.path.exists(src):
            continue  # a small blob: it travels in the payload, not as a file
        os.makedirs(f"{root}/objects/{d[:2]}", exist_ok=True)
        shutil.copy(src, f"{root}/objects/{d[:2]}/{d[2:]}")
    return root


def children_usage() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def report(name: str, n: int, wall: float, before: tuple, after: tuple, self_cpu: float) -> None:
    u, s, f = (a - b for a, b in zip(after, before))
    print(f"{name:42} wall {wall / n * 1e6:7.0f} us/task | children user {u / n * 1e6:6.0f} "
          f"sys {s / n * 1e6:6.0f} us, {f / n:6.0f} minflt | parent cpu {self_cpu / n * 1e6:6.0f} us")


def fork_only(n: int) -> None:
    before, t0, c0 = children_usage(), time.perf_counter(), time.process_time()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    report("fork + _exit + waitpid", n, time.perf_counter() - t0, before, children_usage(),
           time.process_time() - c0)


def fork_tasks(flow_cls, spec, payloads: list[dict], root: str, label: str) -> None:
    from cairn import _core
    from cairn.runtime import task, task_data

    store = _core.ArtifactStore(root)
    null = os.open(os.devnull, os.O_WRONLY)
    before, t0, c0 = children_usage(), time.perf_counter(), time.process_time()
    for p in payloads:
        p = dict(p, flow=dict(p["flow"], root=root))
        task_data.preload(p, store)
        pid = os.fork()
        if pid == 0:
            os.dup2(null, 1)
            os._exit(task.run_task(flow_cls, spec, p, null))
        os.waitpid(pid, 0)
    report(label, len(payloads), time.perf_counter() - t0, before, children_usage(),
           time.process_time() - c0)


def fork_batches(flow_cls, spec, payloads: list[dict], root: str, k: int) -> None:
    """What a child that runs k tasks in a row would cost per task (not
    what cairn does: it forks one child per task)."""
    from cairn import _core
    from cairn.runtime import task, task_data

    store = _core.ArtifactStore(root)
    null = os.open(os.devnull, os.O_WRONLY)
    before, t0, c0 = children_usage(), time.perf_counter(), time.process_time()
    for i in range(0, len(payloads), k):
        batch = [dict(p, flow=dict(p["flow"], root=root)) for p in payloads[i:i + k]]
        task_data.preload(batch[0], store)
        pid = os.fork()
        if pid == 0:
            os.dup2(null, 1)
            for p in batch:
                task.run_task(flow_cls, spec, p, null)
            os._exit(0)
        os.waitpid(pid, 0)
    report(f"fork + run_task x{k} in one child", len(payloads), time.perf_counter() - t0, before,
           children_usage(), time.process_time() - c0)


def in_process(flow_cls, spec, payloads: list[dict], root: str) -> None:
    from cairn.runtime import task

    null = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(null, 1)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for p in payloads:
        task.run_task(flow_cls, spec, dict(p, flow=dict(p["flow"], root=root)), null)
    prof.disable()
    wall = time.perf_counter() - t0
    sys.stdout.flush()
    os.dup2(saved, 1)
    print(f"run_task in process, cProfile on: {wall / len(payloads) * 1e6:.0f} us/task")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
    print("\n".join(out.getvalue().splitlines()[4:30]))


def puts(root: str, n: int) -> None:
    from cairn import _core, serializers

    store = _core.ArtifactStore(root)
    t0 = time.perf_counter()
    for i in range(n):
        store.put(serializers.dumps(10_000_000 + i)[0])
    print(f"ArtifactStore.put, small new blob: {(time.perf_counter() - t0) / n * 1e6:.0f} us")
    t0 = time.perf_counter()
    for i in range(n):
        store.put(serializers.dumps(10_000_000 + i)[0])
    print(f"ArtifactStore.put, blob already there: {(time.perf_counter() - t0) / n * 1e6:.0f} us")


def main() -> None:
    payload_file, src_root, flow_file = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    payloads = load_payloads(payload_file)
    body = [p for p in payloads if p["step"] == "body"][:n]
    flow_cls = load_flow(flow_file)
    from cairn.graph import spec_for

    spec = spec_for(flow_cls)
    print(f"{len(body)} body tasks of {flow_cls.__name__}; python {sys.version.split()[0]}")
    fork_only(len(body))
    roots = []
    for label, freeze in (("fork + run_task", False), ("fork + run_task, gc.freeze() first", True)):
        roots.append(fresh_root(src_root, body[0]))
        if freeze:
            gc.collect()
            gc.freeze()
        fork_tasks(flow_cls, spec, body, roots[-1], label)
    roots.append(fresh_root(src_root, body[0]))
    fork_batches(flow_cls, spec, body, roots[-1], 10)
    roots.append(fresh_root(src_root, body[0]))
    in_process(flow_cls, spec, body, roots[-1])
    roots.append(tempfile.mkdtemp(prefix="taskcost-", dir=os.path.dirname(src_root)))
    puts(roots[-1], len(body))
    for r in roots:
        shutil.rmtree(r, ignore_errors=True)


if __name__ == "__main__":
    main()
