"""`current` inside tasks (stored as artifacts by tests/python/flows/current_flow.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_current_in_every_kind_of_task(runner):
    flow = runner.flow("current_flow.py")
    runner.run(flow, "run", "--tag", "t1", "--tag", "t2", env={"CAIRN_USER": "tester"}, check=True)
    from cairn import Flow

    run = Flow("CurrentFlow").latest_run
    for step in ("start", "each", "join", "flaky", "end"):
        for task in run[step]:
            now = task.data.now
            assert now["flow_name"] == "CurrentFlow"
            assert now["run_id"] == str(run.id)
            assert now["step_name"] == step
            assert now["task_id"] == str(task.id)
            assert now["pathspec"] == task.pathspec == f"CurrentFlow/{run.id}/{step}/{task.id}"
            assert now["username"] == "tester"
            assert now["tags"] == ["t1", "t2"]
            assert now["is_running_flow"] is True
            assert now["origin_run_id"] is None
            assert now["parallel"] == (1, 0)
            assert now["retry_count"] == (1 if step == "flaky" else 0)
    each = sorted(run["each"], key=lambda t: t.data.self_index)
    assert [t.data.now["index"] for t in each] == [0, 1, 2] == [t.data.self_index for t in each]
    assert run["start"].task.data.now["index"] is None
    assert run["join"].task.data.now["index"] is None


def test_origin_run_id_in_a_resumed_run(runner):
    flow = runner.flow("current_flow.py")
    failed = runner.run(flow, "run", env={"CURRENT_FLOW_FAIL_END": "1"})
    assert failed.returncode == 1
    runner.run(flow, "resume", check=True)
    from cairn import Flow

    runs = list(Flow("CurrentFlow"))
    resumed, origin = runs[0], runs[1]
    assert resumed.data.now["origin_run_id"] == str(origin.id)
    assert resumed.data.now["run_id"] == str(resumed.id)


def test_current_outside_a_task():
    from cairn import current

    assert current.is_running_flow is False
    assert current.pathspec is None
    assert current.retry_count == 0
