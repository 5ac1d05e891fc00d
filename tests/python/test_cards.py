"""Cards end to end: a real flow stores them, get_cards and the card CLI
read them back, and cards never fail their task."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from cairn import Flow
from cairn.cards import get_cards

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cards_run(tmp_path_factory: pytest.TempPathFactory):
    from conftest import FlowRunner

    r = FlowRunner(tmp_path_factory.mktemp("cards"))
    flow = r.flow("cards_flow.py")
    proc = r.run(flow, "run", check=True)
    return r, flow, proc


@pytest.fixture
def run(cards_run, monkeypatch: pytest.MonkeyPatch):
    r, _, _ = cards_run
    monkeypatch.setenv("CAIRN_HOME", str(r.root))
    from cairn import client

    client._stores.clear()
    client.namespace(None)
    yield Flow("CardsFlow").latest_run
    client._stores.clear()
    client.default_namespace()


def test_default_card_shows_components_metadata_artifacts_and_graph(run):
    cards = get_cards(run["start"].task)
    assert [(c.type, c.id) for c in cards] == [("default", None)]
    page = cards[0].html
    assert "<h1>Report <strong>title</strong></h1>" in page
    assert '<progress max="10.0" value="7.0">' in page
    assert "CardsFlow/1/start/1" in page
    assert "alpha" in page and "0.5" in page                      # parameters
    assert "hello &lt;b&gt;world&lt;/b&gt;" in page               # escaped string preview
    assert "shape (10, 100), dtype int64" in page                 # numpy preview
    assert "500 rows × 2 columns (first 10 of 500 rows)" in page  # DataFrame head
    assert 'class="cairn-step current" data-step="start"' in page  # graph, this step marked
    assert 'data-step="end"' in page
    assert "http://" not in page and "https://" not in page       # nothing fetched when opened


def test_several_cards_on_one_step_by_id(run):
    cards = get_cards(run["middle"].task)
    assert [(c.type, c.id) for c in cards] == [("blank", "summary"), ("html", "raw")]
    assert "<td>two</td>" in cards[0].html and "<h2>Task</h2>" not in cards[0].html
    assert cards[1].html == "<html><body><h1 id='raw'>raw html</h1></body></html>"
    assert [c.id for c in get_cards("CardsFlow/1/middle/2", id="raw")] == ["raw"]
    assert 'sandbox="allow-scripts"' in cards[0]._repr_html_()


def test_failing_and_slow_cards_leave_the_task_successful(run):
    task = run["end"].task
    assert task.successful and task.data.done is True
    cards = {c.id: html.unescape(c.html) for c in get_cards(task)}
    assert "The card 'broken' failed to render" in cards["broken"]
    assert "self.missing, which the step did not set" in cards["broken"]
    assert "The card 'slow' timed out" in cards["slow"]


def test_cards_are_not_artifacts(run):
    task = run["start"].task
    assert sorted(a.id for a in task) == ["alpha", "frame", "matrix", "number", "text"]
    assert not any(n.startswith("_cairn_card") for n in dir(task.data))
    # A card stays with its task: the next step does not inherit it.
    assert [c.id for c in get_cards(run["middle"].task)] == ["summary", "raw"]


def test_unknown_card_id_warns_instead_of_failing(cards_run):
    _, _, proc = cards_run
    assert "this step has no @card with id 'nope'" in proc.stderr


def test_card_cli_list_get_view(cards_run, tmp_path):
    r, flow, _ = cards_run
    listing = json.loads(r.run(flow, "card", "list", "--as-json", check=True).stdout)
    assert {(c["pathspec"], c["id"]) for c in listing} >= {("CardsFlow/1/start/1", None),
                                                         ("CardsFlow/1/middle/2", "raw")}
    out = tmp_path / "card.html"
    r.run(flow, "card", "get", "1/middle/2", str(out), "--id", "summary", check=True)
    assert "<td>two</td>" in out.read_text()
    viewed = r.run(flow, "card", "view", "start", check=True, env={"DISPLAY": "", "BROWSER": ""})
    assert "CardsFlow/1/start/1" in Path(viewed.stdout.strip()).read_text()
    ambiguous = r.run(flow, "card", "get", "1/middle/2")
    assert ambiguous.returncode == 1 and "pick one with --id" in ambiguous.stderr
    assert "Traceback" not in ambiguous.stderr


def test_with_card_gives_every_step_a_default_card(runner):
    flow = runner.flow("join_flow.py")
    runner.run(flow, "run", "--with", "card", check=True)
    run = Flow(_flow_name(flow)).latest_run
    for step in run:
        for task in step:
            assert [c.type for c in get_cards(task)] == ["default"]


def _flow_name(path) -> str:
    import re

    return re.search(r"class (\w+)\(FlowSpec\)", path.read_text()).group(1)
