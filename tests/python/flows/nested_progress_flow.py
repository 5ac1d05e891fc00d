"""A nested foreach of 25, 26 and 27 items whose item 3 fails once and is retried."""

from cairn import FlowSpec, current, retry, step


class NestFlow(FlowSpec):
    @step
    def start(self):
        self.rows = [0, 1, 2]
        self.next(self.outer, foreach="rows")

    @step
    def outer(self):
        self.cols = list(range(25 + self.input))
        self.next(self.inner, foreach="cols")

    @retry(times=1, minutes_between_retries=0)
    @step
    def inner(self):
        if self.input == 3 and current.retry_count == 0:
            raise ValueError("retry me")
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NestFlow()
