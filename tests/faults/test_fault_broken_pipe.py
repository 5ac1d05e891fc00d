"""`python flow.py run | head -n 3` (issue 15, item 5): the console's pipe
closes early; the run still finishes, is recorded, and prints no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cairn import Flow

from .faultlib import count_trial

pytestmark = pytest.mark.faults

CHATTY_FLOW = """
import os, time
from cairn import FlowSpec, step

class ChattyFlow(FlowSpec):
    @step
    def start(self):
        # Holds on until the reader has gone, so what follows meets a closed pipe.
        while not os.path.exists(os.environ["READER_GONE"]):
            time.sleep(0.01)
        for i in range(100):
            print("line", i)
        self.next(self.end)

    @step
    def end(self):
        self.done = True

if __name__ == "__main__":
    ChattyFlow()
"""


def test_a_console_pipe_closed_early_loses_output_not_the_run(runner):
    flow = runner.write("chatty.py", CHATTY_FLOW)
    gone = runner.dir / "reader-gone"
    proc = subprocess.Popen(
        [sys.executable, str(flow), "run"], cwd=runner.dir,
        env={**runner.env, "READER_GONE": str(gone)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    failed = True
    try:
        first = [proc.stdout.readline() for _ in range(2)]  # what `head -n 2` reads
        assert b"starting (run-id 1)" in first[0]
        proc.stdout.close()
        gone.touch()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
        assert "Traceback" not in err and "Broken pipe" not in err, err
        run = Flow("ChattyFlow")["1"]
        assert run.successful and run["end"].task.data.done
        assert "line 99" in run["start"].task.stdout  # the log kept what the console lost
        failed = False
    finally:
        count_trial("broken pipe", failed)
