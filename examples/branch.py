"""Static branches: two steps run in parallel on the same data, and a join
step combines them (inputs by name, and merge_artifacts for the rest)."""

from cairn import FlowSpec, Parameter, step


class BranchFlow(FlowSpec):
    """Describes a list of numbers: spread and center computed side by side."""

    numbers = Parameter("numbers", default="3,1,4,1,5,9,2,6", help="comma-separated numbers")

    @step
    def start(self):
        """Parse the numbers once; both branches inherit them."""
        self.values = [float(x) for x in self.numbers.split(",")]
        self.next(self.spread, self.center)

    @step
    def spread(self):
        """Range of the values."""
        self.low, self.high = min(self.values), max(self.values)
        self.next(self.join)

    @step
    def center(self):
        """Mean and median of the values."""
        ordered = sorted(self.values)
        middle = len(ordered) // 2
        self.mean = sum(ordered) / len(ordered)
        self.median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        self.next(self.join)

    @step
    def join(self, inputs):
        """Read each branch by name; merge what they share (`values`) and what only one set."""
        self.summary = {
            "range": (inputs.spread.low, inputs.spread.high),
            "mean": inputs.center.mean,
            "median": inputs.center.median,
        }
        self.merge_artifacts(inputs)
        self.next(self.end)

    @step
    def end(self):
        """Print the summary."""
        print(f"{len(self.values)} numbers: {self.summary}")


if __name__ == "__main__":
    BranchFlow()
