"""switch: `self.next({...}, condition=...)` takes one case, chosen at run
time by an attribute's value. A case that leads back to an earlier step
makes a loop, which runs until the condition chooses the way out."""

from cairn import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    """Finds a square root by bisection (a loop), or skips it for a perfect square."""

    number = Parameter("number", default=10.0, help="the number to take the root of")
    tolerance = Parameter("tolerance", default=1e-6)

    @step
    def start(self):
        """Choose the path: exact for perfect squares, a search otherwise."""
        root = round(self.number ** 0.5)
        self.kind = "exact" if root * root == self.number else "search"
        self.next({"exact": self.exact, "search": self.bracket}, condition="kind")

    @step
    def exact(self):
        """A perfect square: no search needed."""
        self.root = float(round(self.number ** 0.5))
        self.iterations = 0
        self.next(self.end)

    @step
    def bracket(self):
        """Start the search with an interval that holds the root."""
        self.low, self.high = 0.0, max(1.0, self.number)
        self.iterations = 0
        self.next(self.halve)

    @step
    def halve(self):
        """One bisection step."""
        middle = (self.low + self.high) / 2
        if middle * middle < self.number:
            self.low = middle
        else:
            self.high = middle
        self.iterations += 1
        self.next(self.check)

    @step
    def check(self):
        """Loop back to halve until the interval is small enough."""
        self.state = "again" if self.high - self.low > self.tolerance else "done"
        self.next({"again": self.halve, "done": self.settle}, condition="state")

    @step
    def settle(self):
        """The middle of the final interval."""
        self.root = (self.low + self.high) / 2
        self.next(self.end)

    @step
    def end(self):
        """Print the root."""
        print(f"sqrt({self.number}) = {self.root:.6f} ({self.kind}, {self.iterations} iterations)")


if __name__ == "__main__":
    SwitchFlow()
