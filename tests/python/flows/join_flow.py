"""Join semantics: inputs by step name, iteration, len, and merge_artifacts
with include/exclude. `--mode` picks what the join does."""

from cairn import FlowSpec, Parameter, step


class JoinFlow(FlowSpec):
    mode = Parameter("mode", default="resolve")

    @step
    def start(self):
        self.shared = "same everywhere"
        self.table = {"k": [1, 2, 3]}  # mutable, read but not changed by the branches
        self.next(self.a, self.b, self.c)

    @step
    def a(self):
        self.x = "from a"
        self.score = 1
        self.only_a = "a alone"
        self.seen_table = len(self.table["k"])
        self.next(self.join)

    @step
    def b(self):
        self.x = "from b"
        self.score = 2
        self.next(self.join)

    @step
    def c(self):
        self.x = "from c"
        self.score = 3
        self.next(self.join)

    @step
    def join(self, inputs):
        self.by_name = [inputs.a.x, inputs.b.x, inputs.c.x]
        self.in_order = [inp.x for inp in inputs]
        self.count = len(inputs)
        self.total = sum(inp.score for inp in inputs)
        self.first = inputs[0].x
        if self.mode == "resolve":
            self.x = "chosen in join"
            self.score = max(inp.score for inp in inputs)
            self.merge_artifacts(inputs)
        elif self.mode == "exclude":
            self.merge_artifacts(inputs, exclude=["x", "score"])
        elif self.mode == "include":
            self.merge_artifacts(inputs, include=["shared"])
        elif self.mode == "include_missing":
            self.merge_artifacts(inputs, include=["shared", "nowhere"])
        elif self.mode == "conflict":
            self.merge_artifacts(inputs, exclude=["x"])
        elif self.mode == "none":
            self.had_shared = hasattr(self, "shared")
        self.next(self.end)

    @step
    def end(self):
        self.final = {name: getattr(self, name, None) for name in ("x", "score", "shared", "table", "only_a")}


if __name__ == "__main__":
    JoinFlow()
