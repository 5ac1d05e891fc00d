"""The UI server's JSON endpoints, over a real datastore made by real runs,
served by a UIServer on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from cairn.ui.api import UIData
from cairn.ui.server import UIServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory):
    from conftest import FlowRunner

    r = FlowRunner(tmp_path_factory.mktemp("ui"))
    foreach = r.flow("ui_foreach_flow.py")
    assert r.run(foreach, "run").returncode == 1                      # run 1: item 3 fails
    r.run(foreach, "run", "--width", "3", "--tag", "small", check=True)  # run 2
    r.run(r.flow("cards_flow.py"), "run", check=True)                  # run 3
    server = UIServer(UIData(str(r.root)), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.url.rstrip("/")
    server.shutdown()
    server.server_close()


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_json(url: str) -> dict:
    status, _, body = get(url)
    assert status == 200, body
    return json.loads(body)


def wait_for(fetch, done, timeout: float = 30.0):
    """fetch() until done(value), polling: the condition, not a fixed delay."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_runs_newest_first_with_filters_and_paging(ui):
    page = get_json(f"{ui}/api/runs")
    assert [(r["flow"], r["run_id"]) for r in page["runs"]] == [("CardsFlow", 3), ("UiForeachFlow", 2), ("UiForeachFlow", 1)]
    assert page["flows"] == ["CardsFlow", "UiForeachFlow"] and page["total"] == 3
    assert [r["run_id"] for r in get_json(f"{ui}/api/runs?status=failed")["runs"]] == [1]
    assert [r["run_id"] for r in get_json(f"{ui}/api/runs?tag=small")["runs"]] == [2]
    assert [r["run_id"] for r in get_json(f"{ui}/api/runs?flow=UiForeachFlow")["runs"]] == [2, 1]
    assert get_json(f"{ui}/api/runs?user=nobody")["total"] == 0
    second = get_json(f"{ui}/api/runs?offset=1&limit=1")
    assert second["total"] == 3 and [r["run_id"] for r in second["runs"]] == [2]


def test_run_has_graph_step_states_timeline_and_parameters(ui):
    run = get_json(f"{ui}/api/runs/UiForeachFlow/1")
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["start"]["state"] == "succeeded"
    assert (steps["work"]["state"], steps["work"]["failed"], steps["work"]["succeeded"]) == ("failed", 1, 4)
    assert steps["work"]["retried"] == 1 and steps["join"]["state"] == "pending"
    assert 'data-step="work"' in run["graph_svg"]
    assert len(run["timeline"]) == 6 and {t["step"] for t in run["timeline"]} == {"start", "work"}
    assert run["params"] == {"width": 5} or run["params"] == {"width": "5"}
    assert run["status"] == "failed"


def test_step_tasks_sorted_filtered_and_paged(ui):
    url = f"{ui}/api/runs/UiForeachFlow/1/steps/work/tasks"
    all_tasks = get_json(url)
    assert all_tasks["total"] == 5
    failed = get_json(f"{url}?status=failed")["tasks"]
    assert len(failed) == 1 and failed[0]["attempts"] == 2 and failed[0]["foreach_index"] == 3
    by_duration = get_json(f"{url}?sort=duration&order=desc")["tasks"]
    durations = [t["duration"] for t in by_duration]
    assert durations == sorted(durations, reverse=True)
    page = get_json(f"{url}?offset=2&limit=2")
    assert [t["task_id"] for t in page["tasks"]] == [t["task_id"] for t in all_tasks["tasks"][2:4]]


def test_task_attempts_artifacts_cards_and_exception(ui):
    failed = get_json(f"{ui}/api/runs/UiForeachFlow/1/steps/work/tasks?status=failed")["tasks"][0]
    task = get_json(f"{ui}/api/runs/UiForeachFlow/1/tasks/{failed['task_id']}")
    assert [a["status"] for a in task["attempts"]] == ["failed", "failed"]
    assert task["exception"]["type"] == "ValueError" and "item 3 is bad" in task["exception"]["message"]
    start = get_json(f"{ui}/api/runs/CardsFlow/3/steps/start/tasks")["tasks"][0]
    card_task = get_json(f"{ui}/api/runs/CardsFlow/3/tasks/{start['task_id']}")
    assert sorted(a["name"] for a in card_task["artifacts"]) == ["alpha", "frame", "matrix", "number", "text"]
    assert [(c["type"], c["index"]) for c in card_task["cards"]] == [("default", 0)]


def test_log_tail_and_offsets(ui):
    failed = get_json(f"{ui}/api/runs/UiForeachFlow/1/steps/work/tasks?status=failed")["tasks"][0]
    base = f"{ui}/api/runs/UiForeachFlow/1/tasks/{failed['task_id']}/log"
    err = get_json(f"{base}?stream=err")
    assert "ValueError: item 3 is bad" in err["text"] and err["attempt"] == 1
    out = get_json(f"{base}?stream=out&attempt=0")
    assert out["text"] == "working on item 3\n" and out["offset"] == out["size"]
    assert get_json(f"{base}?stream=out&attempt=0&offset={out['offset']}")["text"] == ""
    assert get(f"{base}?stream=../../etc/passwd")[0] == 400


def test_artifact_preview_by_name(ui):
    start = get_json(f"{ui}/api/runs/CardsFlow/3/steps/start/tasks")["tasks"][0]
    base = f"{ui}/api/runs/CardsFlow/3/tasks/{start['task_id']}/artifacts"
    status, _, body = get(f"{base}/frame")
    assert status == 200 and "500 rows × 2 columns" in body.decode()
    assert get(f"{base}/..%2F..%2Fcairn.db")[0] == 404
    assert get(f"{base}/_cairn_card.0")[0] == 404  # cards are not artifacts


def test_cards_are_served_as_sandboxes(ui):
    start = get_json(f"{ui}/api/runs/CardsFlow/3/steps/start/tasks")["tasks"][0]
    status, headers, body = get(f"{ui}/card/CardsFlow/3/{start['task_id']}/0")
    assert status == 200 and "Report <strong>title</strong>" in body.decode()
    assert headers["Content-Security-Policy"].startswith("sandbox allow-scripts;")
    assert "allow-same-origin" not in headers["Content-Security-Policy"]
    assert get(f"{ui}/card/CardsFlow/3/{start['task_id']}/9")[0] == 404


def test_errors_are_json_and_paths_are_ids(ui):
    for url, code in [(f"{ui}/api/runs/UiForeachFlow/99", 404), (f"{ui}/api/runs/Nope/1", 404),
                      (f"{ui}/api/runs/UiForeachFlow/1/steps/nope/tasks", 404),
                      (f"{ui}/api/runs/UiForeachFlow/1/steps/work/tasks?sort=name", 400),
                      (f"{ui}/api/runs?limit=x", 400), (f"{ui}/static/../api.py", 404),
                      (f"{ui}/api/runs/UiForeachFlow/x", 404)]:
        status, _, body = get(url)
        assert status == code, (url, body)
        assert "error" in json.loads(body)


def test_static_app_and_host_check(ui):
    status, headers, body = get(f"{ui}/")
    assert status == 200 and b"/static/app.js" in body and "script-src 'self'" in headers["Content-Security-Policy"]
    status, headers, body = get(f"{ui}/static/app.js")
    assert status == 200 and headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert b"http://" not in body and b"https://" not in body  # nothing from the network
    assert get(f"{ui}/api/runs", {"Host": "attacker.example:80"})[0] == 403


def test_ui_refuses_a_missing_datastore(tmp_path):
    from cairn.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no cairn datastore"):
        UIData(str(tmp_path / "none"))


def test_two_runs_written_at_once_are_read_live(tmp_path):
    """The UI reads while two engines write: both show as running with their
    waiting task, then as succeeded, with no restart of the server."""
    import subprocess
    import sys

    from conftest import FlowRunner

    r = FlowRunner(tmp_path)
    flow = r.flow("ui_live_flow.py")
    procs = [subprocess.Popen([sys.executable, str(flow), "run", "--gate", f"gate{i}"], cwd=r.dir, env=r.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    server = None
    try:
        for p in procs:  # each run's console says when its step waits at the gate
            for line in p.stdout:
                if "waiting for" in line:
                    break
        server = UIServer(UIData(str(r.root)), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = server.url.rstrip("/")
        runs = get_json(f"{base}/api/runs?status=running")["runs"]
        assert sorted(x["run_id"] for x in runs) == [1, 2]
        for run_id in (1, 2):
            # The engine commits a finished task within 0.25 s (kFlushInterval).
            run = wait_for(lambda rid=run_id: get_json(f"{base}/api/runs/UiLiveFlow/{rid}"),
                           lambda page: page["steps"][0]["state"] == "succeeded")
            assert {s["name"]: s["state"] for s in run["steps"]} == {
                "start": "succeeded", "wait": "running", "end": "pending"}
            waiting = run["running_tasks"][0]
            task = get_json(f"{base}/api/runs/UiLiveFlow/{run_id}/tasks/{waiting['task_id']}")
            assert task["status"] == "running" and [c["type"] for c in task["cards"]] == ["live"]
            status, _, body = get(base + task["cards"][0]["url"])
            assert status == 200 and 'value="4.0"' in body.decode()
            log = get_json(f"{base}/api/runs/UiLiveFlow/{run_id}/tasks/{waiting['task_id']}/log")
            assert log["running"] and "waiting for gate" in log["text"]
        for i in range(2):
            (r.dir / f"gate{i}").write_text("open")
        for p in procs:
            p.wait(timeout=60)
            assert p.returncode == 0
        assert get_json(f"{base}/api/runs?status=succeeded")["total"] == 2
        run = get_json(f"{base}/api/runs/UiLiveFlow/2")
        assert [s["state"] for s in run["steps"]] == ["succeeded"] * 3 and not run["running_tasks"]
        wait_task = get_json(f"{base}/api/runs/UiLiveFlow/2/steps/wait/tasks")["tasks"][0]
        task = get_json(f"{base}/api/runs/UiLiveFlow/2/tasks/{wait_task['task_id']}")
        assert [c["type"] for c in task["cards"]] == ["blank"]  # the stored card replaced the live one
        assert not list((r.root / "live" / "2").iterdir())
    finally:
        for i in range(2):
            (r.dir / f"gate{i}").write_text("open")
        for p in procs:
            p.wait(timeout=60)
        if server is not None:
            server.shutdown()
            server.server_close()
