"""A full disk (issue 15, item 4), on a real 16 MiB tmpfs holding the
datastore, once per write path: a blob, a task's log, the engine's commit.
Each time the run is marked failed with the reason, the task rows that fit
are recorded, and the documented recovery (free space, then `resume`) works."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from cairn import Flow, _core

from .faultlib import count_trial

pytestmark = pytest.mark.faults

DISK_FLOW = """
import os
from cairn import FlowSpec, step

def fill(path):
    # Every byte the file system has left, in shrinking writes.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for size in (1 << 20, 4096, 1):
        while True:
            try:
                os.write(fd, b"x" * size)
            except OSError:
                break
    os.close(fd)

class DiskFlow(FlowSpec):
    @step
    def start(self):
        self.small = 1
        self.next(self.work)

    @step
    def work(self):
        mode = os.environ["MODE"]
        if mode == "blob":
            self.big = os.urandom(6 << 20)            # incompressible
        elif mode == "log":
            for _ in range(4):
                print("y" * (1 << 20))
        elif mode == "commit" and not os.path.exists(os.environ["FILLED"]):
            open(os.environ["FILLED"], "w").close()   # once: a rerun must not fill it again
            fill(os.environ["FILLER"])
        self.value = 42
        self.next(self.end)

    @step
    def end(self):
        self.result = self.value + self.small

if __name__ == "__main__":
    DiskFlow()
"""


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (root can mount one; elsewhere the test cannot run)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", f"cairn-{uuid.uuid4().hex[:8]}",
                           str(mount)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("mode", ["blob", "log", "commit"])
def test_full_disk_fails_the_run_with_its_reason_and_resume_recovers(
        runner, small_disk, mode, monkeypatch):
    from cairn import client

    root = small_disk / ".cairn"
    filler = small_disk / "filler"
    runner.env.update({"CAIRN_HOME": str(root), "MODE": mode, "FILLER": str(filler),
                       "FILLED": str(runner.dir / "filled")})
    monkeypatch.setenv("CAIRN_HOME", str(root))
    client._stores.clear()
    flow = runner.write("disk.py", DISK_FLOW)
    # Less room than the step needs: the reserve takes 1 MiB (a 16th of the
    # disk), the blob 6 MiB, the log 4 MiB.
    filler_mib = {"blob": 10, "log": 12, "commit": 0}[mode]
    if filler_mib:
        filler.write_bytes(b"\0" * (filler_mib << 20))

    proc = runner.run(flow, "run")
    failed = True
    try:
        assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
        ds = _core.Datastore(str(root), readonly=True)
        run = ds.get_run("DiskFlow", 1)
        assert run.status == "failed"
        tasks = {t.step: t for t in ds.tasks(1)}
        assert tasks["start"].status == "succeeded"
        if mode == "commit":
            assert tasks["work"].status == "succeeded"  # recorded in the reserve's room
            assert "disk is full" in run.failure, run.failure
            assert "free space, then resume" in run.failure
        else:
            # The task fails for lack of space, or, if a commit meets the full
            # disk first, the run stops and kills it; either way, it says why.
            assert tasks["work"].status == "failed"
            reason = tasks["work"].attempts[-1].reason
            assert "No space left on device" in reason or "disk is full" in reason, reason
            assert "No space left on device" in run.failure or "disk is full" in run.failure, \
                run.failure
        del ds

        filler.unlink()  # free space, then resume
        proc = runner.run(flow, "resume")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        resumed = Flow("DiskFlow")["2"]
        assert resumed.successful
        assert resumed["end"].task.data.result == 43
        assert resumed["start"].task.origin_pathspec == "DiskFlow/1/start/1"
        failed = False
    finally:
        count_trial("disk full", failed)
