"""artifacts: one step stores N MB of random bytes and N MB of one repeated
byte. The random bytes come from random.bin, which the benchmark writes
before the timed run: generating 200 MB of random bytes costs ~0.8 s on the
reference machine (os.urandom), the same for any framework, and would hide
what is being measured."""

from cairn import FlowSpec, step


class ArtifactsFlow(FlowSpec):
    @step
    def start(self):
        with open("random.bin", "rb") as f:
            self.random = f.read()
        self.repeated = b"\x01" * len(self.random)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ArtifactsFlow()
