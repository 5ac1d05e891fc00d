"""foreach1k / foreach10k / resume-wide: start -> a foreach over `n` items
(y = input * 2) -> a join summing them -> end. With BENCH_FAIL_JOIN=1 in the
environment the join fails (the resume-wide case's first run)."""

import os

from cairn import FlowSpec, Parameter, step


class ForeachFlow(FlowSpec):
    n = Parameter("n", default=1000, help="foreach width")

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.y = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        if os.environ.get("BENCH_FAIL_JOIN") == "1":
            raise RuntimeError("join failed on purpose (BENCH_FAIL_JOIN=1)")
        self.total = sum(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    ForeachFlow()
