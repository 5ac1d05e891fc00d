"""The foundation slice end to end: run, output format, datastore, client."""

from __future__ import annotations

import re
import sqlite3

import pytest
from conftest import EXAMPLES

pytestmark = pytest.mark.e2e


def test_hello_runs_and_prints_prefixed_lines(runner):
    proc = runner.run(runner.copy(EXAMPLES / "hello.py"), "run", check=True)
    out = proc.stdout
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[1/start/1\] Task is starting\.$", out, re.MULTILINE)
    assert re.search(r"\[1/end/3\] HELLO$", out, re.MULTILINE)
    assert "Task finished successfully." in out
    assert "Done! Run HelloFlow/1 succeeded (3 tasks)." in out


def test_hello_artifacts_are_read_by_a_fresh_process(runner):
    runner.run(runner.copy(EXAMPLES / "hello.py"), "run", check=True)
    proc = runner.python(
        """
        from cairn import Flow
        run = Flow("HelloFlow").latest_run
        print(run["end"].task.data.loud, run["shout"].task.data.greeting, run.successful)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["HELLO", "hello", "True"]


def test_each_task_runs_in_its_own_process(runner):
    flow = runner.write(
        "pids.py",
        """
        import os
        from cairn import FlowSpec, step

        class PidFlow(FlowSpec):
            @step
            def start(self):
                self.pids = [os.getpid()]
                self.next(self.middle)

            @step
            def middle(self):
                self.pids = self.pids + [os.getpid()]
                self.next(self.end)

            @step
            def end(self):
                self.pids = self.pids + [os.getpid()]

        if __name__ == "__main__":
            PidFlow()
        """,
    )
    runner.run(flow, "run", check=True)
    from cairn import Flow

    pids = Flow("PidFlow").latest_run.data.pids
    assert len(set(pids)) == 3


def test_datastore_is_sqlite_in_wal_mode_with_compressed_deduplicated_blobs(runner):
    flow = runner.write(
        "dedup.py",
        """
        from cairn import FlowSpec, step

        class DedupFlow(FlowSpec):
            @step
            def start(self):
                self.big = b"x" * 5_000_000
                self.same = b"x" * 5_000_000
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            DedupFlow()
        """,
    )
    runner.run(flow, "run", check=True)
    runner.run(flow, "run", check=True)
    db = sqlite3.connect(runner.root / "cairn.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    digests = {d for (d,) in db.execute("SELECT digest FROM artifacts WHERE name IN ('big', 'same')")}
    assert len(digests) == 1  # four artifact rows, one value
    blobs = [p for p in (runner.root / "objects").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in blobs) < 1_000_000  # 5 MB of x's, compressed, stored once


def test_failed_run_exits_nonzero_with_one_line_reason(runner):
    flow = runner.write(
        "boom.py",
        """
        from cairn import FlowSpec, step

        class BoomFlow(FlowSpec):
            @step
            def start(self):
                raise ValueError("no good")
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            BoomFlow()
        """,
    )
    proc = runner.run(flow, "run")
    assert proc.returncode != 0
    assert "Task failed: ValueError: no good" in proc.stdout
    assert "Run BoomFlow/1 failed: step 'start' (task 1) failed: ValueError: no good" in proc.stdout
    assert "Traceback" in proc.stderr


def test_check_and_show(runner):
    hello = runner.copy(EXAMPLES / "hello.py")
    proc = runner.run(hello, "check", check=True)
    assert "The graph looks good!" in proc.stdout
    proc = runner.run(hello, "show", check=True)
    assert "Step start\n    Make a greeting.\n    => shout" in proc.stdout
    assert not runner.root.exists()  # check and show write nothing


def test_spawn_launcher_runs_the_standalone_step_command(runner):
    proc = runner.run(runner.copy(EXAMPLES / "hello.py"), "run", "--launcher", "spawn", check=True)
    assert re.search(r"\[1/end/3\] HELLO$", proc.stdout, re.MULTILINE)
