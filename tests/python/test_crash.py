"""The engine itself dying: kill -9 of `python flow.py run` takes every task
(and what the tasks started) with it, leaves a datastore that opens cleanly
and a run shown as not finished, which `resume` completes. Ctrl-C, by
contrast, is caught: tasks are killed and recorded, and the run fails."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import pytest
from cairn import Flow, _core
from test_failures import process_gone, wait_until

pytestmark = pytest.mark.e2e

CRASH_FLOW = """
import os, subprocess, time
from cairn import FlowSpec, step

class CrashFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        child = subprocess.Popen(["sleep", "300"])
        os.makedirs("pids", exist_ok=True)
        with open(f"pids/{self.input}", "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
        if os.environ.get("HANG") == "1":
            time.sleep(300)
        child.kill()
        self.value = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    CrashFlow()
"""


def start_hanging_run(runner) -> tuple[subprocess.Popen, list[int]]:
    """Starts a run whose three `each` tasks hang, each with a `sleep` child;
    returns once they all run and are recorded (`start` finished, `each` running)."""
    flow = runner.write("crash.py", CRASH_FLOW)
    engine = subprocess.Popen([sys.executable, str(flow), "run"], cwd=runner.dir,
                              env={**runner.env, "HANG": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_dir = runner.dir / "pids"

    def ready() -> bool:
        if not pid_dir.exists() or len(list(pid_dir.iterdir())) < 3:
            return False
        try:
            run = Flow("CrashFlow")["1"]
            # The three `each` tasks' running rows are committed too.
            return run["start"].task.successful and len(list(run["each"])) == 3
        except Exception:  # noqa: BLE001 - not recorded yet
            return False

    assert wait_until(ready, timeout=30), "the tasks never started"
    pids = [int(p) for f in pid_dir.iterdir() for p in f.read_text().split()]
    assert len(pids) == 6 and not any(process_gone(p) for p in pids)
    return engine, pids


def test_kill_9_of_the_run_takes_the_tasks_along_and_resume_completes_it(runner):
    engine, pids = start_hanging_run(runner)
    engine.kill()  # SIGKILL: nothing in the engine gets to run
    engine.wait()
    # Tasks die by their parent-death signal, their children with the worker's
    # last act; allow a couple of seconds, polling.
    assert wait_until(lambda: all(process_gone(p) for p in pids), timeout=3), \
        [p for p in pids if not process_gone(p)]

    db = sqlite3.connect(runner.root / "cairn.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    _core.Datastore(str(runner.root), readonly=False)  # opens for writing too
    run = Flow("CrashFlow")["1"]
    # Its engine is gone: crashed, neither finished nor successful.
    assert run.status == "crashed" and not run.finished and not run.successful
    assert run.finished_at is None
    # Killed mid-way: the tasks' rows still say running, in a crashed run (no engine will finish them).
    each = list(run["each"])
    assert [(t.finished, t.successful, t.exception) for t in each] == [(False, False, None)] * 3
    assert all([a.status for a in t.attempts] == ["running"] for t in each)
    listed = subprocess.run([sys.executable, "-m", "cairn", "runs"], cwd=runner.dir, env=runner.env,
                            capture_output=True, text=True, check=True).stdout
    assert listed.startswith("CrashFlow/1\tcrashed\t")

    proc = runner.run(runner.dir / "crash.py", "resume", check=True)
    assert f"Run CrashFlow/1 crashed (its engine, pid {engine.pid}, is gone)" in proc.stdout
    assert "resuming run 1" in proc.stdout
    db = sqlite3.connect(runner.root / "cairn.db")
    assert db.execute("SELECT status FROM runs WHERE run_id = 1").fetchone()[0] == "crashed"  # stored now
    db.close()
    assert "marked run(s) 1 crashed" in (runner.root / "logs" / "2" / "engine.log").read_text()
    resumed = Flow("CrashFlow")["2"]
    assert resumed.successful
    assert resumed["start"].task.origin_pathspec == "CrashFlow/1/start/1"
    assert resumed.data is not None and resumed["join"].task.data.values == [10, 20, 30]


def test_ctrl_c_kills_and_records_every_task_and_resume_completes_the_run(runner):
    engine, pids = start_hanging_run(runner)
    engine.send_signal(signal.SIGINT)
    assert engine.wait(timeout=30) == 130
    assert wait_until(lambda: all(process_gone(p) for p in pids))
    run = Flow("CrashFlow")["1"]
    assert run.status == "failed" and not run.finished and not run.successful
    tasks = list(run["each"])
    assert len(tasks) == 3
    for t in tasks:
        assert not t.successful
        assert (t.attempts[0].status, t.attempts[0].reason) == ("killed", "the run was interrupted")
    runner.run(runner.dir / "crash.py", "resume", check=True)
    resumed = Flow("CrashFlow")["2"]
    assert resumed.successful and resumed["start"].task.origin_pathspec == "CrashFlow/1/start/1"
