"""resume: clone what succeeded before the resume point (metadata only, the
same blobs), re-run the rest, through foreach, branches and joins."""

from __future__ import annotations

from pathlib import Path

import pytest
from cairn import Flow

pytestmark = pytest.mark.e2e

RESUME_FLOW = """
import os
from cairn import FlowSpec, Parameter, current, step


class ResumeFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.items = [1, 2, 3, 4]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        if self.input == 3 and os.path.exists("FAIL_EACH"):
            raise RuntimeError("split 3 fails")
        self.sq = self.input ** 2 * self.alpha
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.total = sum(i.sq for i in inputs)
        self.next(self.a, self.b)

    @step
    def a(self):
        self.side = "a"
        self.next(self.join)

    @step
    def b(self):
        if os.path.exists("FAIL_B"):
            raise RuntimeError("b fails")
        self.side = "b"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.sides = sorted(i.side for i in inputs)
        self.total = inputs.a.total
        self.origin = current.origin_run_id
        self.next(self.end)

    @step
    def end(self):
        self.result = (self.total, self.sides, self.alpha)


if __name__ == "__main__":
    ResumeFlow()
"""


def blob_files(root: Path) -> set[str]:
    return {p.parent.name + p.name for p in (root / "objects").rglob("*") if p.is_file()}


def tasks_of(run) -> dict[str, list]:
    return {step.id: sorted(step, key=lambda t: int(t.id)) for step in run}


def check_clones(run, origin, cloned_steps: set[str], new_blobs: set[str]) -> None:
    """Cloned tasks point at their twin's blobs; only re-run tasks may have
    written new blob files."""
    ours = tasks_of(run)
    theirs = tasks_of(origin)
    assert {s for s, ts in ours.items() if any(t.origin_pathspec for t in ts)} == cloned_steps
    rerun_digests = set()
    for step, tasks in ours.items():
        for t in tasks:
            assert t.successful, t.pathspec
            if step not in cloned_steps:
                assert t.origin_pathspec is None
                rerun_digests |= {a.sha for a in t}
                continue
            twin = next(o for o in theirs[step] if o.index == t.index)
            assert t.origin_pathspec == (twin.origin_pathspec or twin.pathspec)
            assert {a.id: a.sha for a in t} == {a.id: a.sha for a in twin}
            assert t.attempts[0].reason == "cloned"
    assert new_blobs <= rerun_digests


def test_resume_after_a_failed_split_keeps_the_finished_splits(runner):
    flow = runner.write("resume_flow.py", RESUME_FLOW)
    (runner.dir / "FAIL_EACH").touch()
    proc = runner.run(flow, "run", "--alpha", "3")
    assert proc.returncode == 1
    (runner.dir / "FAIL_EACH").unlink()

    proc = runner.run(flow, "resume", check=True)
    assert "resuming run 1 (run-id 2)" in proc.stdout
    # The resume point is the failed step, but its code is unchanged: the
    # splits that succeeded are cloned, only the failed one runs again.
    assert "cloned 3 of 4 splits of 'each': its code is unchanged since run 1" in proc.stdout
    origin, run = Flow("ResumeFlow")["1"], Flow("ResumeFlow")["2"]
    assert run.successful and run.origin_pathspec == "ResumeFlow/1"
    assert run.parameters == {"alpha": 3}
    twins = {t.index: t for t in origin["each"]}
    for t in run["each"]:
        if t.index == 2:
            assert t.origin_pathspec is None
        else:
            assert t.origin_pathspec == twins[t.index].pathspec
            assert {a.id: a.sha for a in t} == {a.id: a.sha for a in twins[t.index]}
    assert not run["gather"].task.origin_pathspec
    assert run.data.result == ((1 + 4 + 9 + 16) * 3, ["a", "b"], 3)
    assert run["join"].task.data.origin == "1"  # current.origin_run_id


def test_resume_through_branches_and_joins_reuses_splits_before_the_resume_point(runner):
    flow = runner.write("resume_flow.py", RESUME_FLOW)
    (runner.dir / "FAIL_B").touch()
    assert runner.run(flow, "run").returncode == 1
    origin = Flow("ResumeFlow")["1"]
    assert not origin["b"].task.successful and origin["a"].task.successful
    (runner.dir / "FAIL_B").unlink()
    before = blob_files(runner.root)

    runner.run(flow, "resume", check=True)
    run = Flow("ResumeFlow")["2"]
    assert run.successful
    check_clones(run, origin, {"start", "each", "gather", "a"}, blob_files(runner.root) - before)
    assert len(list(run["each"])) == 4
    assert run["a"].task.origin_pathspec == "ResumeFlow/1/a/7"
    assert run.data.result == (30, ["a", "b"], 1)


def test_resume_a_succeeded_run_from_a_named_step(runner):
    flow = runner.write("resume_flow.py", RESUME_FLOW)
    runner.run(flow, "run", check=True)
    proc = runner.run(flow, "resume")
    assert proc.returncode == 1
    assert "run ResumeFlow/1 succeeded" in proc.stderr and "resume STEP" in proc.stderr

    before = blob_files(runner.root)
    runner.run(flow, "resume", "gather", check=True)
    origin, run = Flow("ResumeFlow")["1"], Flow("ResumeFlow")["2"]
    check_clones(run, origin, {"start", "each"}, blob_files(runner.root) - before)

    # The origin can be named; clones of clones point at the first origin.
    runner.run(flow, "resume", "join", "--origin-run-id", "2", check=True)
    run3 = Flow("ResumeFlow")["3"]
    assert run3.origin_pathspec == "ResumeFlow/2"
    check_clones(run3, Flow("ResumeFlow")["2"], {"start", "each", "gather", "a", "b"}, set())
    assert run3["start"].task.origin_pathspec == "ResumeFlow/1/start/1"
    assert run3["gather"].task.origin_pathspec == "ResumeFlow/2/gather/6"
    assert run3["join"].task.data.origin == "2"
