"""resume: five steps; with BENCH_FAIL=1 in the environment the fourth
fails, and `resume` (without it) finishes the run."""

import os

from cairn import FlowSpec, step


class ResumeFlow(FlowSpec):
    @step
    def start(self):
        self.trail = ["start"]
        self.next(self.second)

    @step
    def second(self):
        self.trail = [*self.trail, "second"]
        self.next(self.third)

    @step
    def third(self):
        self.trail = [*self.trail, "third"]
        self.next(self.fourth)

    @step
    def fourth(self):
        if os.environ.get("BENCH_FAIL") == "1":
            raise RuntimeError("fourth failed on purpose (BENCH_FAIL=1)")
        self.trail = [*self.trail, "fourth"]
        self.next(self.end)

    @step
    def end(self):
        self.trail = [*self.trail, "end"]


if __name__ == "__main__":
    ResumeFlow()
