"""Issue 15, item 1: a run killed right after it printed its id keeps its
parameters, so resume runs with them; an origin without them is refused."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys

import pytest
from cairn import Flow

from .faultlib import start_run, wait_for_line

pytestmark = pytest.mark.faults

GREETING_FLOW = """
from cairn import FlowSpec, Parameter, step

class GreetingFlow(FlowSpec):
    greeting = Parameter("greeting", default="hello")

    @step
    def start(self):
        self.message = f"{self.greeting} world"
        self.next(self.end)

    @step
    def end(self):
        self.final = self.message.upper()

if __name__ == "__main__":
    GreetingFlow()
"""


def test_resume_after_kill_at_the_run_id_line_uses_the_given_parameters(runner):
    flow = runner.write("greeting.py", GREETING_FLOW)
    proc = start_run(runner, flow, "run", "--greeting", "bonjour")
    wait_for_line(proc, "starting (run-id 1)")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()

    runner.run(flow, "resume", check=True)
    resumed = Flow("GreetingFlow")["2"]
    assert resumed.successful
    assert resumed["start"].task.data.message == "bonjour world"
    assert resumed["end"].task.data.final == "BONJOUR WORLD"


def test_resume_refuses_an_origin_without_parameter_records(runner):
    flow = runner.write("greeting.py", GREETING_FLOW)
    runner.run(flow, "run", "--greeting", "bonjour", check=True)
    # What an older cairn left when killed before its first commit.
    db = sqlite3.connect(runner.root / "cairn.db")
    with db:
        db.execute("DELETE FROM artifacts WHERE task_id = 0")
        db.execute("DELETE FROM attempts WHERE task_id = 0")
        db.execute("DELETE FROM tasks WHERE step = '_parameters'")
    db.close()
    proc = runner.run(flow, "resume", "start")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "cannot resume run GreetingFlow/1: its parameter values were never recorded" in proc.stderr
    assert len(list(Flow("GreetingFlow").runs())) == 1  # nothing ran


def test_a_task_without_a_value_for_a_parameter_fails_instead_of_seeing_the_object(runner):
    """The task's own check, for any path that bypasses resume's: the
    standalone `step` entry point handed a payload with no parameter values."""
    flow = runner.write("greeting.py", GREETING_FLOW)
    payload = {
        "flow": {"root": str(runner.root), "user": "u", "tags": [], "with_decorators": [],
                 "file": str(flow)},
        "run_id": 7, "step": "start", "task_id": 1, "attempt": 0, "fallback": False,
        "origin_run_id": 0, "max_num_splits": 100, "params": [], "inputs": [], "stack": [],
    }
    path = runner.dir / "payload.json"
    path.write_text(json.dumps(payload))
    proc = subprocess.run(
        [sys.executable, str(flow), "step"], cwd=runner.dir, capture_output=True,
        env={**runner.env, "CAIRN_TASK_PAYLOAD": str(path), "CAIRN_RESULT_FD": "1"},
        check=False,
    )
    assert proc.returncode == 1
    result = json.loads(proc.stdout.partition(b"\0")[0])
    assert result["exception"]["type"] == "ParameterError"
    assert "run 7 has no stored value for parameter(s) greeting" in result["exception"]["message"]
