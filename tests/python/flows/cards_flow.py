"""Cards of every kind on a small flow: a default card with components, a
blank and an html card on one step, a card that fails to render and one that
runs past its timeout (both must leave the task successful)."""

from cairn import FlowSpec, Parameter, card, current, step
from cairn.cards import CardComponent, Markdown, ProgressBar, Table


class Forever(CardComponent):
    def render(self) -> str:
        while True:
            pass


class CardsFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)

    @card
    @step
    def start(self):
        import numpy as np
        import pandas as pd

        self.number = 42
        self.text = "hello <b>world</b>"
        self.matrix = np.arange(1000).reshape(10, 100)
        self.frame = pd.DataFrame({"a": range(500), "b": ["x"] * 500})
        current.card.append(Markdown("# Report **title**"))
        current.card.append(ProgressBar(max=10, label="epochs"), id="progress")
        current.card.components["progress"].update(7)
        self.next(self.middle)

    @card(type="blank", id="summary")
    @card(type="html", id="raw")
    @step
    def middle(self):
        self.html = "<html><body><h1 id='raw'>raw html</h1></body></html>"
        current.card["summary"].append(Table([[1, "one"], [2, "two"]], headers=["n", "name"]))
        current.card["nope"].append(Markdown("dropped"))
        self.next(self.end)

    @card(type="html", id="broken", options={"attribute": "missing"})
    @card(type="blank", id="slow", timeout=0.5)
    @step
    def end(self):
        current.card["slow"].append(Forever())
        self.done = True


if __name__ == "__main__":
    CardsFlow()
