"""card: a step with a default @card and 20 artifacts (the `rows` parameter
among them), one a DataFrame of `rows` rows (1,000,000 by default); the card
is rendered in the task as the step ends."""

from cairn import FlowSpec, Parameter, card, step


class Card20Flow(FlowSpec):
    rows = Parameter("rows", default=1_000_000, help="rows of the DataFrame")

    @card
    @step
    def start(self):
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng(0)
        n = int(self.rows)
        self.frame = pd.DataFrame({"id": np.arange(n), "x": rng.random(n), "y": rng.normal(size=n),
                                   "label": rng.integers(0, 10, n).astype(str)})
        self.weights = rng.random((1000, 100))
        self.vector = rng.random(100_000)
        self.text = "lorem ipsum " * 5000
        self.config = {f"key{i}": {"value": i, "tags": list(range(10))} for i in range(500)}
        self.history = [float(i) / 3 for i in range(50_000)]
        for i in range(13):
            setattr(self, f"metric_{i}", i * 0.5)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    Card20Flow()
