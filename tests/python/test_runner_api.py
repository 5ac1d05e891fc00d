"""Programmatic runs as Metaflow's Runner documents them: async_run returns
an ExecutingRun while the run goes on (status, stream_log, wait, a timeout),
async_resume; and NBRunner(FlowClass).nbrun() for a flow defined in a
notebook cell, run through a real Jupyter kernel."""

from __future__ import annotations

import asyncio

import nbformat
import pytest
from cairn import CairnException, Flow, NBRunner, Runner
from test_notebook import execute, kernel, outputs  # noqa: F401 - kernel is a fixture

pytestmark = pytest.mark.e2e

GATED_FLOW = """
import os, time
from cairn import FlowSpec, Parameter, step

class GatedFlow(FlowSpec):
    n = Parameter("n", default=1)

    @step
    def start(self):
        print("waiting for the gate")
        while not os.path.exists("GO"):
            time.sleep(0.01)
        if os.path.exists("FAIL"):
            raise RuntimeError("the gate said no")
        self.total = self.n * 10
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)

if __name__ == "__main__":
    GatedFlow()
"""


def test_async_run_stream_log_wait_and_async_resume(runner):
    flow = runner.write("gated.py", GATED_FLOW)

    async def scenario() -> None:
        with Runner(str(flow)) as r:
            running = await r.async_run(n=4, tags=["async"])
            # start waits for GO: the run certainly goes on, and it exists already.
            assert (running.status, running.returncode) == ("running", None)
            assert running.run.pathspec == "GatedFlow/1" and running.run.user_tags == {"async"}
            (runner.dir / "GO").touch()
            lines = [line async for _, line in running.stream_log("stdout")]
            assert any(line.endswith("[1/end/2] total 40") for line in lines)
            assert (await running.wait()) is running
            assert (running.status, running.returncode) == ("successful", 0)
            assert running.run.successful and running.run.data.total == 40
            assert running.stdout.splitlines() == lines

            (runner.dir / "FAIL").touch()
            failed = await r.async_run(n=5)
            await failed.wait()
            assert failed.status == "failed" and "the gate said no" in failed.stderr
            (runner.dir / "FAIL").unlink()
            resumed = await r.async_resume()
            await resumed.wait(stream="stdout")
            assert resumed.status == "successful"
            assert resumed.run.origin_pathspec == failed.run.pathspec and resumed.run.data.total == 50

    asyncio.run(scenario())


def test_wait_with_a_timeout_stops_the_run(runner):
    flow = runner.write("gated.py", GATED_FLOW)

    async def scenario() -> None:
        with Runner(str(flow), show_output=False) as r:
            running = await r.async_run()
            with pytest.raises(TimeoutError, match="killed"):
                await running.wait(timeout=0.5)  # GO never comes
            await running.wait()
            assert running.status == "failed"
            assert running.run.status == "failed"  # the engine recorded the interruption

    asyncio.run(scenario())


NB_CELL = """\
from cairn import FlowSpec, NBRunner, Parameter, step

class CellFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.doubled = self.alpha * 2
        self.next(self.end)

    @step
    def end(self):
        print("doubled is", self.doubled)

run = NBRunner(CellFlow).nbrun(alpha=21)"""


def test_nbrunner_runs_the_flow_of_the_notebook_cell(runner, kernel):  # noqa: F811 - the fixture
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NB_CELL),
                nbformat.v4.new_code_cell("print(run.pathspec, run.successful, run.data.doubled)")]
    path = runner.dir / "cell_flow.ipynb"
    nbformat.write(nb, path)
    done = execute(path, runner.dir, kernel)
    streams = "".join(outputs(done, "stream"))
    assert "doubled is 42" in streams  # the run's output, under the cell
    assert "CellFlow/1 True 42" in streams
    assert Flow("CellFlow").latest_run.data.doubled == 42  # in the datastore this process reads


def test_nbrunner_outside_a_notebook_says_what_to_use():
    class NotInACell:
        pass

    with pytest.raises(CairnException, match="outside a notebook, use Runner"):
        NBRunner(NotInACell)


def test_runner_refuses_a_metaflow_profile():
    with pytest.raises(CairnException, match="no configuration profiles"):
        Runner("flow.py", profile="dev")
