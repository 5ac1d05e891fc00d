"""Two runs of one flow at the same time, and a reader polling the client
during both: no "database is locked" reaches anyone, and nothing is lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from cairn import Flow

pytestmark = pytest.mark.e2e

BUSY_FLOW = """
import os, time
from cairn import Flow, FlowSpec, namespace, step

class BusyFlow(FlowSpec):
    @step
    def start(self):
        # Both runs and the reader are under way before anything is recorded
        # past this point: the overlap does not depend on timing.
        namespace(None)
        deadline = time.time() + 60
        while not (os.path.exists("reader.ready") and len(list(Flow("BusyFlow").runs())) >= 2):
            assert time.time() < deadline, "the other run or the reader never started"
            time.sleep(0.02)
        self.items = list(range(40))
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.value = [self.input] * 1000
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value[0] for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    BusyFlow()
"""

# Polls the whole flow through the client until two runs have finished,
# reading every task and artifact it sees; any exception ends it non-zero.
READER = """
import os, time
from cairn import Flow, NotFoundError, namespace

namespace(None)
polls, seen, deadline = 0, 0, time.time() + 120
while time.time() < deadline:
    try:
        runs = list(Flow("BusyFlow").runs())
    except NotFoundError:  # until the first run has created the datastore and the flow
        runs = []
    for run in runs:
        for step in run:
            for task in step:
                if task.successful and "value" in task:
                    assert task["value"].data[0] == task.index
                    seen += 1
    polls += 1
    if polls == 1:
        open("reader.ready", "w").close()
    if len(runs) == 2 and all(r.finished for r in runs):
        break
    time.sleep(0.01)
print(polls, seen)
"""


def test_two_runs_and_a_reader_at_once(runner):
    flow = runner.write("busy.py", BUSY_FLOW)
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(READER)], cwd=runner.dir, env=runner.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = [subprocess.Popen([sys.executable, str(flow), "run", "--max-workers", "4"], cwd=runner.dir,
                             env=runner.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in runs]
    reader_out, reader_err = reader.communicate(timeout=120)

    for p, (out, err) in zip(runs, outputs):
        assert p.returncode == 0, out + err
        assert "locked" not in out + err
    assert reader.returncode == 0, reader_err
    assert "locked" not in reader_err
    polls, seen = map(int, reader_out.split())
    assert polls > 1 and seen > 0

    flow_runs = sorted(Flow("BusyFlow").runs(), key=lambda r: int(r.id))
    assert [r.id for r in flow_runs] == ["1", "2"]
    for run in flow_runs:
        assert run.successful
        tasks = list(run["each"])
        assert sorted(t.index for t in tasks) == list(range(40))
        assert all(t.data.value == [t.index] * 1000 for t in tasks)
        assert run["join"].task.data.total == sum(range(40))
