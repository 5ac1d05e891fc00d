"""Notebooks executed in a real Jupyter kernel (nbclient + ipykernel), with
this interpreter and a datastore in tmp_path; and the Runner on its own."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from cairn import Flow, Runner
from conftest import EXAMPLES
from nbclient import NotebookClient

pytestmark = pytest.mark.e2e

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture
def kernel(runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that starts this interpreter; the kernel inherits CAIRN_HOME."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "cairn-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cairn test", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter" / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("CAIRN_TEST_PYTHON", sys.executable)
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    return "cairn-test"


def execute(path: Path, workdir: Path, kernel: str) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name=kernel, timeout=120,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode, kind: str) -> list[str]:
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and kind == "stream":
                found.append(out["text"])
            elif kind in out.get("data", {}):
                found.append(out["data"][kind])
    return found


def test_the_client_notebook_runs_a_flow_and_reads_it_back(runner, kernel):
    runner.copy(NOTEBOOKS / "nb_flow.py")
    nb = execute(NOTEBOOKS / "client.ipynb", runner.dir, kernel)
    # The Runner showed the run's output under its cell.
    assert any("Done! Run NotebookFlow/1 succeeded" in text for text in outputs(nb, "stream"))
    html = outputs(nb, "text/html")
    assert sum("<table>" in h for h in html) >= 6  # result.run, five displays, the last cell
    assert any("Run(&#x27;NotebookFlow/1&#x27;)" in h and "squares" in h for h in html)
    assert "18" in outputs(nb, "text/plain")  # run.data.total
    # What the kernel wrote is in the datastore this process reads.
    assert Flow("NotebookFlow").latest_successful_run.data.squares == [1, 4, 9]


def test_the_example_notebook_runs_as_is(runner, kernel):
    runner.copy(EXAMPLES / "hello.py")
    nb = execute(EXAMPLES / "notebook.ipynb", runner.dir, kernel)
    assert "'HELLO'" in outputs(nb, "text/plain")
    assert Flow("HelloFlow").latest_run.user_tags == {"from-notebook"}


def test_runner_runs_fails_and_resumes(runner, capsys):
    flow = runner.write(
        "gate.py",
        """
        import os
        from cairn import FlowSpec, Parameter, step

        class GateFlow(FlowSpec):
            n = Parameter("n", default=1, type=int)

            @step
            def start(self):
                self.doubled = self.n * 2
                self.next(self.check)

            @step
            def check(self):
                if os.path.exists("FAIL"):
                    raise RuntimeError("gate closed")
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            GateFlow()
        """,
    )
    with Runner(str(flow.name)) as r:
        ok = r.run(n=4, tags=["a", "b"], max_workers=2)
        assert (ok.status, ok.returncode) == ("successful", 0)
        assert ok.run.data.doubled == 8 and ok.run.user_tags == {"a", "b"}
        assert "Done! Run GateFlow/1 succeeded" in ok.stdout
        assert "Done! Run GateFlow/1 succeeded" in capsys.readouterr().out  # shown as it ran
        (runner.dir / "FAIL").touch()
        failed = r.run(n=5)
        assert failed.status == "failed" and not failed.run.successful
        assert "RuntimeError: gate closed" in failed.stderr
        (runner.dir / "FAIL").unlink()
        resumed = r.resume()
        assert resumed.status == "successful"
        assert resumed.run.origin_pathspec == failed.run.pathspec and resumed.run.data.doubled == 10
        assert resumed.run["start"].task.origin_pathspec == f"{failed.run.pathspec}/start/1"
        bad = Runner(str(flow.name), show_output=False).run(n="many")
        assert bad.status == "failed" and bad.run is None and "many" in bad.stderr


def test_runner_uses_the_datastore_it_is_given(runner, tmp_path: Path):
    flow = runner.copy(EXAMPLES / "hello.py")
    elsewhere = tmp_path / "elsewhere"
    done = Runner(str(flow), show_output=False, datastore_root=str(elsewhere)).run()
    assert done.run.data.loud == "HELLO"
    assert (elsewhere / "cairn.db").exists() and not runner.root.exists()
    shutil.rmtree(elsewhere)
