"""The flow the notebook test runs: a parameter and a foreach."""

from cairn import FlowSpec, Parameter, step


class NotebookFlow(FlowSpec):
    alpha = Parameter("alpha", default=1, type=int, help="multiplies every item")

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.y = self.input * self.alpha
        self.next(self.join)

    @step
    def join(self, inputs):
        self.squares = [i.y ** 2 for i in inputs]
        self.total = sum(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print(f"total {self.total}")


if __name__ == "__main__":
    NotebookFlow()
