"""Failure modes of a task, each run for real: the attempt is recorded with
its reason, the terminal shows the reason and the end of stderr, a sibling
still running finishes and is recorded, and the run fails with a non-zero
exit status. Also: a full disk, and corrupt or missing blobs."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from cairn import Flow, _core

pytestmark = pytest.mark.e2e

MODES_FLOW = """
import os, signal, subprocess, sys, threading, time
from cairn import Flow, FlowSpec, current, namespace, step, timeout

MODE = os.environ["MODE"]


class ModesFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.bad, self.slow)

    @timeout(seconds=int(os.environ["TIMEOUT"]))
    @step
    def bad(self):
        print("bad is running")
        print("about to fail", file=sys.stderr, flush=True)
        if MODE == "exception":
            raise ValueError("no good value")
        if MODE == "exit":
            sys.exit(3)
        if MODE == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        if MODE == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if MODE == "hang":
            child = subprocess.Popen(["sleep", "300"])
            with open("grandchild.pid", "w") as f:
                f.write(str(child.pid))
            time.sleep(300)
        if MODE == "unpicklable":
            self.fine = 1
            self.lock = threading.Lock()
        self.next(self.join)

    @step
    def slow(self):
        # Finishes only after the engine has recorded bad's failure, which
        # shows that a failure lets tasks still running complete.
        namespace(None)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                task = Flow("ModesFlow")[current.run_id]["bad"].task
                if task is not None and not task.successful:
                    break
            except Exception:
                pass
            time.sleep(0.02)
        else:
            raise RuntimeError("the failure of bad was never recorded")
        self.done = True
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ModesFlow()
"""

# mode -> (attempt status, exit code, signal, pattern the reason matches)
MODES = {
    "exception": ("failed", 1, 0, r"^ValueError: no good value$"),
    "exit": ("failed", 3, 0, r"^SystemExit: the step called sys\.exit\(3\)$"),
    "segfault": ("killed", -1, 11, r"^the task was killed by signal 11 \(SIGSEGV\)$"),
    "sigkill": ("killed", -1, 9, r"^the task was killed by signal 9 \(SIGKILL"),
    # @timeout raises in the step (as in Metaflow); the step's processes die with it.
    "hang": ("failed", 1, 0, r"^TimeoutException: step 'bad' timed out after 1 s \(@timeout\)$"),
    "unpicklable": ("failed", 1, 0, r"^ArtifactError: artifact 'lock' of step 'bad' could not be pickled"),
}


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for its reaper counts)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.mark.parametrize("mode", list(MODES))
def test_failure_is_recorded_and_a_running_sibling_finishes(runner, mode):
    flow = runner.write("modes.py", MODES_FLOW)
    # Only the hanging step should ever meet its timeout, however loaded the machine.
    proc = runner.run(flow, "run", env={"MODE": mode, "TIMEOUT": "1" if mode == "hang" else "600"})
    status, exit_code, signal, reason = MODES[mode]

    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = Flow("ModesFlow").latest_run
    assert run.status == "failed" and not run.finished and not run.successful
    bad = run["bad"].task
    assert not bad.successful
    assert [a.attempt for a in bad.attempts] == [0]
    attempt = bad.attempts[0]
    assert (attempt.status, attempt.exit_code, attempt.signal) == (status, exit_code, signal)
    assert re.search(reason, attempt.reason), attempt.reason
    assert bad.exception is not None and attempt.reason.endswith(bad.exception.message)
    assert "about to fail" in bad.stderr and bad.stdout == "bad is running\n"
    assert [a.id for a in bad if a.id in ("fine", "lock")] == []  # nothing half-saved

    slow = run["slow"].task
    assert slow.successful and slow.data.done is True
    assert "join" not in run

    # The terminal: the end of stderr, then the reason on one line.
    out = proc.stdout
    assert re.search(r"\[1/bad/2\] Task failed; the end of its stderr:\n(    .*\n)*    about to fail", out), out
    assert re.search(r"\[1/bad/2\] Task failed: " + reason.lstrip("^").rstrip("$"), out, re.MULTILINE), out
    assert f"Run ModesFlow/1 failed: step 'bad' (task 2) failed: {attempt.reason}" in out

    if mode == "exception":
        assert bad.exception.type == "ValueError"
        assert 'raise ValueError("no good value")' in bad.exception.traceback
        assert "cairn/runtime/task.py" not in bad.exception.traceback  # only the user's frames
    if mode == "segfault":
        assert "Segmentation fault" in bad.stderr  # faulthandler's Python stack
    if mode == "hang":
        # The whole process group was killed: the step's `sleep` too.
        pid = int((runner.dir / "grandchild.pid").read_text())
        assert wait_until(lambda: process_gone(pid)), f"sleep {pid} outlived its timed-out task"


def test_one_failing_split_of_a_hundred_fails_the_run(runner):
    flow = runner.write(
        "wide.py",
        """
        from cairn import FlowSpec, step

        class WideFlow(FlowSpec):
            @step
            def start(self):
                self.items = list(range(100))
                self.next(self.each, foreach="items")

            @step
            def each(self):
                if self.input == 37:
                    raise RuntimeError("item 37 is bad")
                self.out = self.input * 2
                self.next(self.join)

            @step
            def join(self, inputs):
                self.outs = [i.out for i in inputs]
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            WideFlow()
        """,
    )
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    run = Flow("WideFlow").latest_run
    assert run.status == "failed" and not run.finished and not run.successful
    tasks = list(run["each"])
    failed = [t for t in tasks if not t.successful]
    assert [t.index for t in failed] == [37]
    assert failed[0].attempts[0].reason == "RuntimeError: item 37 is bad"
    assert all(t.data.out == t.index * 2 for t in tasks if t.successful)
    assert "join" not in run
    assert "failed: step 'each' (task " in proc.stdout and "RuntimeError: item 37 is bad" in proc.stdout


BIG_FLOW = """
import os
from cairn import FlowSpec, step

class BigFlow(FlowSpec):
    @step
    def start(self):
        self.small = "fits"
        self.big = os.urandom(4 * 1024 * 1024)  # incompressible, twice the disk
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    BigFlow()
"""


@pytest.fixture
def tiny_disk(runner):
    """The datastore on a 2 MiB tmpfs. Mounting must work (we run as root):
    if it does not, the test fails rather than being skipped."""
    runner.root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(runner.root)], check=True)
    try:
        yield runner.root
    finally:
        import cairn.client

        cairn.client._stores.clear()  # close the client's database before unmounting
        subprocess.run(["umount", str(runner.root)], check=False)
        if os.path.ismount(runner.root):
            subprocess.run(["umount", "-l", str(runner.root)], check=True)


def test_full_disk_fails_the_task_with_a_clear_reason_and_leaves_no_partial_blob(runner, tiny_disk):
    proc = runner.run(runner.write("big.py", BIG_FLOW), "run")
    assert proc.returncode == 1
    run = Flow("BigFlow").latest_run  # the datastore opens and reads fine
    task = run["start"].task
    assert not task.successful and list(task) == []
    reason = task.attempts[0].reason
    assert reason.startswith("ArtifactError: artifact 'big' of step 'start' (4194304 bytes) could not be stored")
    assert "No space left on device" in reason
    assert "No space left on device" in proc.stdout
    # Every file under objects/ is a whole, valid blob; no temp file is left.
    store = _core.ArtifactStore(str(tiny_disk))
    blobs = [p for p in (tiny_disk / "objects").rglob("*") if p.is_file()]
    for path in blobs:
        digest = path.parent.name + path.name
        assert store.path_of(digest) == str(path), f"stray file {path}"
        store.get(digest)
    assert sum(p.stat().st_size for p in blobs) < 1024 * 1024


def _corrupt(path: Path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_or_missing_blob_is_reported_with_the_artifact_pathspec(runner):
    flow = runner.write(
        "corrupt.py",
        """
        import os
        from cairn import FlowSpec, step

        class CorruptFlow(FlowSpec):
            @step
            def start(self):
                self.raw = os.urandom(10000)
                self.numbers = list(range(5000))
                self.next(self.end)

            @step
            def end(self):
                print(len(self.raw))

        if __name__ == "__main__":
            CorruptFlow()
        """,
    )
    runner.run(flow, "run", check=True)
    start = Flow("CorruptFlow")["1"]["start"].task
    store = _core.ArtifactStore(str(runner.root))
    raw_path = Path(store.path_of(start["raw"].sha))
    numbers_path = Path(store.path_of(start["numbers"].sha))
    _corrupt(raw_path)
    numbers_path.unlink()

    start = Flow("CorruptFlow")["1"]["start"].task
    with pytest.raises(_core.DatastoreError, match=r"artifact CorruptFlow/1/start/1/raw: .*does not match"):
        _ = start.data.raw
    with pytest.raises(_core.NotFoundError, match=r"artifact CorruptFlow/1/start/1/numbers: .*not found"):
        _ = start.data.numbers

    # A task reading the corrupt input fails, naming it, instead of using it.
    proc = runner.run(flow, "resume", "end")
    assert proc.returncode == 1
    end = Flow("CorruptFlow")["2"]["end"].task
    assert re.match(r"DatastoreError: artifact CorruptFlow/2/start/1/raw: .*does not match", end.attempts[0].reason)


def test_on_a_terminal_a_failed_tasks_stderr_is_shown_once(runner):
    """stdout and stderr on one terminal: the traceback streamed as the task
    ran is not repeated above the reason (in a pipe or a log file it is,
    as the test above checks)."""
    import pty
    import sys

    flow = runner.write("oops.py", """
        from cairn import FlowSpec, step

        class OopsFlow(FlowSpec):
            @step
            def start(self):
                raise ValueError("no good value")
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            OopsFlow()
    """)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(flow), "run"], cwd=runner.dir, env=runner.env,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=60) == 1
    screen = b"".join(chunks).decode(errors="replace")
    assert screen.count('raise ValueError("no good value")') == 1, screen
    assert "the end of its stderr" not in screen, screen
    assert "Task failed: ValueError: no good value" in screen, screen
