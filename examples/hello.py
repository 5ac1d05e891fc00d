"""The smallest flow: three steps, one artifact handed along."""

from cairn import FlowSpec, step


class HelloFlow(FlowSpec):
    """Says hello, loudly."""

    @step
    def start(self):
        """Make a greeting."""
        self.greeting = "hello"
        self.next(self.shout)

    @step
    def shout(self):
        """Shout it."""
        self.loud = self.greeting.upper()
        self.next(self.end)

    @step
    def end(self):
        print(self.loud)


if __name__ == "__main__":
    HelloFlow()
