"""What the bench's /proc sampler costs the run it measures: runs a foreach
flow under bench/measure.py's run_measured with each sampling interval in
turn (alternating, so a drifting machine affects both alike) and prints the
wall time, the case's CPU and the harness's own CPU.

    python bench/profile/sampler_cost.py [N_ITEMS] [ROUNDS]"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure import run_measured  # noqa: E402

INTERVALS = (0.005, 0.05)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = Path(tempfile.mkdtemp(prefix="sampler-cost-"))
    shutil.copy(Path(__file__).resolve().parents[1] / "flows" / "foreach.py", work)
    argv = [sys.executable, "foreach.py", "run", "--n", str(n), "--max-num-splits", str(2 * n)]
    rows: dict[float, list[tuple[float, float, float]]] = {i: [] for i in INTERVALS}
    try:
        for _ in range(rounds):
            for interval in INTERVALS:
                shutil.rmtree(work / ".cairn", ignore_errors=True)
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                m = run_measured(argv, cwd=work, env=dict(os.environ), log=work / "log", interval=interval)
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                if m.exit_code != 0:
                    sys.exit(f"the flow failed; see {work / 'log'}")
                harness = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
                rows[interval].append((m.wall_s, m.cpu_s, harness))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"foreach over {n} items, {rounds} rounds, medians")
    print("| interval | wall | case CPU | harness CPU |")
    print("|---|---|---|---|")
    for interval, samples in rows.items():
        wall, cpu, harness = (statistics.median(col) for col in zip(*samples))
        print(f"| {interval * 1e3:.0f} ms | {wall:.2f} s | {cpu:.2f} s | {harness:.2f} s |")


if __name__ == "__main__":
    main()
