"""The client against real runs: a foreach run, a failed run and its resume.

One datastore is made per module (three runs of ClientFlow); each test reads
it through the client in this process."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import time
from datetime import datetime

import pytest
from cairn import (
    CairnError,
    CairnException,
    DataArtifact,
    Flow,
    Metaflow,
    NotFoundError,
    Run,
    Step,
    Task,
    client,
    namespace,
)
from conftest import FlowRunner

pytestmark = pytest.mark.e2e

FLOW = """
import os
import sys
from cairn import FlowSpec, Parameter, step

class ClientFlow(FlowSpec):
    alpha = Parameter("alpha", default=1, type=int)

    @step
    def start(self):
        self.items = [1, 2, 3]
        self._secret = "hidden"
        print("starting")
        self.next(self.work, foreach="items")

    @step
    def work(self):
        print(f"working on {self.input}")
        print(f"warn {self.index}", file=sys.stderr)
        if os.path.exists("FAIL") and self.index == 1:
            raise ValueError("flag file present")
        self.y = self.input * self.alpha
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        self.summary = {"total": self.total, "alpha": self.alpha}

if __name__ == "__main__":
    ClientFlow()
"""

OK, FAILED, RESUMED = "ClientFlow/1", "ClientFlow/2", "ClientFlow/3"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> FlowRunner:
    r = FlowRunner(tmp_path_factory.mktemp("client"))
    flow = r.write("client_flow.py", FLOW)
    r.run(flow, "run", "--alpha", "3", "--tag", "t1", check=True)
    (r.dir / "FAIL").touch()
    assert r.run(flow, "run", "--alpha", "3").returncode != 0
    (r.dir / "FAIL").unlink()
    r.run(flow, "resume", check=True)
    return r


@pytest.fixture
def ds(made: FlowRunner, monkeypatch: pytest.MonkeyPatch) -> FlowRunner:
    monkeypatch.setenv("CAIRN_HOME", str(made.root))
    client._stores.clear()
    namespace(None)
    yield made
    client._stores.clear()
    client.default_namespace()


def test_metaflow_lists_flows_and_a_flow_its_runs_newest_first(ds):
    assert Flow("ClientFlow") in Metaflow().flows
    assert list(Metaflow()) == Metaflow().flows
    flow = Flow("ClientFlow")
    assert [r.pathspec for r in flow] == [RESUMED, FAILED, OK]
    assert flow["1"] == Run(OK) and flow.id == "ClientFlow" and flow.pathspec == "ClientFlow"
    assert "2" in flow and "99" not in flow
    with pytest.raises(KeyError, match=r"ClientFlow/99"):
        flow["99"]
    assert flow.latest_run == Run(RESUMED)
    assert flow.latest_successful_run == Run(RESUMED)
    assert isinstance(flow.created_at, datetime) and flow.created_at == Run(OK).created_at
    assert flow.parent is None and flow.origin_pathspec is None


def test_successful_run_properties(ds):
    run = Run(OK)
    assert (run.pathspec, run.id, run.path_components) == (OK, "1", ["ClientFlow", "1"])
    assert isinstance(run.created_at, datetime) and isinstance(run.finished_at, datetime)
    assert run.created_at <= run.finished_at
    assert run.finished and run.successful and run.status == "succeeded"
    assert run.user_tags == {"t1"}
    assert "runtime:local" in run.system_tags and run.tags == run.user_tags | run.system_tags
    assert run.parent == Flow("ClientFlow")
    assert run.origin_pathspec is None
    assert run.parameters == {"alpha": 3}
    assert run.end_task == Task(f"{OK}/end/{run.end_task.id}")
    assert run.data.total == 18 and run.data.summary == {"total": 18, "alpha": 3}
    assert "total" in run.data and "nope" not in run.data
    with pytest.raises(AttributeError, match="no artifact 'nope'"):
        _ = run.data.nope


def test_steps_newest_first_and_indexable(ds):
    run = Run(OK)
    assert [s.id for s in run] == ["end", "join", "work", "start"]
    assert [s.id for s in run.steps()] == ["end", "join", "work", "start"]
    assert list(run.steps("t1")) == list(run) and list(run.steps("nope")) == []
    assert run["work"] == Step(f"{OK}/work") and "work" in run and "nope" not in run
    with pytest.raises(KeyError, match=r"ClientFlow/1/nope"):
        run["nope"]


def test_foreach_tasks_have_their_split_index(ds):
    work = Run(OK)["work"]
    tasks = list(work)
    assert [t.index for t in tasks] == [0, 1, 2]
    assert [t.data.y for t in tasks] == [3, 6, 9]
    assert work.task == tasks[0]
    assert work[tasks[2].id] == tasks[2] and list(work.tasks("t1")) == tasks
    assert Run(OK)["start"].task.index is None and Run(OK)["join"].task.index is None
    assert work.created_at == min(t.created_at for t in tasks)
    assert work.finished_at == max(t.finished_at for t in tasks)
    assert work.parent == Run(OK) and work.tags == Run(OK).tags
    with pytest.raises(KeyError, match=r"ClientFlow/1/work/999"):
        work["999"]


def test_task_properties_data_artifacts_and_logs(ds):
    task = Run(OK)["work"].task
    assert task.pathspec == f"{OK}/work/{task.id}" and task.parent == Run(OK)["work"]
    assert task.successful and task.finished and task.exception is None
    assert isinstance(task.created_at, datetime) and task.created_at <= task.finished_at
    assert task.data.y == 3 and task["y"].data == 3
    assert [a.id for a in task.artifacts] == ["alpha", "items", "y"]
    assert [a.id for a in task] == ["alpha", "items", "y"]
    assert task.artifacts.y == task["y"] and len(task.artifacts) == 3 and "y" in task.artifacts
    art = task["items"]
    assert isinstance(art, DataArtifact) and art.pathspec == f"{task.pathspec}/items"
    assert (art.data, art.type, art.parent) == ([1, 2, 3], "list", task)
    assert art.size > 0 and len(art.sha) == 32 and art.finished_at == task.finished_at
    assert art.tags == Run(OK).tags
    assert DataArtifact(art.pathspec).data == [1, 2, 3]
    assert task.stdout == "working on 1\n" and task.stderr == "warn 0\n"
    assert task.current_attempt == 0 and [a.status for a in task.attempts] == ["succeeded"]
    assert Task(task.pathspec, attempt=0).stdout == "working on 1\n"


def test_private_artifacts_are_reachable_by_name_only(ds):
    start = Run(OK)["start"].task
    assert [a.id for a in start] == ["alpha", "items"]
    assert start["_secret"].data == "hidden" and start.data._secret == "hidden"
    assert "_secret" not in dir(start.data)


def test_failed_run_and_the_task_exception(ds):
    run = Run(FAILED)
    # As in Metaflow, a run finishes with its end task: this one never reached it.
    assert not run.finished and not run.successful and run.status == "failed"
    assert run.data is None and run.end_task is None
    assert run.finished_at is None  # as in Metaflow: the end step never completed
    failed = [t for t in run["work"] if not t.successful]
    assert [t.index for t in failed] == [1]
    exc = failed[0].exception
    assert (exc.type, exc.message) == ("ValueError", "flag file present")
    assert str(exc) == "ValueError: flag file present" and exc.exception == exc.message
    assert "raise ValueError" in exc.stacktrace
    assert "Traceback" in failed[0].stderr and failed[0].stdout == "working on 2\n"
    assert list(failed[0].artifacts) == []


def test_resumed_run_knows_where_cloned_tasks_came_from(ds):
    run = Run(RESUMED)
    assert run.origin_pathspec == FAILED and run.successful and run.data.total == 18
    assert run.parameters == {"alpha": 3}
    start = run["start"].task
    origin = Run(FAILED)["start"].task
    assert start.origin_pathspec == origin.pathspec
    assert run["start"].origin_pathspec == f"{FAILED}/start"
    assert start["items"].origin_pathspec == f"{origin.pathspec}/items"
    assert start["items"].sha == origin["items"].sha
    assert start.stdout == origin.stdout == "starting\n"
    # The failed split ran again; the splits that finished were cloned (the
    # step's code is unchanged).
    finished = {t.index: t.pathspec for t in Run(FAILED)["work"] if t.successful}
    assert 1 not in finished
    assert {t.index: t.origin_pathspec for t in run["work"]} == {**finished, 1: None}
    assert Run(OK)["start"].origin_pathspec is None and Run(OK).origin_pathspec is None


def test_flow_runs_filters_by_every_tag(ds):
    flow = Flow("ClientFlow")
    assert [r.id for r in flow.runs("t1")] == ["1"]
    assert list(flow.runs("t1", "runtime:local")) == [Run(OK)]
    assert list(flow.runs("t1", "nope")) == []
    assert len(list(flow.runs("runtime:local"))) == 3


def test_missing_pathspecs_raise_not_found_naming_them(ds):
    cases = {
        "Flow('Nope')": lambda: Flow("Nope"),
        "Run('ClientFlow/99')": lambda: Run("ClientFlow/99"),
        "Run('ClientFlow/x')": lambda: Run("ClientFlow/x"),
        "Step('ClientFlow/1/nope')": lambda: Step("ClientFlow/1/nope"),
        "Task('ClientFlow/1/work/999')": lambda: Task("ClientFlow/1/work/999"),
        "Task('ClientFlow/1/start/2')": lambda: Task("ClientFlow/1/start/2"),  # task 2 is a work task
        "DataArtifact('ClientFlow/1/start/1/nope')": lambda: DataArtifact("ClientFlow/1/start/1/nope"),
    }
    for name, make in cases.items():
        with pytest.raises(NotFoundError) as e:
            make()
        assert name in str(e.value)
    with pytest.raises(CairnException, match=r"expects Run\('FlowName/RunID'\), got 'ClientFlow'"):
        Run("ClientFlow")
    with pytest.raises(NotFoundError, match="no attempt 5"):
        Task(f"{OK}/start/1", attempt=5)


def test_objects_survive_pickling(ds):
    task = pickle.loads(pickle.dumps(Run(OK)["work"].task))
    assert task.data.y == 3
    run = pickle.loads(pickle.dumps(Run(OK)))
    assert run.data.total == 18


def test_listing_reads_no_blob_and_a_value_is_read_once_per_object(ds, monkeypatch):
    reads: list[str] = []
    real = client._artifact_store

    class Counting:
        def __init__(self, root: str):
            self.store = real(root)

        def get(self, digest: str, *args):
            reads.append(digest)
            return self.store.get(digest, *args)

        def get_bytes(self, digest: str, *args):
            reads.append(digest)
            return self.store.get_bytes(digest, *args)

    monkeypatch.setattr("cairn.client.task._artifact_store", Counting)  # where DataArtifact reads blobs
    seen = 0
    for flow in Metaflow():
        flow._repr_html_()
        for run in flow:
            run._repr_html_()
            for step in run:
                step._repr_html_()
                for task in step:
                    task._repr_html_()
                    seen += sum(a.size > 0 and bool(a.type) for a in task)
    assert seen > 20 and reads == []
    task = Run(OK)["work"].task
    assert task.data.y == 3 and task.data.y == 3 and task["y"].data == 3
    assert len(reads) == 1
    assert task.data.items == [1, 2, 3]
    assert len(reads) == 2
    assert Task(task.pathspec).data.y == 3  # a new object reads again
    assert len(reads) == 3
    run = Run(OK)
    assert run.data.total == 18 and run.data.total == 18
    assert len(reads) == 4


def test_a_deleted_blob_fails_on_value_access_only(runner):
    flow = runner.write(
        "blob.py",
        """
        from cairn import FlowSpec, step

        class BlobFlow(FlowSpec):
            @step
            def start(self):
                self.big = b"z" * 100_000
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            BlobFlow()
        """,
    )
    runner.run(flow, "run", check=True)
    task = Flow("BlobFlow").latest_run["start"].task
    path = client._artifact_store(str(runner.root)).path_of(task["big"].sha)
    os.unlink(path)
    again = Flow("BlobFlow").latest_run["end"].task
    assert [a.id for a in again] == ["big"] and again["big"].size == 100_000
    assert "big" in again._repr_html_()
    with pytest.raises(CairnError) as e:
        _ = again.data.big
    assert "BlobFlow/1/end/2/big" in str(e.value)


SLOW = """
import os
import time
from cairn import FlowSpec, step

class SlowFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(40))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        # The test opens the gate once it has seen the run in progress.
        deadline = time.time() + 60
        while not os.path.exists("GO"):
            if time.time() > deadline:
                raise TimeoutError("the test never created GO")
            time.sleep(0.005)
        time.sleep(0.03)  # work, so that tasks are committed in several batches
        self.y = self.input * 2
        self.blob = bytes(10_000)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    SlowFlow()
"""


def _poll(probe, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_reading_is_safe_while_a_run_writes(runner):
    flow = runner.write("slow.py", SLOW)
    proc = subprocess.Popen([sys.executable, str(flow), "run", "--max-workers", "2"], cwd=runner.dir,
                            env=runner.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def started() -> Run | None:
            try:
                run = Flow("SlowFlow").latest_run
            except NotFoundError:  # no datastore or no flow yet
                return None
            return run if run is not None and "work" in run else None

        run = _poll(started, "a work task")
        # Every work task waits for GO: the run is certainly in progress, and
        # its running tasks are listed, as Metaflow's client lists them.
        assert run.status == "running" and not run.finished and not run.successful
        assert run.finished_at is None and run.data is None and run.end_task is None
        assert [s.id for s in run] == ["work", "start"]
        assert run["start"].task.finished and run["start"].task.data.items == list(range(40))
        waiting = run["work"].task
        assert (waiting.finished, waiting.successful, waiting.finished_at, waiting.exception) == (False, False, None, None)
        assert [a.status for a in waiting.attempts] == ["running"] and "attempt_ok" not in waiting.metadata_dict
        from IPython.lib.pretty import pretty

        assert re.search(r"0 of \d+ tasks succeeded, \d+ running", pretty(run["work"]))  # not "failed"
        assert Flow("SlowFlow").latest_successful_run is None
        (runner.dir / "GO").touch()
        seen, polls = 0, 0
        while not run.finished:  # the same object sees the run progress
            polls += 1
            assert [r.id for r in Flow("SlowFlow")] == [run.id]
            done = [t for t in run["work"] if t.finished]
            assert len(done) >= seen
            seen = len(done)
            if done:
                assert done[-1].data.y == done[-1].index * 2 and len(done[-1]["blob"].data) == 10_000
            run._repr_html_()
        assert proc.wait(timeout=60) == 0, proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()
    assert polls > 0 and run.successful and run.finished_at is not None
    assert sorted(t.index for t in run["work"]) == list(range(40))
    assert run.data.total == sum(i * 2 for i in range(40))


def test_display_summaries_and_tables(ds):
    from IPython.lib.pretty import pretty

    run = Run(OK)
    assert repr(run) == "Run('ClientFlow/1')" and str(run["work"]) == "Step('ClientFlow/1/work')"
    assert pretty([run]) == "[Run('ClientFlow/1')]"  # short inside a list
    text = pretty(run)
    assert text.startswith("Run('ClientFlow/1')  succeeded\n") and "parameters   alpha=3" in text
    assert "user tags    t1" in text
    # tasks, succeeded, failed, running, cloned
    assert [line.split()[:6] for line in text.splitlines() if line.split()[:1] == ["work"]] == \
        [["work", "3", "3", "0", "0", "0"]]
    assert "summary   dict" in text and "total     int" in text
    html = run._repr_html_()
    for piece in ["<b>Run(&#x27;ClientFlow/1&#x27;)</b>", ">succeeded</span>", "<td", ">join<", ">summary<",
                  ">dict<", f">{run.end_task['summary'].size} B<"]:
        assert piece in html, piece
    step_html = run["work"]._repr_html_()
    assert ">index<" in step_html and step_html.count("<tr>") >= 3 + 1 + 3
    failed_task = next(t for t in Run(FAILED)["work"] if not t.successful)
    assert "ValueError: flag file present" in failed_task._repr_html_()
    assert "cloned from" in pretty(Run(RESUMED)["start"].task)
    assert ">3<" in Flow("ClientFlow")._repr_html_() and "Latest runs" in pretty(Flow("ClientFlow"))
    failed = Run(FAILED)
    failed.add_tag("<b>bold</b>")
    try:
        html = Run(FAILED)._repr_html_()
        assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html
    finally:
        failed.remove_tag("<b>bold</b>")
