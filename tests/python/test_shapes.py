"""Every shape of tests/graphs runs end to end as a real flow file, and the
client shows what the in-memory simulation of shapes.py says it must."""

from __future__ import annotations

import re

import pytest
import shapes

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", shapes.shape_names())
def test_shape_runs_end_to_end(runner, name):
    spec = shapes.load(name)
    sim = shapes.Simulation(spec)
    flow = runner.dir / f"{name}.py"
    flow.write_text(shapes.flow_source(spec))
    runner.run(flow, "run", check=True)

    from cairn import Flow

    run = Flow(spec["flow"]).latest_run
    assert run.successful
    # The end step's trace is the whole run: every join's inputs in split
    # order, every foreach item's index, input and foreach stack.
    assert run.data.trace == sim.trace

    ran = {s.id for s in run}
    for step, expected in sim.tasks.items():
        if not expected:
            assert step not in ran, f"{step} should not have run (switch took the other case)"
            continue
        tasks = list(run[step])
        assert len(tasks) == len(expected), step
        assert sorted(t.data.trace[-1] for t in tasks) == sorted(expected), step
        for t in tasks:
            m = re.match(r"\w+\[(\d+)\]=", str(t.data.trace[-1]))
            if m:  # right after a foreach: the client knows the split index too
                assert t.index == int(m.group(1))
    for join, counts in sim.join_inputs.items():  # len(inputs) in each join task
        assert sorted(t.data.input_count for t in run[join]) == sorted(counts), join


def test_shapes_cover_the_issue():
    assert set(shapes.shape_names()) >= {
        "linear", "branch", "nested_branch", "foreach", "nested_foreach", "foreach_in_branch",
        "branch_in_foreach", "switch", "switch_in_foreach", "recursive_switch",
    }


def test_recursive_switch_loops_exactly_until_it_exits():
    sim = shapes.Simulation(shapes.load("recursive_switch"))
    assert sim.counts()["work"] == shapes.LOOPS
    assert sim.trace == ["start"] + ["work", "check"] * shapes.LOOPS + ["end"]


# --- joins ---------------------------------------------------------------------
def join_run(runner, mode: str, ok: bool = True):
    proc = runner.run(runner.flow("join_flow.py"), "run", "--mode", mode)
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    from cairn import Flow

    return Flow("JoinFlow").latest_run, proc


def test_join_inputs_by_name_in_order_len_and_index(runner):
    run, _ = join_run(runner, "none")
    join = run["join"].task.data
    assert join.by_name == ["from a", "from b", "from c"]
    assert join.in_order == ["from a", "from b", "from c"]  # the order of self.next(self.a, self.b, self.c)
    assert join.count == 3
    assert join.total == 6
    assert join.first == "from a"
    # Without merge_artifacts a join inherits nothing but the parameters.
    assert join.had_shared is False
    assert run.data.final == {"x": None, "score": None, "shared": None, "table": None, "only_a": None}
    assert run.data.mode == "none"


def test_merge_artifacts_propagates_what_all_inputs_share_and_keeps_what_the_join_set(runner):
    run, _ = join_run(runner, "resolve")
    assert run.data.final == {
        "x": "chosen in join",            # set in the join before merging: not a conflict
        "score": 3,
        "shared": "same everywhere",      # unchanged in every branch
        "table": {"k": [1, 2, 3]},        # read (not changed) in a branch: still the same value
        "only_a": "a alone",              # set by one branch only, so nothing disagrees
    }


def test_merge_artifacts_exclude(runner):
    run, _ = join_run(runner, "exclude")
    assert run.data.final == {"x": None, "score": None, "shared": "same everywhere",
                              "table": {"k": [1, 2, 3]}, "only_a": "a alone"}


def test_merge_artifacts_include(runner):
    run, _ = join_run(runner, "include")
    assert run.data.final == {"x": None, "score": None, "shared": "same everywhere",
                              "table": None, "only_a": None}


def test_merge_artifacts_conflict_names_the_artifact(runner):
    run, proc = join_run(runner, "conflict", ok=False)
    assert not run.successful
    assert re.search(r"\[\d+/join/\d+\] Task failed: MergeArtifactsError: step 'join' cannot merge "
                     r"artifacts whose values differ between its inputs: score\.", proc.stdout), proc.stdout
    assert not run["join"].task.successful


def test_merge_artifacts_include_of_a_missing_artifact_names_it(runner):
    _, proc = join_run(runner, "include_missing", ok=False)
    assert "merge_artifacts(include=...) names artifacts no input has: nowhere" in proc.stdout


# --- foreach -------------------------------------------------------------------
@pytest.mark.parametrize("kind, values", [
    ("list", ["item0", "item1", "item2"]),
    ("tuple", ["item0", "item1", "item2"]),
    ("range", [10, 11, 12]),
    ("str", ["a", "b", "c"]),
])
def test_foreach_over_any_iterable_in_split_order(runner, kind, values):
    runner.run(runner.flow("foreach_flow.py"), "run", "--n", "3", "--kind", kind, check=True)
    from cairn import Flow

    run = Flow("ForeachFlow").latest_run
    join = run["join"].task.data
    assert join.values == values
    assert join.indices == [0, 1, 2]
    assert join.seen == list(enumerate(values))
    tasks = list(run["work"])
    assert sorted((t.index, t.data.seen) for t in tasks) == list(zip(range(3), enumerate(values)))


def test_empty_foreach_is_a_clear_error(runner):
    proc = runner.run(runner.flow("foreach_flow.py"), "run", "--n", "0")
    assert proc.returncode == 1
    assert ("Run ForeachFlow/1 failed: step 'start' (task 1) failed: CairnException: foreach over "
            "self.items in step 'start' has no items; a foreach needs at least one") in proc.stdout
    from cairn import Flow

    assert [s.id for s in Flow("ForeachFlow").latest_run] == ["start"]


def test_max_num_splits_defaults_to_100_with_a_clear_error(runner):
    proc = runner.run(runner.flow("foreach_flow.py"), "run", "--n", "150")
    assert proc.returncode == 1
    assert ("foreach over self.items in step 'start' has 150 items, more than --max-num-splits 100; "
            "raise it with 'run --max-num-splits 150'") in proc.stdout
    from cairn import Flow

    assert [s.id for s in Flow("ForeachFlow").latest_run] == ["start"]  # no split was started


def test_max_num_splits_can_be_raised(runner):
    runner.run(runner.flow("foreach_flow.py"), "run", "--n", "150", "--max-num-splits", "100000",
               "--quiet", check=True)
    from cairn import Flow

    run = Flow("ForeachFlow").latest_run
    assert len(list(run["work"])) == 150
    assert run["join"].task.data.values == [f"item{i}" for i in range(150)]


def test_max_num_splits_and_max_workers_must_be_positive(runner):
    for option in ("--max-num-splits", "--max-workers"):
        proc = runner.run(runner.flow("foreach_flow.py"), "run", option, "0")
        assert proc.returncode == 2
        assert f"argument {option}: must be at least 1, got 0" in proc.stderr
    assert not runner.root.exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_max_workers_limits_how_many_tasks_run_at_once(runner, workers):
    runner.run(runner.flow("workers_flow.py"), "run", "--max-workers", str(workers),
               "--overlap", str(workers), check=True)
    from cairn import Flow

    join = Flow("WorkersFlow").latest_run["join"].task.data
    assert join.waited_out is False  # every task saw `workers` tasks at once...
    assert join.state == {"active": 0, "peak": workers, "entered": 6}  # ...and never more


def test_the_counter_sees_overlap_when_workers_allow_it(runner):
    # The same flow with the default --max-workers 16: all six overlap, so
    # the counter above would have caught a limit that was not enforced.
    runner.run(runner.flow("workers_flow.py"), "run", "--overlap", "6", check=True)
    from cairn import Flow

    join = Flow("WorkersFlow").latest_run["join"].task.data
    assert join.waited_out is False
    assert join.state["peak"] == 6


# --- switch --------------------------------------------------------------------
SWITCH_FLOW = """
    from cairn import FlowSpec, Parameter, step

    class PickFlow(FlowSpec):
        mode = Parameter("mode", default="low")

        @step
        def start(self):
            self.choice = self.mode
            self.next({"low": self.small, "high": self.big}, condition="choice")

        @step
        def small(self):
            self.size = "small"
            self.next(self.end)

        @step
        def big(self):
            self.size = "big"
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        PickFlow()
    """


@pytest.mark.parametrize("mode, taken, skipped", [("low", "small", "big"), ("high", "big", "small")])
def test_switch_takes_the_case_named_by_the_condition(runner, mode, taken, skipped):
    runner.run(runner.write("pick.py", SWITCH_FLOW), "run", "--mode", mode, check=True)
    from cairn import Flow

    run = Flow("PickFlow").latest_run
    assert run.data.size == taken
    assert {s.id for s in run} == {"start", taken, "end"}


def test_switch_with_an_unknown_value_is_a_clear_error(runner):
    proc = runner.run(runner.write("pick.py", SWITCH_FLOW), "run", "--mode", "medium")
    assert proc.returncode == 1
    assert ("Run PickFlow/1 failed: step 'start' (task 1) failed: CairnException: switch in step "
            "'start': self.choice is 'medium', which matches none of 'low', 'high'") in proc.stdout


# --- progress output -------------------------------------------------------------
def run_in_terminal(runner, flow, *args) -> tuple[int, str]:
    """Runs a flow with a pseudo-terminal as its stdout and stderr, as a user's shell would."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(flow), *args], cwd=runner.dir, env=runner.env,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: every process holding the terminal has exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode().replace("\r\n", "\n")


def test_terminal_shows_one_progress_line_for_a_wide_foreach(runner):
    code, out = run_in_terminal(runner, runner.flow("foreach_flow.py"), "run", "--n", "30", "--shout", "7")
    assert code == 0, out
    assert re.search(r"\[1/work\] 30/30 done, 0 running, 0 failed \([\d.]+ tasks/s, took \d+s\)\n", out), out
    assert "\x1b[" in out  # the line was redrawn in place while the foreach ran
    assert not re.search(r"\[1/work/\d+\] Task is starting", out)
    assert not re.search(r"\[1/work/\d+\] Task finished", out)
    assert re.search(r"\[1/work/\d+\] item 7 says hello\n", out)  # task output still shows
    assert "[1/start/1] Task is starting." in out  # narrow steps keep their lines
    assert "Done! Run ForeachFlow/1 succeeded (33 tasks)." in out


def test_terminal_progress_line_counts_a_failed_task(runner):
    code, out = run_in_terminal(runner, runner.flow("foreach_flow.py"), "run", "--n", "30", "--fail", "3",
                                "--max-workers", "2")
    assert code == 1
    assert re.search(r"\[1/work/\d+\] Task failed: ValueError: item 3 fails on purpose\n", out), out
    assert re.search(r"\[1/work\] \d+/30 done, 0 running, 1 failed \(.*, stopped after \d+s\)\n", out), out


def test_without_a_terminal_output_stays_line_based(runner):
    proc = runner.run(runner.flow("foreach_flow.py"), "run", "--n", "30", check=True)
    assert len(re.findall(r"\[1/work/\d+\] Task is starting\.\n", proc.stdout)) == 30
    assert "\x1b[" not in proc.stdout
    assert "done," not in proc.stdout


def test_quiet_on_a_terminal_stays_line_based(runner):
    code, out = run_in_terminal(runner, runner.flow("foreach_flow.py"), "--quiet", "run", "--n", "30",
                                "--shout", "7")
    assert code == 0, out
    assert "\x1b[" not in out
    assert "Task is starting" not in out
    assert "done," not in out
    assert re.search(r"\[1/work/\d+\] item 7 says hello\n", out)
    assert "Done! Run ForeachFlow/1 succeeded (33 tasks)." in out


# --- examples --------------------------------------------------------------------
def run_example(runner, name: str, *args: str):
    from conftest import EXAMPLES

    proc = runner.run(runner.copy(EXAMPLES / name), "run", *args, check=True)
    from cairn import Flow

    flow = {"branch.py": "BranchFlow", "foreach.py": "ForeachFlow", "switch.py": "SwitchFlow",
            "sklearn_sweep.py": "SklearnSweepFlow"}[name]
    return Flow(flow).latest_run, proc


def test_example_branch(runner):
    run, proc = run_example(runner, "branch.py")
    assert run.data.summary == {"range": (1.0, 9.0), "mean": 3.875, "median": 3.5}
    assert run.data.values == [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]  # merged: both branches share it
    assert run.data.low == 1.0 and run.data.median == 3.5  # merged: one branch set each
    assert "8 numbers: {'range': (1.0, 9.0), 'mean': 3.875, 'median': 3.5}" in proc.stdout


def test_example_foreach(runner):
    run, _ = run_example(runner, "foreach.py", "--words", '["ab", "xyz"]')
    assert run.data.lengths == {"ab": 2, "xyz": 3}
    assert run.data.first_letters == [["a", "b"], ["x", "y"]]
    cells = sorted(t.data.cell for t in run["letter"])
    assert cells == [(0, 0, "a", True), (0, 1, "b", False), (1, 0, "x", False), (1, 1, "y", False)]


@pytest.mark.parametrize("number, kind, root", [(10.0, "search", 10 ** 0.5), (49.0, "exact", 7.0)])
def test_example_switch(runner, number, kind, root):
    run, _ = run_example(runner, "switch.py", "--number", str(number), "--tolerance", "0.001")
    assert run.data.kind == kind
    assert abs(run.data.root - root) < 0.001
    steps = {s.id for s in run}
    if kind == "exact":
        assert steps == {"start", "exact", "end"}
    else:
        loops = run.data.iterations
        assert loops > 1
        assert len(list(run["halve"])) == len(list(run["check"])) == loops  # the loop ran until it exited
        assert "exact" not in steps


def test_example_sklearn_sweep(runner):
    run, _ = run_example(runner, "sklearn_sweep.py")
    results = run.data.results
    grid = run["start"].task.data.grid
    assert len(results) == len(grid) == len(list(run["train"]))
    assert list(results["model"]) == list(grid["model"])  # the join saw the rows in grid order
    best = results["score"].idxmax()
    assert run.data.best_score == results["score"].max()
    assert run.data.best_setting["model"] == results.loc[best, "model"]
    assert 0.8 < run.data.best_score <= 1.0
    assert run.data.train_accuracy >= 0.9  # the best model was fitted and stored
    assert type(run.data.best_model).__module__.startswith("sklearn")


def test_terminal_progress_totals_a_nested_foreach_and_counts_retries_once(runner):
    code, out = run_in_terminal(runner, runner.flow("nested_progress_flow.py"), "run")
    assert code == 0, out
    # 25 + 26 + 27 inner tasks, over three inner splits; three retried once each.
    assert re.search(r"\[1/inner\] 78/78 done, 0 running, 0 failed \(.*took \d+s\)\n", out), out
    assert len(re.findall(r"\[1/inner/\d+\] Task failed: ValueError: retry me \(will retry\)", out)) == 3
    assert "[1/outer/" in out  # three outer tasks: too narrow for a progress line
