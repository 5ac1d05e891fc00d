"""The benchmark suite in smoke mode (small sizes, no Metaflow): every case
runs end to end as real processes, and its results are read back and
checked. Timing targets are not asserted here (see docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CASES = ["hello", "linear10", "foreach1k", "foreach10k", "artifacts", "numpy", "read", "read-numpy",
         "read-dataframe", "list", "tasks-10k", "resume", "resume-wide", "dedup", "ui-runs", "ui-run10k", "card"]
# Cases timed inside the process rather than as a whole process.
IN_PROCESS = {"ui-runs": "first_screen_s", "ui-run10k": "first_screen_s", "card": "render_s"}


@pytest.mark.e2e
def test_bench_smoke_runs_every_case_correctly(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--json", str(out),
         "--workdir", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(out.read_text())
    assert report["smoke"] is True
    assert report["errors"] == {case: {} for case in CASES}
    for case in CASES:
        samples = report["results"][case]["cairn"]
        assert len(samples) == 1, case
        assert samples[0][IN_PROCESS.get(case, "wall_s")] > 0, case
    # The two properties smoke mode does check: a read writes no copy of the
    # artifact, and the same bytes stored by two flows are stored once.
    size_mb = report["sizes"]["dedup_mb"]
    assert report["results"]["dedup"]["cairn"][0]["growth_mb"] < 1.5 * size_mb
    assert report["results"]["read"]["cairn"][0]["disk_growth_mb"] < 1.0
    assert report["results"]["list"]["cairn"][0]["runs"] == report["sizes"]["list_runs"]
    assert "| foreach10k |" in proc.stdout
    # Loading an array or a DataFrame adds no private copy of its data.
    for case in ("read-numpy", "read-dataframe"):
        assert report["results"][case]["cairn"][0]["load_private_mb"] < 2.0, case
    assert "| tasks-10k: a value from each task" in proc.stdout
