"""Counts how many tasks of a foreach run at once, with a counter file under
flock: each task enters (active += 1, peak = max(peak, active)), waits until
the peak reached `--overlap` (so that the allowed overlap really happens,
whatever the machine's speed), holds a moment so that any task the engine
wrongly started too would overlap it, then leaves (active -= 1)."""

import fcntl
import json
import os
import time

from cairn import FlowSpec, Parameter, step


def update(path, change):
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read()
        state = json.loads(text) if text else {"active": 0, "peak": 0, "entered": 0}
        change(state)
        f.seek(0)
        f.truncate()
        f.write(json.dumps(state))
        return dict(state)


class WorkersFlow(FlowSpec):
    n = Parameter("n", default=6)
    overlap = Parameter("overlap", default=1, help="the peak every task waits for")
    counter = Parameter("counter", default="counter.json")

    @step
    def start(self):
        if os.path.exists(self.counter):
            os.remove(self.counter)
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        def enter(s):
            s["active"] += 1
            s["entered"] += 1
            s["peak"] = max(s["peak"], s["active"])

        self.at_entry = update(self.counter, enter)["active"]
        deadline = time.monotonic() + 20
        self.waited_out = False
        while update(self.counter, lambda s: None)["peak"] < self.overlap:
            if time.monotonic() > deadline:
                self.waited_out = True
                break
            time.sleep(0.005)
        time.sleep(0.1)  # hold: creates overlap with anything started alongside
        update(self.counter, lambda s: s.update(active=s["active"] - 1))
        self.next(self.join)

    @step
    def join(self, inputs):
        self.state = update(self.counter, lambda s: None)
        self.waited_out = any(inp.waited_out for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    WorkersFlow()
