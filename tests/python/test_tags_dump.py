"""Tags (`run --tag`, `tag add|remove|replace|list`, Run.add_tag and friends)
and `dump`, through real flow runs and the command line."""

from __future__ import annotations

import pickle
import platform

import pytest
from cairn import CairnException, Flow, Run, __version__, client, namespace
from conftest import FlowRunner

pytestmark = pytest.mark.e2e

FLOW = """
from cairn import FlowSpec, step

class TagFlow(FlowSpec):
    @step
    def start(self):
        self.items = ["a", "b"]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.letter = self.input.upper()
        self.text = "x" * 5000
        self.next(self.join)

    @step
    def join(self, inputs):
        self.letters = [i.letter for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        self.table = {"rows": 3, "note": "line one\\nline two"}

if __name__ == "__main__":
    TagFlow()
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> FlowRunner:
    r = FlowRunner(tmp_path_factory.mktemp("tags"))
    r.flow_file = r.write("tag_flow.py", FLOW)
    r.run(r.flow_file, "run", "--tag", "t1", "--tag", "t2", env={"CAIRN_USER": "carol"}, check=True)
    r.run(r.flow_file, "run", env={"CAIRN_USER": "carol"}, check=True)
    return r


@pytest.fixture
def ds(made: FlowRunner, monkeypatch: pytest.MonkeyPatch) -> FlowRunner:
    monkeypatch.setenv("CAIRN_HOME", str(made.root))
    monkeypatch.setenv("CAIRN_USER", "carol")
    client._stores.clear()
    namespace(None)
    yield made
    client._stores.clear()
    client.default_namespace()


def cli(ds: FlowRunner, *args: str, ok: bool = True):
    proc = ds.run(ds.flow_file, *args, env={"CAIRN_USER": "carol"})
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    return proc


def test_run_tags_are_user_tags_apart_from_system_tags(ds):
    run = Run("TagFlow/1")
    assert run.user_tags == {"t1", "t2"}
    assert run.system_tags == {"user:carol", "runtime:local", f"python_version:{platform.python_version()}",
                               f"cairn_version:{__version__}"}
    assert run.tags == run.user_tags | run.system_tags
    assert Run("TagFlow/2").user_tags == frozenset()
    # Steps, tasks and artifacts carry their run's tags.
    task = run["work"].task
    assert task.tags == run.tags and task["letter"].user_tags == {"t1", "t2"}
    assert run["end"].system_tags == run.system_tags


def test_tag_command_adds_replaces_removes_and_lists(ds):
    out = cli(ds, "tag", "add", "--run-id", "2", "nightly", "v1").stdout
    assert "TagFlow/2\n    user tags:   nightly, v1\n" in out
    assert Run("TagFlow/2").user_tags == {"nightly", "v1"}
    cli(ds, "tag", "replace", "--run-id", "2", "v1", "v2")
    assert Run("TagFlow/2").user_tags == {"nightly", "v2"}
    cli(ds, "tag", "remove", "--run-id", "2", "nightly", "v2")
    assert Run("TagFlow/2").user_tags == frozenset()
    out = cli(ds, "tag", "list", "--run-id", "1").stdout
    assert "user tags:   t1, t2" in out and "user:carol" in out
    out = cli(ds, "tag", "list").stdout
    assert "Runs of TagFlow in namespace user:carol:" in out
    assert out.index("TagFlow/2") < out.index("TagFlow/1")


def test_tag_command_refuses_what_it_cannot_do(ds):
    err = cli(ds, "tag", "remove", "--run-id", "1", "user:carol", ok=False).stderr
    assert "cannot remove system tag 'user:carol'" in err
    assert "needs --run-id" in cli(ds, "tag", "add", "x", ok=False).stderr
    assert "two tags: OLD NEW" in cli(ds, "tag", "replace", "--run-id", "1", "t1", ok=False).stderr
    assert "Not found" in cli(ds, "tag", "add", "--run-id", "99", "x", ok=False).stderr
    assert Run("TagFlow/1").user_tags == {"t1", "t2"}


def test_client_tag_methods(ds):
    run = Run("TagFlow/2")
    run.add_tag("a")
    run.add_tags(["b", "c"])
    assert run.user_tags == {"a", "b", "c"}
    run.remove_tag("a")
    run.replace_tag("b", "bb")
    run.replace_tags(["c"], ["cc", "dd"])
    assert run.user_tags == {"bb", "cc", "dd"}
    run.add_tag("user:carol")  # already a system tag: nothing to add, as in Metaflow
    run.remove_tags(["dd", "never-there"])  # removing an absent tag does nothing
    assert Run("TagFlow/2").user_tags == {"bb", "cc"}  # stored, not just in this object
    with pytest.raises(CairnException, match="cannot remove system tag 'runtime:local'"):
        run.remove_tag("runtime:local")
    for bad in ["", " ", "x" * 501]:
        with pytest.raises(CairnException, match="a tag"):
            run.add_tag(bad)
    assert [r.id for r in Flow("TagFlow").runs("bb")] == ["2"]
    assert [r.id for r in Flow("TagFlow").runs("bb", "t1")] == []
    run.remove_tags(["bb", "cc"])


def test_dump_prints_names_types_sizes_and_short_values(ds):
    out = cli(ds, "dump", "1/work").stdout
    lines = out.splitlines()
    work = Run("TagFlow/1")["work"]
    t0, t1 = list(work)
    assert lines[0] == f"{t0.pathspec} (3 artifacts)"
    assert lines[1].split() == ["artifact", "type", "size", "value"]
    assert lines[2].split() == ["items", "list", f"{t0['items'].size}", "B", "['a',", "'b']"]
    assert lines[3].split() == ["letter", "str", f"{t0['letter'].size}", "B", "'A'"]
    # As in Metaflow, a value stored in more than --max-value-size bytes (1000) is not shown...
    assert lines[4].split()[:4] == ["text", "str", "4.9", "KiB"] and "x" not in lines[4].split()[-1]
    assert "too large to show" in lines[4]
    # ... and a larger limit shows it, its repr shortened to 1000 characters.
    wide = cli(ds, "dump", f"1/work/{t0.id}", "--max-value-size", "10000").stdout.splitlines()
    assert "x...x" in wide[4] and len(wide[4]) < 1100
    assert f"{t1.pathspec} (3 artifacts)" in lines and "'B'" in out
    out = cli(ds, "dump", "TagFlow/1/end", "--include", "table").stdout
    assert "table     dict  " in out and "'note': 'line one\\nline two'" in out and "letters" not in out


def test_dump_one_task_to_a_file(ds, tmp_path):
    task = Run("TagFlow/1")["work"].task
    target = tmp_path / "out.pkl"
    out = cli(ds, "dump", f"1/work/{task.id}", "--include", "letter,items", "--file", str(target)).stdout
    assert f"written to {target}" in out and "'A'" not in out
    with open(target, "rb") as f:
        assert pickle.load(f) == {task.pathspec: {"items": ["a", "b"], "letter": "A"}}


def test_dump_reports_what_is_missing(ds):
    assert "Not found" in cli(ds, "dump", "1/nope", ok=False).stderr
    assert "Task('TagFlow/1/work/99') does not exist" in cli(ds, "dump", "1/work/99", ok=False).stderr
    assert "has no artifact named zz" in cli(ds, "dump", "1/end", "--include", "zz", ok=False).stderr
    assert "expects RUN_ID/STEP[/TASK_ID]" in cli(ds, "dump", "1", ok=False).stderr


def test_dump_and_tag_read_the_datastore_root_given(ds, tmp_path):
    elsewhere = {"CAIRN_HOME": str(tmp_path / "nowhere"), "CAIRN_USER": "carol"}
    root = ["--datastore-root", str(ds.root)]
    proc = ds.run(ds.flow_file, *root, "dump", "1/end", "--include", "letters", env=elsewhere)
    assert proc.returncode == 0 and "['A', 'B']" in proc.stdout, proc.stderr
    proc = ds.run(ds.flow_file, *root, "tag", "list", "--run-id", "1", env=elsewhere)
    assert proc.returncode == 0 and "t1, t2" in proc.stdout, proc.stderr
    assert "no cairn datastore" in ds.run(ds.flow_file, "dump", "1/end", env=elsewhere).stderr
