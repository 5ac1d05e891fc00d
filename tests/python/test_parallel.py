"""@parallel and num_parallel, from Metaflow's "Distributed computing" page:
N tasks started together as a gang, current.parallel, the join of all
nodes; and the gang fails and retries as a whole."""

from __future__ import annotations

from cairn import Flow

FLOW = """
import os, time
from cairn import FlowSpec, current, parallel, retry, step


def rendezvous(attempt, node, nodes):
    # Every node of the gang runs at the same time: wait until all are here.
    open(f"here.{attempt}.{node}", "w").close()
    deadline = time.time() + 60
    while not all(os.path.exists(f"here.{attempt}.{n}") for n in range(nodes)):
        if time.time() > deadline:
            raise RuntimeError("the gang did not start together")
        time.sleep(0.01)


class ParallelFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=3)

    @retry(times=1, minutes_between_retries=0)
    @parallel
    @step
    def train(self):
        p = current.parallel
        self.node, self.nodes, self.ip = p.node_index, p.num_nodes, p.main_ip
        self.control = p.control_task_id
        rendezvous(current.retry_count, p.node_index, p.num_nodes)
        if current.retry_count == 0 and os.environ.get("FAIL_NODE") == str(p.node_index):
            raise RuntimeError(f"node {p.node_index} fails")
        if current.retry_count == 0 and os.environ.get("FAIL_NODE"):
            time.sleep(300)  # killed when its sibling fails
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = sorted((inp.node, inp.nodes, inp.ip) for inp in inputs)
        self.controls = {inp.control for inp in inputs}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParallelFlow()
"""


def test_parallel_runs_a_gang_and_joins_every_node(runner):
    flow = runner.write("parallel_flow.py", FLOW)
    runner.run(flow, "run", check=True)
    run = Flow("ParallelFlow").latest_run
    tasks = sorted(run["train"], key=lambda t: int(t.id))
    assert [t.data.node for t in tasks] == [0, 1, 2]
    assert run["join"].task.data.seen == [(0, 3, "127.0.0.1"), (1, 3, "127.0.0.1"), (2, 3, "127.0.0.1")]
    assert run["join"].task.data.controls == {tasks[0].id}  # node 0 is the control task


def test_a_failing_node_kills_the_gang_which_retries_whole(runner):
    flow = runner.write("parallel_flow.py", FLOW)
    runner.run(flow, "run", check=True, env={"FAIL_NODE": "1"})
    run = Flow("ParallelFlow").latest_run
    tasks = sorted(run["train"], key=lambda t: int(t.id))
    first = [(a.status, a.signal) for t in tasks for a in t.attempts if a.attempt == 0]
    assert first == [("killed", 9), ("failed", 0), ("killed", 9)]
    failed_id = tasks[1].id
    for t in (tasks[0], tasks[2]):
        assert t.attempts[0].reason == f"its @parallel gang was stopped: task {failed_id} failed"
    assert all([a.status for a in t.attempts] == ["killed" if t is not tasks[1] else "failed", "succeeded"]
               for t in tasks)
    assert run["join"].task.data.seen[1] == (1, 3, "127.0.0.1")


def test_a_gang_wider_than_max_workers_and_a_missing_parallel_fail_clearly(runner):
    flow = runner.write("parallel_flow.py", FLOW)
    proc = runner.run(flow, "run", "--max-workers", "2")
    assert proc.returncode == 1
    assert "num_parallel=3 is more than --max-workers 2" in proc.stdout + proc.stderr
    flow.write_text(FLOW.replace("    @parallel\n", ""))
    proc = runner.run(flow, "check")
    assert proc.returncode == 1
    assert "num_parallel runs 'train' as a gang, so it needs @parallel" in proc.stderr
