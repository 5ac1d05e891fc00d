"""Small artifacts live in the database, not as files: they travel with
payloads and results, and read back (and fail) like any other artifact."""

from __future__ import annotations

import sqlite3

import pytest
from cairn import Flow, _core

pytestmark = pytest.mark.e2e

FLOW = """
from cairn import FlowSpec, step

class SmallFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.label = "tiny"
        self.big = bytes(range(256)) * 64          # 16 KiB: a file
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.y = self.input * 10                   # read from the payload, not a file
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.y for i in inputs)
        self.merge_artifacts(inputs, exclude=["y"])
        self.next(self.end)

    @step
    def end(self):
        print(self.total, self.label, len(self.big))

if __name__ == "__main__":
    SmallFlow()
"""


def test_small_artifacts_are_rows_and_big_ones_files(runner):
    proc = runner.run(runner.write("small.py", FLOW), "run", check=True)
    assert "60 tiny 16384" in proc.stdout
    run = Flow("SmallFlow").latest_run
    assert run.data.total == 60 and run.data.label == "tiny"
    assert [t.data.y for t in run["work"]] == [10, 20, 30]
    files = {p.parent.name + p.name for p in (runner.root / "objects").rglob("*") if p.is_file()}
    assert files == {run["start"].task["big"].sha}
    db = sqlite3.connect(runner.root / "cairn.db")
    rows = {d for (d,) in db.execute("SELECT digest FROM blobs")}
    assert {t["y"].sha for t in run["work"]} <= rows
    assert run["start"].task["label"].sha in rows


def test_resume_reads_the_origins_small_blobs(runner):
    flow = runner.write("small.py", FLOW.replace("self.total = sum", "assert __import__('os').path.exists('OK')\n        self.total = sum"))
    assert runner.run(flow, "run").returncode == 1
    (runner.dir / "OK").touch()
    runner.run(flow, "resume", check=True)
    run = Flow("SmallFlow")["2"]
    assert run.successful and run.data.total == 60
    assert all(t.origin_pathspec for t in run["work"])  # cloned: their y came from the database


def test_a_corrupt_small_blob_is_refused_with_the_artifact_pathspec(runner):
    runner.run(runner.write("small.py", FLOW), "run", check=True)
    digest = Flow("SmallFlow").latest_run["start"].task["label"].sha
    db = sqlite3.connect(runner.root / "cairn.db")
    db.execute("UPDATE blobs SET data = X'00' WHERE digest = ?", (digest,))
    db.commit()
    db.close()
    task = Flow("SmallFlow").latest_run["start"].task
    with pytest.raises(_core.DatastoreError, match=r"artifact SmallFlow/1/start/1/label: .*does not match"):
        _ = task.data.label


def test_reading_a_small_blob_does_not_freeze_the_readers_view(runner):
    """A reader that read a small blob must still see later runs."""
    flow = runner.write("small.py", FLOW)
    runner.run(flow, "run", check=True)
    assert Flow("SmallFlow").latest_run["start"].task.data.label == "tiny"  # a read from the database
    runner.run(flow, "run", check=True)
    assert Flow("SmallFlow").latest_run.id == "2"
