"""Stores what `current` says in each task, as artifacts the test reads back."""

import os

from cairn import FlowSpec, current, retry, step


def snapshot():
    return {
        "flow_name": current.flow_name, "run_id": current.run_id, "step_name": current.step_name,
        "task_id": current.task_id, "retry_count": current.retry_count,
        "origin_run_id": current.origin_run_id, "pathspec": current.pathspec,
        "username": current.username, "tags": sorted(current.tags),
        "is_running_flow": current.is_running_flow, "index": current.index,
        "parallel": (current.parallel.num_nodes, current.parallel.node_index),
    }


class CurrentFlow(FlowSpec):
    @step
    def start(self):
        self.now = snapshot()
        self.items = ["x", "y", "z"]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.now = snapshot()
        self.self_index = self.index
        self.next(self.join)

    @step
    def join(self, inputs):
        self.now = snapshot()
        self.next(self.flaky)

    @retry(times=1, minutes_between_retries=0)
    @step
    def flaky(self):
        """Fails its first attempt, so that the second sees retry_count 1."""
        if current.retry_count == 0:
            raise RuntimeError("first attempt fails on purpose")
        self.now = snapshot()
        self.next(self.end)

    @step
    def end(self):
        if os.environ.get("CURRENT_FLOW_FAIL_END"):
            raise RuntimeError("end fails on purpose, to be resumed")
        self.now = snapshot()


if __name__ == "__main__":
    CurrentFlow()
