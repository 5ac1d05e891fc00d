"""read-dataframe's setup: one step stores a DataFrame of four float64
columns built from array.npy (written before the run; uniform random
doubles, incompressible)."""

import numpy as np
import pandas as pd
from cairn import FlowSpec, step


class FrameFlow(FlowSpec):
    @step
    def start(self):
        columns = np.load("array.npy").reshape(4, -1)
        self.frame = pd.DataFrame({f"c{i}": columns[i] for i in range(4)})
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FrameFlow()
