"""A foreach over `--n` items of kind `--kind`; the join checks split order."""

from cairn import FlowSpec, Parameter, step


class ForeachFlow(FlowSpec):
    n = Parameter("n", default=4, help="number of items")
    kind = Parameter("kind", default="list", help="list, tuple, range or str")
    shout = Parameter("shout", default=-1, help="the item that prints a line")
    fail = Parameter("fail", default=-1, help="the item that fails")

    @step
    def start(self):
        values = [f"item{i}" for i in range(self.n)]
        if self.kind == "tuple":
            self.items = tuple(values)
        elif self.kind == "range":
            self.items = range(10, 10 + self.n)
        elif self.kind == "str":
            self.items = "abcdefghijklmnopqrstuvwxyz"[: self.n]
        else:
            self.items = values
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.seen = (self.index, self.input)
        if self.index == self.shout:
            print(f"item {self.index} says hello")
        if self.index == self.fail:
            raise ValueError(f"item {self.index} fails on purpose")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = [inp.seen for inp in inputs]
        self.indices = [inp.index for inp in inputs]
        self.values = [inp.input for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachFlow()
