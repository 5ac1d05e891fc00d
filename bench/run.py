#!/usr/bin/env python3
"""cairn's benchmark suite (issue 6): every case as whole processes measured
from outside, each on a fresh datastore, optionally side by side with
Metaflow. Prints a markdown table and exits non-zero when a cairn target is
missed (or, with --smoke, when a case fails to run or gives a wrong result).

    python bench/run.py                          # cairn, 5 repetitions
    python bench/run.py --compare metaflow       # and Metaflow, alternating
    python bench/run.py --only hello,foreach1k --repeat 3
    python bench/run.py --smoke                  # small sizes, correctness only

See docs/performance.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import BY_NAME, CASES, Case, CaseError, Ctx, Sizes, _foreach, remove_tree
from frameworks import FLOWS, Framework, make

REAL_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python3"


def default_python() -> str:
    # The pyenv `python3` shim is a bash script that adds ~100 ms per
    # interpreter; sys.executable is already the real one when run through it.
    return sys.executable if os.path.exists(sys.executable) else REAL_PYTHON


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--compare", choices=["metaflow"], help="also run the Metaflow version of each case")
    p.add_argument("--only", help="comma-separated case names: " + ",".join(BY_NAME))
    p.add_argument("--repeat", type=int, help="repetitions per case (default 5; 1 with --smoke)")
    p.add_argument("--smoke", action="store_true", help="small sizes, no Metaflow, correctness only")
    p.add_argument("--python", default=default_python(), help="interpreter for both frameworks")
    p.add_argument("--workdir", help="where case folders go (default: a new temp folder)")
    p.add_argument("--keep", action="store_true", help="keep case folders and logs")
    p.add_argument("--json", help="write every sample and the machine description here")
    p.add_argument("--interval", type=float, default=0.05,
                   help="interval of the informational /proc sampler, s")
    p.add_argument("--metaflow-foreach-probe", type=int, default=100,
                   help="Metaflow foreach10k is extrapolated from runs of this width and of 1k")
    return p.parse_args(argv)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                            "kernel": platform.release()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("model name"))
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["mem_gib"] = round(int(mem) / (1 << 20), 1)
        info["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, StopIteration):
        pass
    try:
        repo = Path(__file__).resolve().parents[1]
        info["cairn_commit"] = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                                              check=False, capture_output=True, text=True).stdout.strip()
        # Several engineers share the working tree: say what was measured.
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "cpp", "python"],
                                check=False, capture_output=True, text=True).stdout
        info["uncommitted"] = sorted(line[3:] for line in status.splitlines())
        core = subprocess.run([sys.executable, "-c", "import cairn._core as c; print(c.__file__)"],
                              check=False, capture_output=True, text=True).stdout.strip()
        if core:
            info["core_built"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(core)))
    except OSError:
        pass
    return info


def warm_up(fws: list[Framework], work: Path) -> None:
    """Bytecode caches written and shared libraries in the page cache before
    anything is timed: one untimed hello per framework."""
    for fw in fws:
        subprocess.run([fw.python, "-m", "compileall", "-q", str(fw.package_dir())],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d = work / f"warm-{fw.name}"
        d.mkdir()
        flow = fw.flow("hello.py", d)
        subprocess.run(fw.run_argv(flow), cwd=d, env=fw.env(d), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        remove_tree(d)


def run_case(case: Case, fws: list[Framework], args: argparse.Namespace, sizes: Sizes, work: Path,
             results: dict, errors: dict) -> None:
    repeat = args.repeat or (1 if args.smoke else 5)
    active = [fw for fw in fws if fw.name == "cairn" or case.metaflow]
    shared: dict[str, Path] = {}
    logs = work / "logs" / case.name
    logs.mkdir(parents=True, exist_ok=True)
    for fw in active:
        results[case.name].setdefault(fw.name, [])
        if case.setup:
            d = work / f"{case.name}-{fw.name}-shared"
            d.mkdir()
            try:
                case.setup(Ctx(fw, d, logs, sizes, args.interval))
                shared[fw.name] = d
            except (CaseError, OSError, subprocess.SubprocessError) as e:
                errors[case.name][fw.name] = f"setup: {e}"
    for rep in range(repeat):
        for fw in active:
            if fw.name in errors[case.name]:
                continue
            if fw.name == "metaflow" and case.metaflow_repeat is not None and rep >= case.metaflow_repeat:
                continue
            d = shared.get(fw.name)
            fresh = d is None
            if fresh:
                d = work / f"{case.name}-{fw.name}-{rep}"
                d.mkdir()
            ctx = Ctx(fw, d, logs, sizes, args.interval)
            try:
                if case.name == "foreach10k" and fw.name == "metaflow":
                    sample = metaflow_foreach10k(ctx, args, sizes, results)
                else:
                    sample = case.run(ctx)
                results[case.name][fw.name].append(sample)
                print(f"  {case.name:12} {fw.name:8} #{rep + 1}: " + brief(sample), file=sys.stderr, flush=True)
            except (CaseError, OSError, subprocess.SubprocessError) as e:
                errors[case.name][fw.name] = str(e)
                print(f"  {case.name:12} {fw.name:8} #{rep + 1}: ERROR {e}", file=sys.stderr, flush=True)
            finally:
                if fresh and not args.keep and not many_files(d):
                    remove_tree(d)
    if not args.keep:
        for d in shared.values():
            remove_tree(d)


def many_files(path: Path, limit: int = 500) -> bool:
    """Folders with many files are left for the end of the suite: on ext4
    without a journal (this VM), creating a file scans past inodes deleted in
    the last minute, so deleting 10,000 blobs would slow the next case's
    blob writes (measured: 58 us a file after such a deletion, 13 us on
    tmpfs, up to 640 us under other engineers' churn)."""
    count = 0
    for _dirpath, _dirs, files in os.walk(path):
        count += len(files)
        if count > limit:
            return True
    return False


def metaflow_foreach10k(ctx: Ctx, args: argparse.Namespace, sizes: Sizes, results: dict) -> dict[str, Any]:
    """Metaflow takes ~40 min for 10k tasks here: fit t = a + b*n through a
    narrow run and the 1k run (this session's foreach1k, else a 300 run)."""
    n1 = args.metaflow_foreach_probe
    t1 = _foreach(ctx, n1, f"foreach{n1}")["wall_s"]
    done = [s["wall_s"] for s in results.get("foreach1k", {}).get("metaflow", [])]
    if done and sizes.foreach1k > n1:
        n2, t2 = sizes.foreach1k, statistics.median(done)
    else:
        n2 = 3 * n1
        t2 = _foreach(ctx, n2, f"foreach{n2}")["wall_s"]
    slope = (t2 - t1) / (n2 - n1)
    n = sizes.foreach10k
    return {"wall_s": t1 + slope * (n - n1), "extrapolated": True,
            "from": {str(n1): t1, str(n2): t2}, "per_task_s": slope}


def brief(sample: dict[str, Any]) -> str:
    parts = []
    for key in ("wall_s", "cpu_s", "import_s", "growth_mb", "root_peak_mb", "max_proc_peak_mb",
                "rss_sum_peak_mb", "unique_peak_mb", "cgroup_max_usage_mb"):
        v = sample.get(key)
        if v is not None:
            parts.append(f"{key}={v:.3f}" if key.endswith("_s") else f"{key}={v:.0f}")
    if sample.get("extrapolated"):
        parts.append(f"extrapolated from {sample['from']}")
    return " ".join(parts)


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "s":
        return f"{v:.3f} s" if v < 10 else f"{v:.1f} s"
    return f"{v:.0f} MB" if v >= 10 or v == 0 else f"{v:.1f} MB"


def median_of(samples: list[dict], key: str) -> float | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return statistics.median(values) if values else None


def table(cases: list[Case], results: dict, errors: dict, sizes: Sizes, smoke: bool,
          compare: bool) -> tuple[list[str], bool]:
    head = "| case | cairn (median) | n | Metaflow (median) | ratio | target | result |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    ok = True
    for case in cases:
        cairn = results[case.name].get("cairn", [])
        mf = results[case.name].get("metaflow", [])
        for metric in case.metrics:
            key = metric.key
            if key == "cgroup_max_usage_mb" and cairn and median_of(cairn, key) is None:
                key = "rss_sum_peak_mb"  # no cgroup here: judge on the larger, sampled figure
            c = median_of(cairn, key)
            m = median_of(mf, key) if compare and case.metaflow else None
            target = metric.target(sizes) if metric.target else None
            err = errors[case.name].get("cairn")
            if err:
                verdict, ok = "error", False
            elif c is None:
                verdict = "—"
            elif smoke and not metric.smoke_check:
                verdict = "ok"
            elif target is None:
                verdict = "info"
            elif c <= target:
                verdict = "pass"
            else:
                verdict, ok = "**FAIL**", False
            label = metric.label if key == metric.key else f"{metric.label} [no cgroup: RSS summed]"
            mf_text = fmt(m, metric.unit)
            if m is not None and any(s.get("extrapolated") for s in mf):
                mf_text += " (extrapolated)"
            if compare and case.metaflow and errors[case.name].get("metaflow"):
                mf_text = "error"
            if case.name == "list":
                label = f"list ({sizes.list_runs} runs; Metaflow {sizes.list_runs_metaflow})"
            ratio = f"{m / c:.1f}x" if m and c else "—"
            lines.append(f"| {label} | {fmt(c, metric.unit)} | {len(cairn)} | {mf_text} | {ratio} | "
                         f"{'≤ ' + fmt(target, metric.unit) if target is not None else '—'} | {verdict} |")
    return lines, ok


def below_10x(cases: list[Case], results: dict) -> list[str]:
    """The summary's last line: the cases whose headline figure (their first
    metric) is less than 10x better than Metaflow's, with their ratios."""
    slow, compared = [], 0
    for case in cases:
        key = case.metrics[0].key
        c = median_of(results[case.name].get("cairn", []), key)
        m = median_of(results[case.name].get("metaflow", []), key)
        if not c or not m:
            continue
        compared += 1
        if m / c < 10:
            slow.append(f"{case.name} ({m / c:.1f}x)")
    if not compared:
        return []
    if not slow:
        return ["Every case compared is at least 10x Metaflow."]
    return [f"Below 10x Metaflow: {', '.join(slow)} (see each case's floor in docs/performance.md)."]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.smoke() if args.smoke else Sizes()
    compare = bool(args.compare) and not args.smoke
    names = args.only.split(",") if args.only else [c.name for c in CASES]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(BY_NAME)}", file=sys.stderr)
        return 2
    cases = [BY_NAME[n] for n in names]
    fws = [make("cairn", args.python)] + ([make("metaflow", args.python)] if compare else [])
    work = Path(tempfile.mkdtemp(prefix="cairn-bench-", dir=args.workdir))
    info = machine()
    print(f"bench: {info.get('cpu')} x{info['nproc']}, Python {info['python']}, work in {work}",
          file=sys.stderr, flush=True)
    started = time.time()
    warm_up(fws, work)
    results: dict[str, dict[str, list]] = {c.name: {} for c in cases}
    errors: dict[str, dict[str, str]] = {c.name: {} for c in cases}
    for case in cases:
        run_case(case, fws, args, sizes, work, results, errors)
    lines, ok = table(cases, results, errors, sizes, args.smoke, compare)
    if compare:
        lines += ["", *below_10x(cases, results)]
    print("\n".join(lines))
    for case in cases:
        for fw, err in errors[case.name].items():
            print(f"{case.name} [{fw}]: {err}")
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    info["elapsed_s"] = round(time.time() - started, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": info, "sizes": vars(sizes), "smoke": args.smoke, "results": results,
             "errors": errors, "table": lines, "flows": str(FLOWS)}, indent=1, default=str))
    if not args.keep:
        remove_tree(work)
    else:
        print(f"kept {work}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
