"""The flow CLI as Metaflow users type it: the top-level options they pass out
of habit, no abbreviated options, run --namespace, --run-id-file written as
soon as the run exists, run --help that shows each parameter's type, default
and [required], and dump --private.

The flow runs under Metaflow after changing its import line."""

from __future__ import annotations

import pytest
from cairn import CairnException, Flow

pytestmark = pytest.mark.e2e

HABIT_FLOW = """
import os
from cairn import FlowSpec, Parameter, current, get_namespace, step

def default_size(context):
    return 7

class HabitFlow(FlowSpec):
    alpha = Parameter("alpha", help="learning rate", default=0.5)
    size = Parameter("size", help="how many", default=default_size, type=int)
    label = Parameter("label", help="a name", required=True)

    @step
    def start(self):
        # The run id file exists while the run is still going.
        self.id_in_file = None
        if os.environ.get("RUN_ID_FILE"):
            with open(os.environ["RUN_ID_FILE"]) as f:
                self.id_in_file = f.read()
        self.namespace_seen = get_namespace()
        if os.environ.get("FLAKY") and current.retry_count == 0:
            raise RuntimeError("first attempt fails")
        self._private = "hidden"
        self.public = "shown"
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    HabitFlow()
"""


def test_habit_options_run_namespace_and_the_run_id_file(runner):
    flow = runner.write("habit.py", HABIT_FLOW)
    id_file = runner.dir / "run-id"
    proc = runner.run(
        flow, "--metadata=local", "--datastore=local", "--environment", "local", "--no-pylint", "--quiet",
        "--with", "retry:minutes_between_retries=0", "run", "--label", "x", "--namespace", "team:ml",
        "--run-id-file", str(id_file),
        env={"RUN_ID_FILE": str(id_file), "FLAKY": "1"}, check=True,
    )
    run = Flow("HabitFlow").latest_run
    start = run["start"].task
    assert id_file.read_text() == run.id == start.data.id_in_file
    assert start.data.namespace_seen == "team:ml"  # what the client sees inside the run...
    assert "team:ml" not in run.tags                # ...not a tag of the run
    assert [a.status for a in start.attempts] == ["failed", "succeeded"]  # --with retry before `run`
    assert "Task is starting" not in proc.stdout  # --quiet

    proc = runner.run(flow, "run", "--label", "y", "--namespace=", check=True)
    assert Flow("HabitFlow").latest_run["start"].task.data.namespace_seen is None  # the global namespace

    proc = runner.run(flow, "run", "--label", "z", "--run-id-file", str(runner.dir / "missing" / "id"))
    assert proc.returncode == 1 and "cannot write --run-id-file" in proc.stderr
    assert Flow("HabitFlow").latest_run.status == "failed"  # not left looking alive


@pytest.mark.parametrize(("option", "reason"), [
    ("--metadata=service", "no metadata service"),
    ("--datastore=s3", "--datastore-root DIR"),
    ("--environment=conda", "install the packages"),
])
def test_habit_options_with_other_values_are_refused_in_one_line(runner, option, reason):
    flow = runner.write("habit.py", HABIT_FLOW)
    proc = runner.run(flow, option, "run", "--label", "x")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"Unsupported option: {option} is not available: ")
    assert reason in proc.stderr and proc.stderr.count("\n") == 1
    assert not runner.root.exists()  # nothing ran


def test_options_are_never_abbreviated(runner):
    flow = runner.write("habit.py", HABIT_FLOW)
    for argv in (["--datastore-r=elsewhere", "check"], ["run", "--label", "x", "--max-work=2"]):
        proc = runner.run(flow, *argv)
        assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr, proc.stderr
    assert not (runner.dir / "elsewhere").exists() and not runner.root.exists()
    proc = runner.run(flow, "--with", "retry", "check")
    assert proc.returncode == 1 and "--with applies to run and resume" in proc.stderr


def test_run_help_shows_type_default_and_required(runner):
    flow = runner.write("habit.py", HABIT_FLOW)
    help_text = " ".join(runner.run(flow, "run", "--help", check=True).stdout.split())
    assert "--alpha ALPHA learning rate [type: float] [default: 0.5]" in help_text
    assert "--size SIZE how many [type: int] [default: default_size() (computed at run time)]" in help_text
    assert "--label LABEL a name [type: str] [required]" in help_text
    top = " ".join(runner.run(flow, "--help", check=True).stdout.split())
    assert "--metadata LOCAL accepted for Metaflow compatibility: only 'local'" in top


def test_dump_private_artifacts(runner):
    flow = runner.write("habit.py", HABIT_FLOW)
    runner.run(flow, "run", "--label", "x", check=True)
    run_id = Flow("HabitFlow").latest_run.id
    plain = runner.run(flow, "dump", f"{run_id}/start", check=True).stdout
    assert "public" in plain and "_private" not in plain
    private = runner.run(flow, "dump", f"{run_id}/start", "--private", check=True).stdout
    assert "_private" in private and "'hidden'" in private


SPIN_FLOW = """
from cairn import FlowSpec, Parameter, step

class SpinFlow(FlowSpec):
    k = Parameter("k", default=3)

    @step
    def start(self):
        self.items = list(range(self.k))
        self.big = "x" * 10000
        self.next(self.a, self.b)

    @step
    def a(self):
        self.v = 1
        self.next(self.join)

    @step
    def b(self):
        self.v = 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.vs = sorted(i.v for i in inputs)
        self.merge_artifacts(inputs, exclude=["v"])
        self.next(self.each, foreach="items")

    @step
    def each(self):
        print("each got", self.input, self.index, len(self.big), self.vs)
        self.sq = self.input ** 2
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.squares = [i.sq for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    SpinFlow()
"""


def test_spin_reruns_one_step_with_its_past_inputs_and_records_nothing(runner):
    flow = runner.write("spin_flow.py", SPIN_FLOW)
    runner.run(flow, "run", "--k", "4", check=True)
    before = sorted(p.relative_to(runner.root) for p in runner.root.rglob("*") if "logs" not in p.parts)
    each = list(Flow("SpinFlow").latest_run["each"])

    # The step as it is in the file now, with the inputs of a task in the latest run.
    flow.write_text(flow.read_text().replace('print("each got"', 'print("now each got"'))
    out = runner.run(flow, "spin", "each", check=True).stdout
    assert f"with the inputs of SpinFlow/1/each/{each[0].id}" in out
    assert "now each got 0 0 10000 [1, 2]" in out  # its foreach item, and the artifacts it inherits
    assert "it set 1 artifact(s) (not stored):\n  sq  int" in out
    out = runner.run(flow, "spin", "each", "--spin-pathspec", f"1/each/{each[3].id}", check=True).stdout
    assert "now each got 3 3 10000 [1, 2]" in out
    assert "squares  list" in runner.run(flow, "spin", "gather", check=True).stdout  # a join of a foreach
    # A new 10 KB value (a file in objects/ if it were stored): nothing is written.
    flow.write_text(flow.read_text().replace('"x" * 10000', '"y" * 10000'))
    assert "big  str" in runner.run(flow, "spin", "start", check=True).stdout

    after = sorted(p.relative_to(runner.root) for p in runner.root.rglob("*") if "logs" not in p.parts)
    assert [r.id for r in Flow("SpinFlow")] == ["1"]
    assert [p for p in after if p.suffix not in (".db-wal", ".db-shm")] == \
        [p for p in before if p.suffix not in (".db-wal", ".db-shm")]

    proc = runner.run(flow, "spin", "nope")
    assert proc.returncode == 1 and "has no step named 'nope'" in proc.stderr
    flow.write_text(flow.read_text().replace("self.sq = self.input ** 2", "self.sq = 1 / 0"))
    proc = runner.run(flow, "spin", "each")
    assert proc.returncode == 1 and "step 'each' failed: ZeroDivisionError" in proc.stderr


def test_spin_persist_keeps_the_task_apart_for_inspect_spin(runner):
    from cairn import default_metadata, get_metadata, inspect_spin

    flow = runner.write("spin_flow.py", SPIN_FLOW)
    runner.run(flow, "run", "--k", "2", check=True)
    out = runner.run(flow, "spin", "each", "--spin-pathspec", f"1/each/{list(Flow('SpinFlow')['1']['each'])[1].id}",
                     "--persist", check=True).stdout
    assert "kept in" in out and (runner.dir / ".cairn_spin" / "cairn.db").exists()
    assert [r.id for r in Flow("SpinFlow")] == ["1"]  # the datastore itself has no new run
    try:
        assert inspect_spin(str(runner.dir)) == f"local@{runner.dir / '.cairn_spin'}"
        spun = Flow("SpinFlow").latest_run
        task = spun["each"].task
        assert spun.successful and task["sq"].data == 1  # its own artifact...
        assert task.data.big == "x" * 10000 and task.data.vs == [1, 2]  # ...and what it inherited
        assert any(t.startswith("spin:SpinFlow/1/each/") for t in spun.system_tags)
    finally:
        default_metadata()
    assert get_metadata() == f"local@{runner.root}"
    with pytest.raises(CairnException, match="no spin results"):
        inspect_spin(str(runner.dir / "elsewhere"))


def test_spin_uses_the_configs_of_the_run_it_takes_inputs_from(runner):
    flow = runner.write(
        "config_spin.py",
        """
        from cairn import Config, FlowSpec, step

        class ConfigSpinFlow(FlowSpec):
            cfg = Config("cfg", default_value={"scale": 2})

            @step
            def start(self):
                self.x = 5
                self.next(self.end)

            @step
            def end(self):
                print("scaled", self.x * self.cfg.scale)

        if __name__ == "__main__":
            ConfigSpinFlow()
        """,
    )
    runner.run(flow, "--config-value", "cfg", '{"scale": 7}', "run", check=True)
    assert "scaled 35" in runner.run(flow, "spin", "end", check=True).stdout
