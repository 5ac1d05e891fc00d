"""dedup: flow A of two that store the same bytes (blob.bin, written before
the runs) as an artifact."""

from cairn import FlowSpec, step


class DedupAFlow(FlowSpec):
    @step
    def start(self):
        with open("blob.bin", "rb") as f:
            self.blob = f.read()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DedupAFlow()
