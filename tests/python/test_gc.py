"""cairn gc and cairn du, and the sweep of stale temp files at a run's start."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from cairn import Flow, _core

FLOW = """
from cairn import FlowSpec, step


class GcFlow(FlowSpec):
    @step
    def start(self):
        self.big = b"kept" * 5000
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GcFlow()
"""


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def cairn(runner, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cairn", *args], cwd=runner.dir, env=runner.env,
                          capture_output=True, text=True, check=False)


def stale_temp_files(runner) -> list:
    pid = dead_pid()
    blob_tmp = runner.root / "objects" / "tmp" / f".{'ab' * 16}.tmp-{pid}-0-00ff"
    payload = runner.root / "tmp" / f"cairn-payload-{pid}-Ab12Cd"
    live = runner.root / "objects" / "tmp" / f".{'cd' * 16}.tmp-{os.getpid()}-0-00ff"
    for path in (blob_tmp, payload, live):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
    return [blob_tmp, payload, live]


def test_a_run_sweeps_the_temp_files_of_dead_writers(runner):
    flow = runner.write("gc_flow.py", FLOW)
    runner.run(flow, "run", check=True)
    blob_tmp, payload, live = stale_temp_files(runner)
    runner.run(flow, "run", check=True)
    assert not blob_tmp.exists() and not payload.exists()
    assert live.exists()  # its writer (this process) is alive


def test_gc_removes_unreferenced_blobs_past_the_grace_period_and_du_reports(runner):
    flow = runner.write("gc_flow.py", FLOW)
    runner.run(flow, "run", check=True)
    store = _core.ArtifactStore(str(runner.root))
    garbage, _, _ = store.put([b"nobody refers to this" * 1000])
    path = store.path_of(garbage)
    old = time.time() - 7200
    os.utime(path, (old, old))
    blob_tmp, payload, _ = stale_temp_files(runner)

    du = cairn(runner, "du")
    assert du.returncode == 0, du.stderr
    assert "runs             1 (0 running)" in du.stdout
    assert "reclaimable      1 blobs" in du.stdout

    dry = cairn(runner, "gc", "--blobs", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 stale temp files (2.0 KB)" in dry.stdout
    assert "would remove 1 unreferenced blobs" in dry.stdout
    assert os.path.exists(path) and blob_tmp.exists()

    young = cairn(runner, "gc", "--blobs", "--grace", "3h")
    assert "removed 0 unreferenced blobs" in young.stdout and "kept 1 unreferenced blobs" in young.stdout
    assert os.path.exists(path) and not blob_tmp.exists() and not payload.exists()

    done = cairn(runner, "gc", "--blobs")
    assert done.returncode == 0, done.stderr
    assert "removed 1 unreferenced blobs" in done.stdout
    assert not os.path.exists(path)
    assert Flow("GcFlow")["1"]["start"].task.data.big == b"kept" * 5000


def test_gc_refuses_a_bad_duration(runner):
    proc = cairn(runner, "gc", "--grace", "soon")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "cairn error: --grace: 'soon' is not a duration (e.g. 30m, 1h, 2d)"


@pytest.mark.parametrize("tool_name", ["gc", "du"])
def test_gc_and_du_of_a_missing_datastore_are_one_line(runner, tool_name):
    proc = cairn(runner, tool_name)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
