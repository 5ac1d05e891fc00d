"""A run that stays live until the test creates the file named by --gate:
its `wait` step refreshes a live card, then waits for the file."""

import os
import time

from cairn import FlowSpec, Parameter, card, current, step
from cairn.cards import Markdown, ProgressBar


class UiLiveFlow(FlowSpec):
    gate = Parameter("gate", default="")

    @step
    def start(self):
        self.next(self.wait)

    @card(type="blank", id="progress")
    @step
    def wait(self):
        bar = ProgressBar(max=10, label="waiting for the gate")
        current.card["progress"].append(Markdown("# Live card"))
        current.card["progress"].append(bar, id="bar")
        bar.update(4)
        current.card["progress"].refresh()
        print("waiting for", self.gate, flush=True)
        while not os.path.exists(self.gate):  # the test creates it; the flow polls for it
            time.sleep(0.05)
        print("gate open", flush=True)
        self.next(self.end)

    @step
    def end(self):
        self.done = True


if __name__ == "__main__":
    UiLiveFlow()
