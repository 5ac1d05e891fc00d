"""resume after an interrupted foreach: the splits that finished are cloned
when the step's code is unchanged (its code hash), and all re-run when it
changed; the console says which, and why."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from cairn import Flow, _core

pytestmark = pytest.mark.e2e

SPLIT_FLOW = """
import os
import time
from cairn import FlowSpec, step


class SplitFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(8))
        self.next(self.train, foreach="items")

    @step
    def train(self):
        # Splits 5 and up wait for the file GO: the test interrupts the run
        # while they do, once the first five are recorded.
        while self.input >= 5 and not os.path.exists("GO"):
            time.sleep(0.02)
        self.score = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.scores = sorted(i.score for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SplitFlow()
"""


def wait_until(condition, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def interrupted_run(runner, sig: int = signal.SIGINT):
    """Run 1, interrupted with `sig` once exactly 5 of its 8 splits are recorded."""
    flow = runner.write("split_flow.py", SPLIT_FLOW)
    engine = subprocess.Popen([sys.executable, str(flow), "run"], cwd=runner.dir, env=runner.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def five_recorded() -> bool:
        try:
            ds = _core.Datastore(str(runner.root), readonly=True)
            return sum(t.status == "succeeded" for t in ds.tasks(1, "train")) == 5
        except Exception:  # noqa: BLE001 - not created yet
            return False

    try:
        assert wait_until(five_recorded), "five splits never finished"
        engine.send_signal(sig)
        assert engine.wait(timeout=60) == (130 if sig == signal.SIGINT else -sig)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    (runner.dir / "GO").touch()
    return flow


def test_resume_clones_the_finished_splits_of_an_unchanged_step(runner):
    flow = interrupted_run(runner)
    proc = runner.run(flow, "resume", check=True)
    assert "cloned 5 of 8 splits of 'train': its code is unchanged since run 1" in proc.stdout
    run = Flow("SplitFlow")["2"]
    assert run.successful
    train = list(run["train"])
    assert sorted(t.index for t in train if t.origin_pathspec) == [0, 1, 2, 3, 4]
    assert sorted(t.index for t in train if not t.origin_pathspec) == [5, 6, 7]
    assert run["join"].task.data.scores == [i * 10 for i in range(8)]


def test_resume_reruns_every_split_of_a_step_whose_code_changed(runner):
    flow = interrupted_run(runner)
    flow.write_text(flow.read_text().replace("self.input * 10", "self.input * 100"))
    proc = runner.run(flow, "resume", check=True)
    assert "re-running every task of 'train': its code changed since run 1" in proc.stdout
    assert "splits of 'train'" not in proc.stdout
    run = Flow("SplitFlow")["2"]
    assert not any(t.origin_pathspec for t in run["train"])
    assert run["join"].task.data.scores == [i * 100 for i in range(8)]


def test_resume_after_kill_9_clones_the_recorded_splits(runner):
    flow = interrupted_run(runner, signal.SIGKILL)
    proc = runner.run(flow, "resume", check=True)
    # The splits left running are recorded as such, so 'train' is a resume
    # point, as after Ctrl-C: its finished splits are cloned by the same rule.
    assert "cloned 5 of 8 splits of 'train': its code is unchanged since run 1" in proc.stdout
    run = Flow("SplitFlow")["2"]
    assert sorted(t.index for t in run["train"] if t.origin_pathspec) == [0, 1, 2, 3, 4]
    assert run["join"].task.data.scores == [i * 10 for i in range(8)]
