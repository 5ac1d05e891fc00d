"""The rest of Metaflow's client API, as its documentation describes it:
metadata providers, Task.metadata, a task reading (and tagging) itself while
it runs, profile, the task graph and log lines; and parallel_map.

Every flow here runs under Metaflow after changing its import line."""

from __future__ import annotations

import os
import platform

import pytest
from cairn import (
    CairnException,
    Flow,
    NotFoundError,
    Run,
    default_metadata,
    get_metadata,
    metadata,
    parallel_imap_unordered,
    parallel_map,
)
from cairn.errors import TaggingError

pytestmark = pytest.mark.e2e

META_FLOW = """
from cairn import FlowSpec, Parameter, Task, current, profile, step

class MetaFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)
    size = Parameter("size", default=3)

    @step
    def start(self):
        self.names = sorted(current.parameter_names)
        me = Task(current.pathspec)             # the running task reads itself...
        self.was_finished = me.finished
        me.parent.parent.add_tag("tagged-by-start")   # ...and tags its own run
        timings = {}
        with profile("crunch", stats_dict=timings):
            self.total = sum(range(1000))
        self.timings = timings
        with profile("quiet"):
            pass
        self.steps = [s.__name__ for s in self]
        self.next(self.end)

    @step
    def end(self):
        print("first line")
        print("second line")

if __name__ == "__main__":
    MetaFlow()
"""


def test_task_metadata_profile_and_a_task_that_tags_its_own_run(runner):
    flow = runner.write("meta_flow.py", META_FLOW)
    runner.run(flow, "run", "--size", "4", check=True)
    run = Flow("MetaFlow").latest_run
    start, end = run["start"].task, run["end"].task

    assert "tagged-by-start" in run.user_tags
    assert start.data.was_finished is False  # it saw itself running
    assert start.data.names == ["alpha", "size"]
    assert start.data.steps == ["start", "end"]  # FlowSpec.__iter__: the steps
    assert set(start.data.timings) == {"crunch"} and start.data.timings["crunch"] >= 0
    assert "PROFILE: quiet starting" in start.stdout and "PROFILE: quiet completed in" in start.stdout

    md = start.metadata_dict
    assert (md["attempt"], md["origin-run-id"], md["runtime"], md["ds-type"]) == ("0", "None", "local", "local")
    assert md["user"] == run.user and md["python_version"] == platform.python_version()
    assert md["attempt_ok"] == "True" and md["ds-root"] == str(runner.root)
    assert md["log_location_stdout"].endswith(os.path.join("logs", run.id, "start", f"{start.id}.0.out"))
    assert int(md["profile:crunch"]) == start.data.timings["crunch"] and "profile:quiet" in md
    entries = start.metadata
    assert all(m.task == start and isinstance(m.created_at, int) for m in entries)
    assert [m.type for m in entries if m.name == "profile:crunch"] == ["profile"]

    assert start.runtime_name == "local"
    assert list(start.child_tasks) == [end] and list(end.parent_tasks) == [start]
    assert list(end.loglines("stdout")) == [(None, "first line"), (None, "second line")]
    assert list(end.loglines("stderr")) == []
    assert run.end_task == end and run.finished and end.exception is None
    assert repr(start.attempts[0]).startswith("Attempt(0, status='succeeded', exit_code=0")

    with pytest.raises(TaggingError, match="at least one tag"):
        run.replace_tags([], [])
    with pytest.raises(TaggingError):
        run.add_tags([])


def test_metadata_names_the_datastore_the_client_reads(runner, tmp_path):
    runner.run(runner.write("meta_flow.py", META_FLOW), "run", check=True)
    assert get_metadata() == f"local@{runner.root}"
    elsewhere = tmp_path / "other"
    (elsewhere / ".cairn").mkdir(parents=True)
    try:
        # A folder holding a datastore, or the datastore itself; local@ works too.
        assert metadata(str(elsewhere)) == f"local@{elsewhere / '.cairn'}"
        assert get_metadata() == f"local@{elsewhere / '.cairn'}"
        with pytest.raises(NotFoundError):
            Flow("MetaFlow")  # not in that datastore
        assert metadata(f"local@{runner.root}") == f"local@{runner.root}"
        assert Flow("MetaFlow").latest_run.successful
        for bad in ["service@https://mf.example.com", "https://mf.example.com"]:
            with pytest.raises(CairnException, match="no metadata service"):
                metadata(bad)
        with pytest.raises(CairnException, match="no datastore at"):
            metadata(str(tmp_path / "missing"))
    finally:
        assert default_metadata() == f"local@{runner.root}"


def test_a_failed_runs_end_task_and_exception(runner):
    flow = runner.write(
        "fail_flow.py",
        """
        from cairn import FlowSpec, step

        class FailFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                raise ValueError("end broke")

        if __name__ == "__main__":
            FailFlow()
        """,
    )
    assert runner.run(flow, "run").returncode == 1
    run = Run(f"FailFlow/{Flow('FailFlow').latest_run.id}")
    end = run.end_task
    # The end task ran and failed: the run finished, unsuccessfully (Metaflow's rule).
    assert run.finished and not run.successful and not end.successful
    assert end.exception.type == "ValueError" and "end broke" in end.exception.message
    assert end.metadata_dict["attempt_ok"] == "False"


def _square(x: int) -> int:
    if x == 13:
        raise ValueError("unlucky")
    return x * x


def test_parallel_map_and_imap_unordered(tmp_path):
    assert parallel_map(_square, range(10), max_parallel=3) == [x * x for x in range(10)]
    assert parallel_map(lambda x: (x, os.getpid()), [1], dir=str(tmp_path))[0][1] != os.getpid()
    assert sorted(parallel_imap_unordered(_square, [2, 3, 4])) == [4, 9, 16]
    with pytest.raises(CairnException, match="item 13 failed: ValueError: unlucky"):
        parallel_map(_square, range(20))
    assert list(tmp_path.iterdir()) == []  # results pass through files that are removed


def test_yaml_parser_reads_yaml_with_pyyaml_and_says_how_to_get_it(monkeypatch):
    import sys
    import types

    from cairn import yaml_parser

    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML missing
    with pytest.raises(CairnException, match="pip install pyyaml"):
        yaml_parser("a: 1")
    fake = types.ModuleType("yaml")
    fake.safe_load = lambda text: {"parsed": text}
    monkeypatch.setitem(sys.modules, "yaml", fake)
    assert yaml_parser("a: 1") == {"parsed": "a: 1"}
