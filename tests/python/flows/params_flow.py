"""Every kind of Parameter and IncludeFile, read in every step (join included)."""

from cairn import FlowSpec, IncludeFile, JSONType, Parameter, step


def default_seed(ctx):
    """A callable default: computed when the run starts, from its context."""
    return len(ctx.flow_name) * 100 + len(ctx.parameter_name)


class ParamFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5, help="learning rate")
    epochs = Parameter("epochs", default=3, type=int)
    verbose = Parameter("verbose", default=False, type=bool)
    label = Parameter("label", default="base", type=str)
    config = Parameter("config", default='{"layers": [1, 2]}', type=JSONType)
    seed = Parameter("seed", default=default_seed, type=int)
    user_name = Parameter("user-name", default="nobody")
    size = Parameter("size", type=int, required=True)
    mutate = Parameter("mutate", default=False, type=bool)
    notes = IncludeFile("notes", default="notes.txt", is_text=True)
    blob = IncludeFile("blob", default="blob.bin", is_text=False)

    def _values(self):
        return (self.alpha, self.epochs, self.verbose, self.label, self.config, self.seed,
                self.user_name, self.size)

    @step
    def start(self):
        if self.mutate:
            self.alpha = 1.0
        self.types = {name: type(getattr(self, name)).__name__
                      for name in ("alpha", "epochs", "verbose", "label", "config", "seed", "notes", "blob")}
        self.seen_start = self._values()
        self.next(self.a, self.b)

    @step
    def a(self):
        self.seen_a = self._values()
        self.next(self.join)

    @step
    def b(self):
        self.seen_b = self._values()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen_join = self._values()
        self.branches = [inputs.a.seen_a, inputs.b.seen_b]
        self.next(self.end)

    @step
    def end(self):
        self.seen_end = self._values()
        self.notes_len = len(self.notes)


if __name__ == "__main__":
    ParamFlow()
