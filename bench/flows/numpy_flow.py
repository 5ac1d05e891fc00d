"""numpy: one step stores a float64 array (1 GiB in the full suite) loaded
from array.npy, written before the timed run (uniform random doubles:
incompressible, like trained weights); the next step reads all of it."""

import numpy as np
from cairn import FlowSpec, step


class NumpyFlow(FlowSpec):
    @step
    def start(self):
        self.x = np.load("array.npy")
        self.next(self.use)

    @step
    def use(self):
        self.total = float(self.x.sum())
        self.nbytes = int(self.x.nbytes)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NumpyFlow()
