"""A foreach whose item 3 fails on every attempt: runs, steps, retries,
logs and artifacts for the UI tests."""

from cairn import FlowSpec, Parameter, retry, step


class UiForeachFlow(FlowSpec):
    width = Parameter("width", default=5)

    @step
    def start(self):
        self.items = list(range(int(self.width)))
        self.next(self.work, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @step
    def work(self):
        print(f"working on item {self.input}")
        if self.input == 3:
            raise ValueError("item 3 is bad")
        self.doubled = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.doubled for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UiForeachFlow()
