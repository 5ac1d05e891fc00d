"""`cairn ui` in a real browser: Playwright drives the system's headless
Chromium against `python -m cairn ui` started on a free port.

Set CAIRN_UI_SCREENSHOTS=DIR to keep the screenshots docs/ui.md shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[ui]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH (apt-get install chromium; scripts/dev.sh install does it)",
                allow_module_level=True)

SHOTS = os.environ.get("CAIRN_UI_SCREENSHOTS")


@pytest.fixture(scope="module")
def datastore(tmp_path_factory: pytest.TempPathFactory):
    from conftest import FlowRunner

    r = FlowRunner(tmp_path_factory.mktemp("uib"))
    assert r.run(r.flow("ui_foreach_flow.py"), "run").returncode == 1   # run 1, failed
    r.run(r.flow("cards_flow.py"), "run", "--tag", "nightly", check=True)  # run 2
    r.write("sandbox_flow.py", '''
        from cairn import FlowSpec, card, step

        PROBE = """<html><body><h1>probe</h1><p id="result">not run</p><script>
        let found = [];
        try { found.push("parent:" + window.parent.document.title); } catch (e) { found.push("parent blocked"); }
        try { found.push("cookie:" + document.cookie); } catch (e) { found.push("cookie blocked"); }
        fetch("/api/runs").then(() => "api read", () => "api blocked").then((r) => {
          found.push(r); document.getElementById("result").textContent = found.join("; "); });
        </script></body></html>"""

        class SandboxFlow(FlowSpec):
            @card(type="html")
            @step
            def start(self):
                self.html = PROBE
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            SandboxFlow()
    ''')
    r.run(r.dir / "sandbox_flow.py", "run", check=True)               # run 3
    return r


@pytest.fixture(scope="module")
def ui_url(datastore):
    proc = subprocess.Popen([sys.executable, "-m", "cairn", "ui", "--port", "0", "--no-browser"],
                            env=datastore.env, cwd=datastore.dir, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()   # printed once the socket listens
    m = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
    assert m, line
    yield m.group(1)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def test_runs_list_filters_and_opens_a_run(page, ui_url):
    page.goto(ui_url + "/")
    rows = page.locator("#runs tbody tr")
    sync_api.expect(rows).to_have_count(3)
    sync_api.expect(rows.first).to_contain_text("SandboxFlow/3")
    shot(page, "runs")
    page.select_option("select[data-filter=status]", "failed")
    sync_api.expect(rows).to_have_count(1)
    sync_api.expect(rows.first).to_contain_text("UiForeachFlow/1")
    rows.first.click()
    sync_api.expect(page.locator("h1")).to_contain_text("UiForeachFlow/1")
    sync_api.expect(page.locator('g.cairn-step[data-step="work"]')).to_have_attribute("data-state", "failed")
    sync_api.expect(page.locator('g.cairn-step[data-step="start"]')).to_have_attribute("data-state", "succeeded")
    sync_api.expect(page.locator("#timeline .tl-bar")).to_have_count(6)
    sync_api.expect(page.locator("#step-tasks tbody tr")).to_have_count(5)
    shot(page, "run")


def test_a_failed_tasks_logs(page, ui_url):
    page.goto(ui_url + "/#/run/UiForeachFlow/1/work")
    page.select_option("#step-tasks select[data-control=status]", "failed")
    sync_api.expect(page.locator("#step-tasks tbody tr")).to_have_count(1)
    page.locator("#step-tasks tbody tr a").click()
    sync_api.expect(page.locator("#attempts tbody tr")).to_have_count(2)
    sync_api.expect(page.locator("#exception")).to_contain_text("ValueError: item 3 is bad")
    sync_api.expect(page.locator("#log")).to_contain_text("working on item 3")
    page.click("button[data-stream=err]")
    sync_api.expect(page.locator("#log")).to_contain_text("ValueError: item 3 is bad")


def test_an_artifact_preview_and_a_card(page, ui_url):
    page.goto(ui_url + "/#/run/CardsFlow/2/start")
    page.locator("#step-tasks tbody tr a").click()
    page.locator('details[data-artifact="frame"] summary').click()
    sync_api.expect(page.locator('details[data-artifact="frame"] .preview')).to_contain_text("500 rows × 2 columns")
    card = page.frame_locator("iframe[data-card='0']")
    sync_api.expect(card.locator("h1").first).to_contain_text("CardsFlow/2/start")
    sync_api.expect(card.locator("progress")).to_have_attribute("value", "7.0")
    page.evaluate("document.querySelector(\"iframe[data-card='0']\").scrollIntoView({block: 'end'})")
    shot(page, "task")
    page.goto(page.locator("iframe[data-card='0']").get_attribute("src").join([ui_url, ""]))
    sync_api.expect(page.locator("h2").first).to_contain_text("Task")
    shot(page, "card")


def test_a_cards_script_cannot_reach_the_ui(page, ui_url):
    page.goto(ui_url + "/#/run/SandboxFlow/3/start")
    page.locator("#step-tasks tbody tr a").click()
    frame = page.frame_locator("iframe[data-card='0']")
    result = frame.locator("#result")
    sync_api.expect(result).to_contain_text("api blocked")
    text = result.inner_text()
    assert "parent blocked" in text and "cookie blocked" in text, text
    assert page.locator("iframe[data-card='0']").get_attribute("sandbox") == "allow-scripts"
    # Nor can the page reach into the card: it is another (opaque) origin.
    assert page.evaluate("document.querySelector(\"iframe[data-card='0']\").contentDocument") is None


def test_a_live_run_advances_without_reload(page, ui_url, datastore):
    gate = datastore.dir / "gate"  # relative to the run's folder, so screenshots show no machine path
    flow = datastore.flow("ui_live_flow.py")
    proc = subprocess.Popen([sys.executable, str(flow), "run", "--gate", "gate"], cwd=datastore.dir,
                            env=datastore.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # the run's console: wait until the step is waiting
            if "waiting for" in line:
                break
        page.goto(ui_url + "/")
        sync_api.expect(page.locator("#runs tbody tr").first).to_contain_text("running")
        page.locator("#runs tbody tr").first.click()
        waiting = page.locator('g.cairn-step[data-step="wait"]')
        sync_api.expect(waiting).to_have_attribute("data-state", "running")
        sync_api.expect(page.locator('g.cairn-step[data-step="end"]')).to_have_attribute("data-state", "pending")
        page.evaluate("window.__sameDocument = true")
        shot(page, "live")
        # The running task: its log so far and its live card.
        page.locator('#step-tasks tbody tr a').first.click()
        sync_api.expect(page.locator("#log")).to_contain_text("waiting for")
        live_card = page.frame_locator("iframe[data-card='0']")
        sync_api.expect(live_card.locator("progress")).to_have_attribute("value", "4.0")
        page.go_back()
        sync_api.expect(waiting).to_have_attribute("data-state", "running")
        page.evaluate("window.__sameDocument = true")
        gate.write_text("open")
        sync_api.expect(page.locator('g.cairn-step[data-step="end"]')).to_have_attribute(
            "data-state", "succeeded", timeout=30_000)
        sync_api.expect(page.locator("h1 .status")).to_have_text("succeeded")
        assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    finally:
        gate.write_text("open")
        proc.wait(timeout=60)
    assert proc.returncode == 0
