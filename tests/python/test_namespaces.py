"""Namespaces, as in Metaflow: runs carry user:<name>; the client sees the
current namespace only, and refuses, with a clear error, an object outside it."""

from __future__ import annotations

import pytest
from cairn import (
    DataArtifact,
    Flow,
    Metaflow,
    NamespaceMismatchError,
    Run,
    Step,
    Task,
    client,
    default_namespace,
    get_namespace,
    namespace,
)
from conftest import FlowRunner

pytestmark = pytest.mark.e2e

FLOW = """
from cairn import FlowSpec, step

class {name}(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    {name}()
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> FlowRunner:
    """NsFlow: 1 and 2 by alice (2 tagged 'shared'), 3 by bob. SoloFlow: 4 by alice."""
    r = FlowRunner(tmp_path_factory.mktemp("ns"))
    ns_flow = r.write("ns_flow.py", FLOW.format(name="NsFlow"))
    solo = r.write("solo_flow.py", FLOW.format(name="SoloFlow"))
    alice, bob = {"CAIRN_USER": "alice"}, {"CAIRN_USER": "bob"}
    r.run(ns_flow, "run", env=alice, check=True)
    r.run(ns_flow, "run", "--tag", "shared", env=alice, check=True)
    r.run(ns_flow, "run", env=bob, check=True)
    r.run(solo, "run", env=alice, check=True)
    return r


@pytest.fixture
def as_alice(made: FlowRunner, monkeypatch: pytest.MonkeyPatch) -> FlowRunner:
    monkeypatch.setenv("CAIRN_HOME", str(made.root))
    monkeypatch.setenv("CAIRN_USER", "alice")
    client._stores.clear()
    default_namespace()
    yield made
    client._stores.clear()


def test_runs_carry_their_user_as_a_system_tag(as_alice):
    namespace(None)
    assert "user:alice" in Run("NsFlow/1").system_tags and "user:alice" not in Run("NsFlow/1").user_tags
    assert "user:bob" in Run("NsFlow/3").system_tags


def test_default_namespace_is_the_user(as_alice):
    assert get_namespace() == "user:alice"
    flow = Flow("NsFlow")
    assert [r.id for r in flow] == ["2", "1"]
    assert flow.latest_run == Run("NsFlow/2")  # bob's run 3 is newer, but not ours
    assert flow.latest_successful_run == Run("NsFlow/2")
    assert {f.id for f in Metaflow()} == {"NsFlow", "SoloFlow"}


def test_objects_outside_the_namespace_are_refused_clearly(as_alice):
    bob_task = "NsFlow/3/start/1"
    for make, name in [
        (lambda: Run("NsFlow/3"), "Run('NsFlow/3')"),
        (lambda: Step("NsFlow/3/start"), "Step('NsFlow/3/start')"),
        (lambda: Task(bob_task), f"Task('{bob_task}')"),
        (lambda: DataArtifact(f"{bob_task}/x"), f"DataArtifact('{bob_task}/x')"),
        (lambda: Flow("NsFlow")["3"], "Run('NsFlow/3')"),
    ]:
        with pytest.raises(NamespaceMismatchError) as e:
            make()
        message = str(e.value)
        assert name in message and "'user:alice'" in message and "user:bob" in message
        assert "namespace(None)" in message
    assert "3" in Flow("NsFlow")  # it exists, as Metaflow answers


def test_switching_namespace(as_alice):
    assert namespace("user:bob") == "user:bob" == get_namespace()
    assert [r.id for r in Flow("NsFlow")] == ["3"]
    assert Run("NsFlow/3").data is not None
    with pytest.raises(NamespaceMismatchError, match=r"Flow\('SoloFlow'\) has no run in .*'user:bob'"):
        Flow("SoloFlow")
    assert [f.id for f in Metaflow()] == ["NsFlow"]
    with pytest.raises(NamespaceMismatchError):
        Run("NsFlow/1")


def test_any_tag_is_a_namespace(as_alice):
    namespace("shared")
    assert [r.id for r in Flow("NsFlow")] == ["2"]
    assert [f.id for f in Metaflow()] == ["NsFlow"]


def test_global_namespace_sees_everything(as_alice):
    assert namespace(None) is None and get_namespace() is None
    assert [r.id for r in Flow("NsFlow")] == ["3", "2", "1"]
    assert Flow("NsFlow").latest_run == Run("NsFlow/3")
    assert Task("NsFlow/3/start/1").data.x == 1
    assert default_namespace() == "user:alice" == get_namespace()


def test_objects_keep_the_namespace_they_were_made_in(as_alice):
    namespace(None)
    bobs = Run("NsFlow/3")
    namespace("user:alice")
    # As in Metaflow: an object made in the global namespace keeps giving its children.
    assert bobs["start"].task.data.x == 1
    assert [s.id for s in bobs] == ["end", "start"]
    mine = Flow("NsFlow")
    namespace(None)
    assert [r.id for r in mine] == ["2", "1"]  # still alice's view
    with pytest.raises(NamespaceMismatchError):
        mine["3"]
